"""`python -m lipmem_core.data.synth`: runs lipmem_core.data.synth.build."""

import sys

from lipmem_core.data.synth.build import main

if __name__ == "__main__":
    sys.exit(main())
