"""The fused diffusion-arithmetic kernels against kernels/reference.py and the official fixtures.

Triton runs on the `device` fixture (tests/conftest.py: the CPU through its interpreter, or a CUDA GPU).
Every output and every input gradient is compared with the reference under the same upstream gradients,
on odd, size-1 and rank-2 shapes, in float32/float16/bfloat16, with t holding both 0 and T - 1.
"""

import dataclasses
import importlib
import math
import pathlib
from typing import Callable

import pytest
import torch

import kernels
from ddx import diffusion
from kernels import reference
from tests.tolerances import assert_close

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"

SHAPES = [(1, 1, 1, 1), (3, 3, 5, 7), (2, 2, 8, 8), (4, 5)]
SHAPE_IDS = ["1x1x1x1", "3x3x5x7", "2x2x8x8", "4x5"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DTYPE_IDS = ["fp32", "fp16", "bf16"]
NUM_STEPS = 10

shapes = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)


def timesteps(batch, device, num_steps=NUM_STEPS):
    """Random steps with the last one 0 and, for batch > 1, the first T - 1."""
    t = torch.randint(0, num_steps, (batch,), device=device)
    t[0] = num_steps - 1
    t[-1] = 0
    return t


def contiguous(tensor):
    return tensor


def non_contiguous(tensor):
    """The same values in a non-contiguous tensor: every other element of a buffer twice as wide."""
    wide = torch.zeros(*tensor.shape, 2, dtype=tensor.dtype, device=tensor.device)
    wide[..., 0] = tensor
    return wide[..., 0]


def leaves(shape, dtype, count, device, layout=contiguous):
    return [layout(torch.randn(shape, device=device).to(dtype)).requires_grad_() for _ in range(count)]


def check_against_reference(fused, ref, inputs, dtype):
    """Outputs and input gradients of fused(*inputs) against ref(*inputs) for the same upstream gradients."""
    outputs, expected = fused(), ref()
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for out, exp in zip(outputs, expected):
        assert out.dtype == exp.dtype and out.shape == exp.shape
        assert_close(out, exp, dtype)
    upstream = [torch.randn(out.shape, device=out.device).to(out.dtype) for out in outputs]
    grads = torch.autograd.grad(outputs, inputs, upstream)
    expected_grads = torch.autograd.grad(expected, inputs, upstream)
    for grad, exp, leaf in zip(grads, expected_grads, inputs):
        assert grad.dtype == leaf.dtype
        assert_close(grad, exp, dtype)


# Each case builder returns (fused call, reference call, the differentiable inputs) for one op on inputs
# of `shape` and `dtype`, every input tensor passed through `layout` (contiguous or not).


def q_sample_case(shape, dtype, device, layout=contiguous):
    x_start, noise = leaves(shape, dtype, 2, device, layout)
    t = timesteps(shape[0], device)
    coef_start = torch.rand(NUM_STEPS, device=device)
    coef_noise = torch.rand(NUM_STEPS, dtype=torch.float64, device=device)
    args = (x_start, t, noise, coef_start, coef_noise)
    return lambda: kernels.q_sample(*args), lambda: reference.q_sample(*args), [x_start, noise]


def q_sample_pairs_case(shape, dtype, device, layout=contiguous):
    x_start, noise, noise_next = leaves(shape, dtype, 3, device, layout)
    t = timesteps(shape[0], device, NUM_STEPS - 1)
    tables = [torch.rand(NUM_STEPS, device=device) for _ in range(4)]
    args = (x_start, t, noise, noise_next, *tables)
    return lambda: kernels.q_sample_pairs(*args), lambda: reference.q_sample_pairs(*args), [x_start, noise, noise_next]


@shapes
@dtypes
def test_q_sample(device, shape, dtype):
    check_against_reference(*q_sample_case(shape, dtype, device), dtype)


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


def sample_posterior_case(shape, dtype, device, layout=contiguous):
    x_0, x_t, noise = leaves(shape, dtype, 3, device, layout)
    t = timesteps(shape[0], device)
    log_var = torch.rand(NUM_STEPS, device=device) * -10.0
    log_var[0] = torch.log(torch.tensor(1e-20, device=device))
    tables = (torch.rand(NUM_STEPS, device=device), torch.rand(NUM_STEPS, device=device), log_var)
    args = (x_0, x_t, t, noise, *tables)
    return lambda: kernels.sample_posterior(*args), lambda: reference.sample_posterior(*args), [x_0, x_t, noise]


@shapes
@dtypes
def test_sample_posterior(device, shape, dtype):
    check_against_reference(*sample_posterior_case(shape, dtype, device), dtype)


def learned_range_tables(device, num_steps=NUM_STEPS):
    """Positive sqrt tables, posterior coefficients in (0, 1), min_log <= max_log < 0 like a real schedule."""
    log_betas = -torch.rand(num_steps, device=device) * 5.0
    min_log = log_betas - torch.rand(num_steps, device=device) * 3.0
    sqrt_recip, sqrt_recipm1 = 1.0 + torch.rand(num_steps, device=device), torch.rand(num_steps, device=device) * 2.0
    coef1, coef2 = torch.rand(num_steps, device=device), torch.rand(num_steps, device=device)
    return sqrt_recip, sqrt_recipm1, coef1, coef2, min_log, log_betas


def p_mean_variance_case(shape, dtype, device, layout=contiguous, clip_denoised=True):
    model_output = torch.randn(shape[0], 2 * shape[1], *shape[2:], device=device) * 1.5
    model_output = layout(model_output.to(dtype)).requires_grad_()
    (x,) = leaves(shape, dtype, 1, device, layout)
    t = timesteps(shape[0], device)
    args = (model_output, x, t, *learned_range_tables(device))
    return (
        lambda: kernels.p_mean_variance_learned_range(*args, clip_denoised=clip_denoised),
        lambda: reference.p_mean_variance_learned_range(*args, clip_denoised=clip_denoised),
        [model_output, x],
    )


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


def vb_inputs(shape, dtype, device, layout=contiguous):
    """x_start on the 8-bit grid k/127.5 - 1 with exact -1 and +1, a model mean near it (and, for a few
    elements, far from it so that the 1e-12 clamps hold), log-variances of a real schedule's scale."""
    x_start = torch.randint(0, 256, shape, device=device) / 127.5 - 1.0
    flat = x_start.view(-1)
    flat[: min(4, flat.numel())] = torch.tensor([-1.0, 1.0, -1.0, 1.0], device=device)[: flat.numel()]
    mean = x_start + 0.01 * torch.randn(shape, device=device)
    far = torch.rand(shape, device=device) < 0.1
    mean = torch.where(far, x_start + torch.sign(torch.randn(shape, device=device)) * 0.5, mean)
    log_variance = torch.log(torch.rand(shape, device=device) * 1e-4 + 1e-5)
    x_t = torch.randn(shape, device=device)
    return [layout(tensor.to(dtype)).requires_grad_() for tensor in (x_start, x_t, mean, log_variance)]


def vb_tables(device, num_steps=NUM_STEPS):
    def rand():
        return torch.rand(num_steps, device=device)

    return rand(), rand(), torch.log(rand() * 1e-3 + 1e-5)


def vb_terms_bpd_case(shape, dtype, device, layout=contiguous):
    x_start, x_t, mean, log_variance = inputs = vb_inputs(shape, dtype, device, layout)
    t = timesteps(shape[0], device)
    args = (x_start, x_t, t, mean, log_variance, *vb_tables(device))
    return lambda: kernels.vb_terms_bpd(*args), lambda: reference.vb_terms_bpd(*args), inputs


@shapes
@dtypes
def test_vb_terms_bpd(device, shape, dtype):
    check_against_reference(*vb_terms_bpd_case(shape, dtype, device), dtype)


def test_vb_terms_bpd_branches_and_clamps(device):
    """One batch with decoder (t == 0) and KL (t > 0) samples; the decoder's clamp at 1e-12 holds for
    some elements (their gradient must be exactly zero, as in the reference)."""
    shape = (4, 3, 6, 5)
    x_start, x_t, mean, log_variance = inputs = vb_inputs(shape, torch.float32, device)
    t = torch.tensor([0, 1, 0, NUM_STEPS - 1], device=device)
    args = (x_start, x_t, t, mean, log_variance, *vb_tables(device))
    check_against_reference(
        lambda: kernels.vb_terms_bpd(*args), lambda: reference.vb_terms_bpd(*args), inputs, torch.float32
    )
    (grad_mean,) = torch.autograd.grad(kernels.vb_terms_bpd(*args).sum(), [mean])
    with torch.no_grad():
        u = (x_start - mean) * torch.exp(-0.5 * log_variance)
    clamped = (t == 0).view(-1, 1, 1, 1) & (u.abs() > 100)
    assert clamped.any() and not grad_mean[clamped].any()


@dataclasses.dataclass(frozen=True)
class Op:
    """A fused op: its case builder, the kernels/ module that holds it and its kernels' name, _<kernel>_fwd_kernel."""

    case: Callable
    module: str
    kernel: str


OPS = {
    "q_sample": Op(q_sample_case, "kernels.q_sample", "q_sample"),
    "q_sample_pairs": Op(q_sample_pairs_case, "kernels.q_sample_pairs", "q_sample_pairs"),
    "sample_posterior": Op(sample_posterior_case, "kernels.sample_posterior", "sample_posterior"),
    "p_mean_variance": Op(p_mean_variance_case, "kernels.p_mean_variance", "p_mean_variance"),
    "vb_terms_bpd": Op(vb_terms_bpd_case, "kernels.vb_terms", "vb_terms_bpd"),
}
ops = pytest.mark.parametrize("op", OPS.values(), ids=OPS.keys())


@ops
def test_non_contiguous_inputs(device, op):
    """Every tensor input strided (every other element of a wider buffer): outputs and gradients still match."""
    fused, ref, inputs = op.case((3, 3, 5, 7), torch.float32, device, non_contiguous)
    assert not any(tensor.is_contiguous() for tensor in inputs)
    check_against_reference(fused, ref, inputs, torch.float32)


class LaunchSpy:
    """Stands in for a @triton.jit kernel: records each launch (kernel[grid](...)) and runs the real kernel."""

    def __init__(self, kernel, name, launches):
        self.kernel, self.name, self.launches = kernel, name, launches

    def __getitem__(self, grid):
        self.launches.append(self.name)
        return self.kernel[grid]


@ops
def test_triton_kernels_run(monkeypatch, device, op):
    """The forward and backward Triton kernels of each op are what runs: through Triton's interpreter on
    the CPU (not the reference's fallback), compiled on CUDA."""
    module = importlib.import_module(op.module)
    launches = []
    for direction in ("fwd", "bwd"):
        name = f"_{op.kernel}_{direction}_kernel"
        kernel = getattr(module, name)
        if device.type == "cpu":
            assert type(kernel).__name__ == "InterpretedFunction", f"{name} is not run by Triton's interpreter"
        monkeypatch.setattr(module, name, LaunchSpy(kernel, direction, launches))
    check_against_reference(*op.case((2, 3, 4), torch.float32, device), torch.float32)
    assert launches == ["fwd", "bwd"]


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


def load_fixture(name, device):
    return torch.load(FIXTURES / name, weights_only=True, map_location=device)


@pytest.fixture(scope="module")
def ddgan(device):
    return load_fixture("ddgan_coeffs.pt", device)


def diffusion_tables(schedule, num_timesteps, device, section_counts=None):
    """The float64 (T,) arrays (and log_betas) of GaussianDiffusion(get_named_beta_schedule(schedule, T)) as
    tensors on `device`; with section_counts, those of the SpacedDiffusion keeping space_timesteps(T,
    section_counts) of it. Computed from the fixture's stored config, so any schedule / T / spacing works."""
    betas = diffusion.get_named_beta_schedule(schedule, num_timesteps)
    if section_counts is not None:
        betas, _ = diffusion.respaced_betas(betas, diffusion.space_timesteps(num_timesteps, section_counts))
    arrays = diffusion.DiffusionArrays.from_betas(betas)
    return {name: torch.from_numpy(getattr(arrays, name)).to(device) for name in (*diffusion.ARRAY_NAMES, "log_betas")}


@pytest.fixture(scope="module")
def iddpm(device):
    """(iddpm_terms fixture, the coefficient tables of the diffusion its `config` names)."""
    terms = load_fixture("iddpm_terms.pt", device)
    config = terms["config"]
    # The fused p_mean_variance implements this parameterisation only; a different one must fail loudly.
    assert (config["model_mean_type"], config["model_var_type"]) == ("EPSILON", "LEARNED_RANGE"), config
    return terms, diffusion_tables(config["schedule"], config["T"], device)


PMV_OUTPUTS = ("mean", "variance", "log_variance", "pred_xstart")


def assert_outputs_match(outputs, expected):
    """The four p_mean_variance outputs against a fixture dict, naming the one that differs."""
    for name, out in zip(PMV_OUTPUTS, outputs):
        assert_close(out, expected[name], msg=lambda m, name=name: f"{name}: {m}")


def test_fixture_ddgan_q_sample(ddgan):
    case, coeffs = ddgan["q_sample"], ddgan["vp"]["Diffusion_Coefficients"]
    out = kernels.q_sample(case["x_start"], case["t"], case["noise"], coeffs["a_s_cum"], coeffs["sigmas_cum"])
    assert_close(out, case["out"])


def test_fixture_ddgan_q_sample_pairs(ddgan):
    case, coeffs = ddgan["q_sample_pairs"], ddgan["vp"]["Diffusion_Coefficients"]
    x_t, x_next = kernels.q_sample_pairs(
        case["x_start"], case["t"],
        case["noise_second_draw_used_for_x_t"], case["noise_first_draw_used_for_x_tp1"],
        coeffs["a_s_cum"], coeffs["sigmas_cum"], coeffs["a_s"], coeffs["sigmas"],
    )
    assert_close(x_t, case["x_t"])
    assert_close(x_next, case["x_tp1"])


def test_fixture_ddgan_sample_posterior(ddgan):
    case, coeffs = ddgan["sample_posterior"], ddgan["vp"]["Posterior_Coefficients"]
    out = kernels.sample_posterior(
        case["x_0"], case["x_t"], case["t"], case["noise"],
        coeffs["posterior_mean_coef1"], coeffs["posterior_mean_coef2"], coeffs["posterior_log_variance_clipped"],
    )
    assert_close(out, case["out"])


def test_fixture_iddpm_q_sample(iddpm):
    terms, schedule = iddpm
    inputs = terms["inputs"]
    x_t = kernels.q_sample(
        inputs["x_start"], inputs["t"], inputs["noise"],
        schedule["sqrt_alphas_cumprod"], schedule["sqrt_one_minus_alphas_cumprod"],
    )
    assert_close(x_t, terms["q_sample"]["x_t"])


def iddpm_learned_range_tables(schedule):
    """The six p_mean_variance tables of an IDDPM schedule (float64 arrays, as the official code keeps them)."""
    return (
        schedule["sqrt_recip_alphas_cumprod"], schedule["sqrt_recipm1_alphas_cumprod"],
        schedule["posterior_mean_coef1"], schedule["posterior_mean_coef2"],
        schedule["posterior_log_variance_clipped"], schedule["log_betas"],
    )


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


@pytest.mark.parametrize("clip", ["clip_false", "clip_true"])
def test_fixture_iddpm_vb_terms_bpd(iddpm, clip):
    """`_vb_terms_bpd(model, x_start, x_t, t, clip_denoised)`: the fused p_mean_variance feeds the fused vb term."""
    terms, schedule = iddpm
    inputs = terms["inputs"]
    x_t = terms["q_sample"]["x_t"]
    tables = iddpm_learned_range_tables(schedule)
    mean, _, log_variance, pred_xstart = kernels.p_mean_variance_learned_range(
        inputs["model_output"], x_t, inputs["t"], *tables, clip_denoised=clip == "clip_true"
    )
    assert_close(pred_xstart, terms["vb_terms_bpd"][clip]["pred_xstart"])
    out = kernels.vb_terms_bpd(
        inputs["x_start"], x_t, inputs["t"], mean, log_variance,
        schedule["posterior_mean_coef1"], schedule["posterior_mean_coef2"], schedule["posterior_log_variance_clipped"],
    )
    assert_close(out, terms["vb_terms_bpd"][clip]["output"])
    if clip == "clip_false":
        key, expected = training_loss_vb(terms["config"], out)
        assert_close(expected, terms["training_losses"][key])


def training_loss_vb(config, vb):
    """(training_losses key, value) that `training_losses` derives from the unclipped vb term under the config's
    loss type: MSE losses add it as `vb` (RESCALED_MSE times T / 1000), KL losses return it as `loss`
    (RESCALED_KL times T). Scaled in float32, as the official code scales the float32 tensor."""
    scale = {"MSE": 1.0, "RESCALED_MSE": config["T"] / 1000.0, "KL": 1.0, "RESCALED_KL": float(config["T"])}
    key = "vb" if config["loss_type"].endswith("MSE") else "loss"
    return key, vb * scale[config["loss_type"]]


def test_fixture_iddpm_discretized_gaussian_log_likelihood(iddpm, device):
    """The decoder branch (t == 0) against the official elementwise log-likelihood, averaged per sample."""
    case = iddpm[0]["discretized_gaussian_log_likelihood"]
    x, log_scales = case["x"], case["log_scales"]
    batch = x.shape[0]
    out = kernels.vb_terms_bpd(
        x, x, torch.zeros(batch, dtype=torch.int64, device=device), case["means"], 2.0 * log_scales, *vb_tables(device)
    )
    expected = -case["out"].reshape(batch, -1).mean(dim=1) / math.log(2.0)
    assert_close(out, expected)


# Validation happens before dispatch (and t's range is checked on CPU tensors only, kernels/_per_sample.py):
# bad input is checked on CPU tensors under either --device.
def _x(*shape):
    return torch.randn(*shape)


def _tab(length=NUM_STEPS):
    return torch.rand(length)


def _steps(*values):
    return torch.tensor(values, dtype=torch.int64)


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


def test_q_sample_pairs_t_plus_one_out_of_range():
    x = _x(2, 3)
    short = _tab(NUM_STEPS - 1)
    with pytest.raises(ValueError, match=r"t \+ 1 must lie in .* a_s"):
        kernels.q_sample_pairs(x, torch.tensor([0, NUM_STEPS - 2]), x, x, _tab(), _tab(), short, _tab())


def test_sample_posterior_bad_noise_shape():
    with pytest.raises(ValueError, match="noise"):
        kernels.sample_posterior(_x(2, 3), _x(2, 3), _steps(0, 1), _x(2, 4), _tab(), _tab(), _tab())


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


def test_vb_terms_bpd_bad_input():
    x = _x(2, 3)
    with pytest.raises(ValueError, match="shapes must match"):
        kernels.vb_terms_bpd(x, x, torch.zeros(2, dtype=torch.int64), _x(2, 4), x, *vb_tables("cpu"))
    with pytest.raises(TypeError, match="model_log_variance"):
        kernels.vb_terms_bpd(x, x, torch.zeros(2, dtype=torch.int64), x, x.to(torch.int32), *vb_tables("cpu"))
    with pytest.raises(ValueError, match="must lie in .* posterior_mean_coef1"):
        kernels.vb_terms_bpd(x, x, torch.tensor([0, NUM_STEPS]), x, x, *vb_tables("cpu"))
