"""Shared helpers of the IDDPM diffusion tests: the official fixtures, the stand-in model, tolerances."""

import pathlib

import torch

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"

# The fixture README's tolerances: float64 schedule arrays exact up to 1e-12 relative; float32 diffusion
# terms 1e-5 relative (pred_xstart reaches ~1e5 and vb ~1e3 at t = T-1, so the tolerance must be relative)
# with a 1e-6 floor for values near zero.
FLOAT64 = dict(rtol=1e-12, atol=0.0)
FLOAT32 = dict(rtol=1e-5, atol=1e-6)

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
