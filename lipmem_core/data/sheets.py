"""`python -m lipmem_core.data.sheets`: the documented command name, kept; the code is lipmem_core.data.synth.sheets."""

from lipmem_core.data.synth.sheets import main

if __name__ == "__main__":
    main()
