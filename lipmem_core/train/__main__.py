"""`python -m lipmem_core.train`: runs lipmem_core.train.generator."""

from lipmem_core.train.generator import main

if __name__ == "__main__":
    main()
