"""One command for the kernel benchmarks: `python -m bench.run [suite ...]`.

Runs the pytest-benchmark suites (default: every bench/bench_*.py) and writes one JSON per
run under bench/results/, named by device and date, with the GPU's name and versions inside.
"""

import argparse
import datetime
import pathlib
import re
import signal
import sys

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parent


def result_path(results_dir):
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(results_dir) / f"kernels-{slug}-{stamp}.json"


class StopOnSigterm:
    """pytest plugin: SIGTERM (a time limit's `timeout`) ends the run after the case in progress.

    pytest-benchmark then writes the JSON of every finished case; an interrupt in the middle of a case
    would leave that case without timings, and pytest-benchmark would write no JSON at all.
    """

    def pytest_sessionstart(self, session):
        def stop(signum, frame):
            session.shouldstop = f"signal {signum}: stopped after the case in progress"

        signal.signal(signal.SIGTERM, stop)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", help="bench files (default: all bench/bench_*.py)")
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument("-k", default=None, help="pytest -k expression to select cases")
    args = parser.parse_args(argv)
    suites = args.suites or sorted(str(p) for p in ROOT.glob("bench_*.py"))
    if not suites:
        parser.error("no bench/bench_*.py suites found")
    out = result_path(args.results_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    pytest_args = [*suites, "-q", "-p", "no:cacheprovider", f"--benchmark-json={out}", "-rs"]
    if args.k:
        pytest_args += ["-k", args.k]
    if not torch.cuda.is_available():
        print("no CUDA GPU: the eager and torch.compile providers run; the Triton provider needs a GPU and is skipped")
    code = pytest.main(pytest_args, plugins=[StopOnSigterm()])
    print(f"results: {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
