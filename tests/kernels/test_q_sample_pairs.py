"""kernels.q_sample_pairs against kernels/reference.py on random inputs and against the official DDGAN fixture."""

import pytest
import torch

import kernels
from kernels import reference
from tests.kernels.diffusion_op_cases import (  # ddgan: a module-scoped pytest fixture
    NUM_STEPS,
    _tab,
    _x,
    check_against_reference,
    ddgan,
    dtypes,
    leaves,
    q_sample_pairs_case,
    shapes,
    timesteps,
)
from tests.tolerances import assert_close


@shapes
@dtypes
def test_q_sample_pairs(device, shape, dtype):
    check_against_reference(*q_sample_pairs_case(shape, dtype, device), dtype)


@pytest.mark.parametrize("output", [0, 1], ids=["x_t_only", "x_next_only"])
def test_q_sample_pairs_one_output_used(device, output):
    x_start, noise, noise_next = leaves((3, 2, 3), torch.float32, 3, device)
    t = timesteps(3, device, NUM_STEPS - 1)
    args = (x_start, t, noise, noise_next, *[torch.rand(NUM_STEPS, device=device) for _ in range(4)])
    upstream = torch.randn(3, 2, 3, device=device)
    leaves_ = [x_start, noise, noise_next]
    grads = torch.autograd.grad(kernels.q_sample_pairs(*args)[output], leaves_, upstream, allow_unused=True)
    expected = torch.autograd.grad(reference.q_sample_pairs(*args)[output], leaves_, upstream, allow_unused=True)
    for grad, exp in zip(grads, expected):
        if exp is None:
            assert grad is None or not grad.any()
        else:
            assert_close(grad, exp)


def test_fixture_ddgan_q_sample_pairs(ddgan):
    case, coeffs = ddgan["q_sample_pairs"], ddgan["vp"]["Diffusion_Coefficients"]
    x_t, x_next = kernels.q_sample_pairs(
        case["x_start"], case["t"],
        case["noise_second_draw_used_for_x_t"], case["noise_first_draw_used_for_x_tp1"],
        coeffs["a_s_cum"], coeffs["sigmas_cum"], coeffs["a_s"], coeffs["sigmas"],
    )
    assert_close(x_t, case["x_t"])
    assert_close(x_next, case["x_tp1"])


def test_q_sample_pairs_t_plus_one_out_of_range():
    x = _x(2, 3)
    short = _tab(NUM_STEPS - 1)
    with pytest.raises(ValueError, match=r"t \+ 1 must lie in .* a_s"):
        kernels.q_sample_pairs(x, torch.tensor([0, NUM_STEPS - 2]), x, x, _tab(), _tab(), short, _tab())
