"""Shared set-up of the IDDPM training/sampling tests: one CPU thread (tiny models run faster so on a
busy machine), restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
