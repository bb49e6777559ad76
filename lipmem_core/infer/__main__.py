"""`python -m lipmem_core.infer`: runs lipmem_core.infer.command."""

import sys

from lipmem_core.infer.command import main

if __name__ == "__main__":
    sys.exit(main())
