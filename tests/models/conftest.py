"""Model tests run torch's CPU ops on one thread.

The models here are tiny (a few thousand elements per op), so intra-op threads buy nothing and, on
a loaded shared machine, spin-wait for each other: measured on the 2-core dev box under load, this
directory took 58 s of CPU (127 s wall) with 2 threads and 18 s (29 s wall) with one. Changing the
thread count only reorders reductions; the fixture README measures that as up to ~6e-6 relative on
network outputs and gradients, well inside tests.tolerances.NETWORK.
"""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_cpu_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
