"""Fused DDGAN sample_posterior: coef1[t] x_0 + coef2[t] x_t + (t != 0) exp(0.5 log_var[t]) noise in one pass."""

import torch
import triton
import triton.language as tl

from kernels import reference
from kernels._checks import use_triton
from kernels._library import launcher_op
from kernels._per_sample import as_tables, check_batch, inner_size, launch, sample_block, store_rounded, validate


@triton.jit
def _noise_scale(log_var_ptr, step):
    """(t != 0) * exp(0.5 * log_var[t]): the posterior standard deviation, masked at the last step."""
    return (1.0 - (step == 0).to(tl.float32)) * tl.exp(0.5 * tl.load(log_var_ptr + step))


@triton.jit
def _sample_posterior_fwd_kernel(
    x_0_ptr, x_t_ptr, noise_ptr, t_ptr, coef1_ptr, coef2_ptr, log_var_ptr, out_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    x_0 = tl.load(x_0_ptr + idx, mask=mask).to(tl.float32)
    x_t = tl.load(x_t_ptr + idx, mask=mask).to(tl.float32)
    noise = tl.load(noise_ptr + idx, mask=mask).to(tl.float32)
    mean = tl.load(coef1_ptr + step) * x_0 + tl.load(coef2_ptr + step) * x_t
    store_rounded(out_ptr + idx, mean + _noise_scale(log_var_ptr, step) * noise, mask)


@triton.jit
def _sample_posterior_bwd_kernel(
    grad_out_ptr, t_ptr, coef1_ptr, coef2_ptr, log_var_ptr, grad_x_0_ptr, grad_x_t_ptr, grad_noise_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
    NEED_X_0: tl.constexpr, NEED_X_T: tl.constexpr, NEED_NOISE: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    grad = tl.load(grad_out_ptr + idx, mask=mask).to(tl.float32)
    if NEED_X_0:
        store_rounded(grad_x_0_ptr + idx, tl.load(coef1_ptr + step) * grad, mask)
    if NEED_X_T:
        store_rounded(grad_x_t_ptr + idx, tl.load(coef2_ptr + step) * grad, mask)
    if NEED_NOISE:
        store_rounded(grad_noise_ptr + idx, _noise_scale(log_var_ptr, step) * grad, mask)


@launcher_op(
    "sample_posterior_fwd",
    "(Tensor x_0, Tensor x_t, Tensor t, Tensor noise, Tensor coef1, Tensor coef2, Tensor log_var) -> Tensor",
    fake=lambda x_0, x_t, *_: torch.empty_like(x_t),
)
def sample_posterior_fwd(x_0, x_t, t, noise, coef1, coef2, log_var):
    """Contiguous (N, *) inputs, contiguous float32 tables. Returns x_t's dtype."""
    out = torch.empty_like(x_t)
    launch(_sample_posterior_fwd_kernel, x_t.shape[0], inner_size(x_t), x_0, x_t, noise, t, coef1, coef2, log_var, out)
    return out


def _sample_posterior_bwd_fake(grad_out, t, tables, x_0_dtype, x_t_dtype, noise_dtype, needs):
    dtypes = (x_0_dtype, x_t_dtype, noise_dtype)
    return tuple(torch.empty_like(grad_out, dtype=dtype) if need else None for dtype, need in zip(dtypes, needs))


@launcher_op(
    "sample_posterior_bwd",
    "(Tensor grad_out, Tensor t, Tensor[] tables, ScalarType x_0_dtype, ScalarType x_t_dtype, ScalarType noise_dtype, "
    "bool[] needs) -> (Tensor?, Tensor?, Tensor?)",
    fake=_sample_posterior_bwd_fake,
)
def sample_posterior_bwd(grad_out, t, tables, x_0_dtype, x_t_dtype, noise_dtype, needs):
    """Gradients of (x_0, x_t, noise) in those dtypes, None where not needed; tables = (coef1, coef2, log_var)."""
    dtypes = (x_0_dtype, x_t_dtype, noise_dtype)
    grad_out = grad_out.contiguous()
    grads = [torch.empty_like(grad_out, dtype=dtype) if need else None for dtype, need in zip(dtypes, needs)]
    launch(
        _sample_posterior_bwd_kernel, grad_out.shape[0], inner_size(grad_out),
        grad_out, t, *tables, *(grad_out if g is None else g for g in grads),
        NEED_X_0=needs[0], NEED_X_T=needs[1], NEED_NOISE=needs[2],
    )
    return tuple(grads)


class SamplePosteriorFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_0, x_t, t, noise, coef1, coef2, log_var):
        ctx.save_for_backward(t, coef1, coef2, log_var)
        ctx.dtypes = (x_0.dtype, x_t.dtype, noise.dtype)
        return sample_posterior_fwd(x_0, x_t, t, noise, coef1, coef2, log_var)

    @staticmethod
    def backward(ctx, grad_out):
        t, *tables = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[3])
        grad_x_0, grad_x_t, grad_noise = sample_posterior_bwd(grad_out, t, tables, *ctx.dtypes, needs)
        return grad_x_0, grad_x_t, None, grad_noise, None, None, None


def sample_posterior(x_0, x_t, t, noise, posterior_mean_coef1, posterior_mean_coef2, posterior_log_variance_clipped):
    """DDGAN's posterior sample x_{t-1} ~ q(x_{t-1} | x_t, x_0) with an explicit noise draw.

    x_0, x_t, noise: (N, *) float32/float16/bfloat16, same shape; t: (N,) int64; the three tables:
    1-D float32 (or float64) Posterior_Coefficients fields on the same device. Returns (N, *) in
    x_t's dtype; differentiable in x_0, x_t (and noise). The noise is masked out where t == 0.
    On a GPU, t is assumed in range (checking would synchronise); on the CPU it is checked.
    """
    check_batch(x_0=x_0, x_t=x_t, noise=noise)
    tables = dict(
        posterior_mean_coef1=posterior_mean_coef1,
        posterior_mean_coef2=posterior_mean_coef2,
        posterior_log_variance_clipped=posterior_log_variance_clipped,
    )
    validate(t, dict(x_0=x_0, x_t=x_t, noise=noise), tables)
    if not use_triton(x_t):
        return reference.sample_posterior(x_0, x_t, t, noise, *tables.values())
    return SamplePosteriorFunction.apply(
        x_0.contiguous(), x_t.contiguous(), t.contiguous(), noise.contiguous(), *as_tables(*tables.values())
    )
