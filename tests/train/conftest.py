"""Shared fixtures of the training-infrastructure tests."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def restore_threads():
    """The toy script pins torch to one thread; give the test session its thread count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
