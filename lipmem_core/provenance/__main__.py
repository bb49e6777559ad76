"""`python -m lipmem_core.provenance`: runs lipmem_core.provenance.rewrite."""

import sys

from lipmem_core.provenance.rewrite import main

if __name__ == "__main__":
    sys.exit(main())
