"""Sampling and evaluation CLI: `python sample.py {iddpm,ddgan} [flags]` (`python sample.py MODEL --help`)."""

import sys

from ddx.cli.entry import dispatch

if __name__ == "__main__":
    sys.exit(dispatch("sample", sys.argv[1:]))
