import os
import sys

# The suites import bench.harness; run from the repository root (`pytest bench/`).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_benchmark_update_machine_info(config, machine_info):
    from bench.harness import environment_info

    machine_info.update(environment_info())
