"""Test-session set-up: Triton kernels run on the CPU through Triton's interpreter.

TRITON_INTERPRET must be set before triton decorates any kernel, so before kernels/ is imported.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _fixed_seed():
    torch.manual_seed(0)
    yield
