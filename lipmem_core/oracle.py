"""`python -m lipmem_core.oracle`: the documented command name, kept; the code is lipmem_core.evaluation.oracle."""

from lipmem_core.evaluation.oracle import main

if __name__ == "__main__":
    main()
