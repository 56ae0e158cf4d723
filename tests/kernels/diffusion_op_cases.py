"""What the fused diffusion-op tests share: shapes, dtypes, layouts, case builders, OPS and the official fixtures."""

import dataclasses
import pathlib
from typing import Callable

import pytest
import torch

import kernels
from ddx import diffusion
from kernels import reference
from tests.tolerances import assert_close

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"

# Triton runs on the `device` fixture (tests/conftest.py: the CPU through its interpreter, or a CUDA GPU).
# Every output and every input gradient is compared with the reference under the same upstream gradients,
# on odd, size-1 and rank-2 shapes, in float32/float16/bfloat16, with t holding both 0 and T - 1.
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


def sample_posterior_case(shape, dtype, device, layout=contiguous):
    x_0, x_t, noise = leaves(shape, dtype, 3, device, layout)
    t = timesteps(shape[0], device)
    log_var = torch.rand(NUM_STEPS, device=device) * -10.0
    log_var[0] = torch.log(torch.tensor(1e-20, device=device))
    tables = (torch.rand(NUM_STEPS, device=device), torch.rand(NUM_STEPS, device=device), log_var)
    args = (x_0, x_t, t, noise, *tables)
    return lambda: kernels.sample_posterior(*args), lambda: reference.sample_posterior(*args), [x_0, x_t, noise]


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


# The official fixtures. `ddgan` and `iddpm` are module-scoped pytest fixtures: a test file uses them by
# importing them by these names (pytest finds a fixture in the test module's namespace), once per module.


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


def iddpm_learned_range_tables(schedule):
    """The six p_mean_variance tables of an IDDPM schedule (float64 arrays, as the official code keeps them)."""
    return (
        schedule["sqrt_recip_alphas_cumprod"], schedule["sqrt_recipm1_alphas_cumprod"],
        schedule["posterior_mean_coef1"], schedule["posterior_mean_coef2"],
        schedule["posterior_log_variance_clipped"], schedule["log_betas"],
    )


# Validation happens before dispatch (and t's range is checked on CPU tensors only, kernels/_per_sample.py):
# bad input is checked on CPU tensors under either --device.
def _x(*shape):
    return torch.randn(*shape)


def _tab(length=NUM_STEPS):
    return torch.rand(length)


def _steps(*values):
    return torch.tensor(values, dtype=torch.int64)
