"""kernels.sample_posterior against kernels/reference.py on random inputs and against the official DDGAN fixture."""

import pytest
import torch

import kernels
from tests.kernels.diffusion_op_cases import (  # ddgan: a module-scoped pytest fixture
    NUM_STEPS,
    _steps,
    _tab,
    _x,
    check_against_reference,
    ddgan,
    dtypes,
    sample_posterior_case,
    shapes,
)
from tests.tolerances import assert_close


@shapes
@dtypes
def test_sample_posterior(device, shape, dtype):
    check_against_reference(*sample_posterior_case(shape, dtype, device), dtype)


def test_sample_posterior_masks_noise_at_t0(device):
    x_0, x_t = torch.randn(2, 3, 4, device=device), torch.randn(2, 3, 4, device=device)
    t = torch.tensor([0, 0], device=device)
    tables = (
        torch.rand(NUM_STEPS, device=device),
        torch.rand(NUM_STEPS, device=device),
        torch.zeros(NUM_STEPS, device=device),
    )
    with_noise = kernels.sample_posterior(x_0, x_t, t, torch.randn(2, 3, 4, device=device), *tables)
    without_noise = kernels.sample_posterior(x_0, x_t, t, torch.zeros(2, 3, 4, device=device), *tables)
    torch.testing.assert_close(with_noise, without_noise, rtol=0, atol=0)


def test_fixture_ddgan_sample_posterior(ddgan):
    case, coeffs = ddgan["sample_posterior"], ddgan["vp"]["Posterior_Coefficients"]
    out = kernels.sample_posterior(
        case["x_0"], case["x_t"], case["t"], case["noise"],
        coeffs["posterior_mean_coef1"], coeffs["posterior_mean_coef2"], coeffs["posterior_log_variance_clipped"],
    )
    assert_close(out, case["out"])


def test_sample_posterior_bad_noise_shape():
    with pytest.raises(ValueError, match="noise"):
        kernels.sample_posterior(_x(2, 3), _x(2, 3), _steps(0, 1), _x(2, 4), _tab(), _tab(), _tab())
