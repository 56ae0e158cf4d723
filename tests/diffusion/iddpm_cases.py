"""Shared helpers of the IDDPM diffusion tests: the official fixtures, the stand-in model, assert_close.

Tolerances come from the one table, tests/tolerances.py."""

import pathlib

import torch

from tests.tolerances import DIFFUSION

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"

# "eager" runs kernels/reference.py; "fused" runs the Triton kernels (through Triton's interpreter on the CPU).
PATHS = ["eager", "fused"]


def load(name):
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


class FixedModel:
    """The harness's stand-in model: returns `output` whatever it is given, records the timesteps."""

    def __init__(self, output):
        self.output = output
        self.received_t = []

    def __call__(self, x, t, **kwargs):
        self.received_t.append(t)
        return self.output


def assert_close(actual, expected, tol=DIFFUSION):
    torch.testing.assert_close(actual, expected, **tol)
