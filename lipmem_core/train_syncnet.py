"""`python -m lipmem_core.train_syncnet`: the documented command name, kept; the code is lipmem_core.train.syncnet."""

from lipmem_core.train.syncnet import main

if __name__ == "__main__":
    main()
