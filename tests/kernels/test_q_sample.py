"""kernels.q_sample against kernels/reference.py on random inputs and against the official DDGAN and IDDPM fixtures."""

import pytest
import torch

import kernels
from tests.kernels.diffusion_op_cases import (  # ddgan, iddpm: module-scoped pytest fixtures
    NUM_STEPS,
    _steps,
    _tab,
    _x,
    check_against_reference,
    ddgan,
    dtypes,
    iddpm,
    q_sample_case,
    shapes,
)
from tests.tolerances import assert_close


@shapes
@dtypes
def test_q_sample(device, shape, dtype):
    check_against_reference(*q_sample_case(shape, dtype, device), dtype)


def test_fixture_ddgan_q_sample(ddgan):
    case, coeffs = ddgan["q_sample"], ddgan["vp"]["Diffusion_Coefficients"]
    out = kernels.q_sample(case["x_start"], case["t"], case["noise"], coeffs["a_s_cum"], coeffs["sigmas_cum"])
    assert_close(out, case["out"])


def test_fixture_iddpm_q_sample(iddpm):
    terms, schedule = iddpm
    inputs = terms["inputs"]
    x_t = kernels.q_sample(
        inputs["x_start"], inputs["t"], inputs["noise"],
        schedule["sqrt_alphas_cumprod"], schedule["sqrt_one_minus_alphas_cumprod"],
    )
    assert_close(x_t, terms["q_sample"]["x_t"])


def _q_sample_args(**override):
    args = dict(x_start=_x(2, 3), t=_steps(0, 1), noise=_x(2, 3), coef_start=_tab(), coef_noise=_tab())
    return {**args, **override}


BAD_Q_SAMPLE = {
    "int_x": (dict(x_start=torch.ones(2, 3, dtype=torch.int64)), TypeError, "x_start"),
    "shape_mismatch": (dict(noise=_x(2, 4)), ValueError, "shapes must match"),
    "t_float": (dict(t=torch.zeros(2)), TypeError, "t has dtype"),
    "t_length": (dict(t=_steps(0, 0, 0)), ValueError, "t has 3 entries"),
    "t_too_large": (dict(t=_steps(0, NUM_STEPS)), ValueError, "must lie in"),
    "t_negative": (dict(t=_steps(-1, 0)), ValueError, "must lie in"),
    "table_2d": (dict(coef_start=_tab().reshape(2, 5)), ValueError, "coef_start"),
    "table_half": (dict(coef_start=_tab().half()), TypeError, "coef_start"),
    "scalar_x": (dict(x_start=torch.tensor(1.0), noise=torch.tensor(1.0), t=_steps(0)), ValueError, "batch dimension"),
    "not_tensor": (dict(x_start=[1.0, 2.0]), TypeError, "x_start"),
    "mixed_devices": (dict(noise=torch.empty(2, 3, device="meta")), ValueError, "one device"),
}


@pytest.mark.parametrize("case", BAD_Q_SAMPLE.values(), ids=BAD_Q_SAMPLE.keys())
def test_q_sample_bad_input(case):
    override, error, match = case
    with pytest.raises(error, match=match):
        kernels.q_sample(**_q_sample_args(**override))
