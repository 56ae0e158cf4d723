"""Training CLI: `python train.py {iddpm,ddgan} [flags]` (each model's flags: `python train.py MODEL --help`)."""

import sys

from ddx.cli.entry import dispatch

if __name__ == "__main__":
    sys.exit(dispatch("train", sys.argv[1:]))
