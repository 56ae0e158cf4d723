"""kernels.p_mean_variance_learned_range against kernels/reference.py on random inputs and the official IDDPM fixtures."""

import pytest
import torch

import kernels
from kernels import reference
from tests.kernels.diffusion_op_cases import (  # iddpm: a module-scoped pytest fixture
    NUM_STEPS,
    _steps,
    _x,
    check_against_reference,
    diffusion_tables,
    dtypes,
    iddpm,
    iddpm_learned_range_tables,
    learned_range_tables,
    load_fixture,
    p_mean_variance_case,
    shapes,
    timesteps,
)
from tests.tolerances import assert_close


@shapes
@dtypes
@pytest.mark.parametrize("clip_denoised", [True, False], ids=["clip", "noclip"])
def test_p_mean_variance_learned_range(device, shape, dtype, clip_denoised):
    check_against_reference(*p_mean_variance_case(shape, dtype, device, clip_denoised=clip_denoised), dtype)


@pytest.mark.parametrize("used", [(2,), (0,), (1, 3)], ids=["log_variance", "mean", "variance+pred_xstart"])
def test_p_mean_variance_some_outputs_used(device, used):
    model_output = torch.randn(3, 4, 5, device=device).requires_grad_()
    x = torch.randn(3, 2, 5, device=device)
    args = (model_output, x, timesteps(3, device), *learned_range_tables(device))
    outputs = kernels.p_mean_variance_learned_range(*args)
    expected = reference.p_mean_variance_learned_range(*args)
    upstream = [torch.randn(3, 2, 5, device=device) for _ in used]
    (grad,) = torch.autograd.grad([outputs[i] for i in used], [model_output], upstream)
    (grad_expected,) = torch.autograd.grad([expected[i] for i in used], [model_output], upstream)
    assert_close(grad, grad_expected)


def test_p_mean_variance_clip_gradient_at_boundaries(device):
    """The clip's gradient is zero strictly outside [-1, 1] and, at exactly -1 and +1, whatever the installed
    torch.clamp gives (1 up to torch 2.12, 0 since pytorch/pytorch#184574)."""
    x0 = torch.tensor([[-1.5, -1.0, -0.25, 1.0, 1.5]], device=device)
    model_output = torch.zeros(1, 2, 5, device=device).requires_grad_()
    ones, zeros = torch.ones(NUM_STEPS, device=device), torch.zeros(NUM_STEPS, device=device)
    # sqrt_recip = 1, sqrt_recipm1 = 1: x0 = x - eps = x exactly, so the boundary values are hit exactly.
    args = (model_output, x0.reshape(1, 1, 5), torch.tensor([3], device=device), ones, ones, ones, zeros, zeros, zeros)
    pred_xstart = kernels.p_mean_variance_learned_range(*args, clip_denoised=True)[3]
    (grad,) = torch.autograd.grad(pred_xstart.sum(), [model_output])
    at_bound = -float(torch.autograd.grad(x0.requires_grad_().clamp(-1, 1).sum(), x0)[0][0, 1])
    expected = torch.tensor([0.0, at_bound, -1.0, at_bound, 0.0], device=device)
    torch.testing.assert_close(grad[0, 0], expected, rtol=0, atol=0)
    (grad_expected,) = torch.autograd.grad(reference.p_mean_variance_learned_range(*args)[3].sum(), [model_output])
    torch.testing.assert_close(grad, grad_expected, rtol=0, atol=0)


PMV_OUTPUTS = ("mean", "variance", "log_variance", "pred_xstart")


def assert_outputs_match(outputs, expected):
    """The four p_mean_variance outputs against a fixture dict, naming the one that differs."""
    for name, out in zip(PMV_OUTPUTS, outputs):
        assert_close(out, expected[name], msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize(
    "clip_denoised, key", [(True, "p_mean_variance"), (False, "p_mean_variance_noclip")], ids=["clip", "noclip"]
)
def test_fixture_iddpm_p_mean_variance(iddpm, clip_denoised, key):
    terms, schedule = iddpm
    inputs = terms["inputs"]
    outputs = kernels.p_mean_variance_learned_range(
        inputs["model_output"], terms["q_sample"]["x_t"], inputs["t"], *iddpm_learned_range_tables(schedule),
        clip_denoised=clip_denoised,
    )
    assert_outputs_match(outputs, terms[key])


def test_fixture_iddpm_spaced_p_mean_variance(device):
    """SpacedDiffusion (the stored schedule, T and spacing): the respaced tables indexed by the respaced t."""
    case = load_fixture("iddpm_schedules.pt", device)["spaced_model_call"]
    # An empty timestep_respacing keeps all T steps (script_util.create_gaussian_diffusion).
    section_counts = case["spacing"] or [case["T"]]
    tables = iddpm_learned_range_tables(diffusion_tables(case["schedule"], case["T"], device, section_counts))
    outputs = kernels.p_mean_variance_learned_range(case["model_output"], case["x"], case["t"], *tables)
    assert_outputs_match(outputs, case["p_mean_variance"])


BAD_P_MEAN_VARIANCE = {
    "not_2c_channels": ((_x(2, 5, 4), _x(2, 3, 4)), ValueError, "model_output must have shape"),
    "spatial_mismatch": ((_x(2, 6, 4), _x(2, 3, 5)), ValueError, "model_output must have shape"),
    "rank_1": ((_x(2), _x(2)), ValueError, r"\(N, C, \*spatial\)"),
    "int_model_output": ((torch.zeros(2, 6, 4, dtype=torch.int32), _x(2, 3, 4)), TypeError, "model_output"),
}


@pytest.mark.parametrize("case", BAD_P_MEAN_VARIANCE.values(), ids=BAD_P_MEAN_VARIANCE.keys())
def test_p_mean_variance_bad_input(case):
    (model_output, x), error, match = case
    with pytest.raises(error, match=match):
        kernels.p_mean_variance_learned_range(model_output, x, _steps(0, 1), *learned_range_tables("cpu"))


@pytest.mark.parametrize("clip_denoised", ["no", 1, None], ids=["str", "int", "none"])
def test_p_mean_variance_clip_denoised_must_be_bool(clip_denoised):
    """A truthy non-bool such as "no" must not silently clip."""
    with pytest.raises(TypeError, match="clip_denoised must be a bool"):
        kernels.p_mean_variance_learned_range(
            _x(2, 6, 4), _x(2, 3, 4), _steps(0, 1), *learned_range_tables("cpu"), clip_denoised=clip_denoised
        )


def test_p_mean_variance_t_out_of_range():
    with pytest.raises(ValueError, match="must lie in .* log_betas"):
        tables = learned_range_tables("cpu")[:-1] + (torch.zeros(2),)
        kernels.p_mean_variance_learned_range(_x(2, 6, 4), _x(2, 3, 4), torch.tensor([0, 3]), *tables)
