"""Shared helpers of the IDDPM diffusion tests: the official fixtures, the stand-in model, tolerances."""

import pathlib

import torch

from tests.tolerances import DIFFUSION, FLOAT64_SCHEDULE

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"

# The reasons and measured figures are in tests/tolerances.py.
FLOAT64 = FLOAT64_SCHEDULE
FLOAT32 = DIFFUSION

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


def assert_close(actual, expected, tol=FLOAT32):
    torch.testing.assert_close(actual, expected, **tol)
