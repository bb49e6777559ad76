"""`python -m lipmem_core.evaluate`: the documented command name, kept; the code is lipmem_core.evaluation.evaluate."""

import sys

from lipmem_core.evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
