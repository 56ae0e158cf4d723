import os
import sys

# The suites import bench.harness, so the repository root goes on sys.path. Run them with
# `python -m bench.run [bench/bench_<op>.py ...]` from the root: it collects bench/bench_*.py and writes
# the JSON under bench/results/ (a bare `pytest bench/` collects nothing: pytest looks for test_*.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_benchmark_update_machine_info(config, machine_info):
    from bench.harness import environment_info

    machine_info.update(environment_info())
