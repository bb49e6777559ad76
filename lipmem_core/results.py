"""`python -m lipmem_core.results`: the documented command name, kept; the code is lipmem_core.evaluation.results."""

from lipmem_core.evaluation.results import main

if __name__ == "__main__":
    main()
