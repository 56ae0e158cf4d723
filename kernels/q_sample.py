"""Fused q_sample: coef_start[t] * x_start + coef_noise[t] * noise in one pass over memory.

IDDPM's q_sample (sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod), DDGAN's (a_s_cum, sigmas_cum),
and any per-sample linear blend of two tensors such as the posterior mean (coef1, coef2).
"""

import torch
import triton
import triton.language as tl

from kernels import reference
from kernels._checks import use_triton
from kernels._library import launcher_op
from kernels._per_sample import as_tables, check_batch, inner_size, launch, sample_block, store_rounded, validate


@triton.jit
def _q_sample_fwd_kernel(
    x_start_ptr, noise_ptr, t_ptr, coef_start_ptr, coef_noise_ptr, out_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    coef_start = tl.load(coef_start_ptr + step)
    coef_noise = tl.load(coef_noise_ptr + step)
    idx = n * inner + offsets
    x_start = tl.load(x_start_ptr + idx, mask=mask).to(tl.float32)
    noise = tl.load(noise_ptr + idx, mask=mask).to(tl.float32)
    store_rounded(out_ptr + idx, coef_start * x_start + coef_noise * noise, mask)


@triton.jit
def _q_sample_bwd_kernel(
    grad_out_ptr, t_ptr, coef_start_ptr, coef_noise_ptr, grad_x_start_ptr, grad_noise_ptr,
    inner, num_chunks, BLOCK: tl.constexpr, NEED_X_START: tl.constexpr, NEED_NOISE: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    grad = tl.load(grad_out_ptr + idx, mask=mask).to(tl.float32)
    if NEED_X_START:
        store_rounded(grad_x_start_ptr + idx, tl.load(coef_start_ptr + step) * grad, mask)
    if NEED_NOISE:
        store_rounded(grad_noise_ptr + idx, tl.load(coef_noise_ptr + step) * grad, mask)


@launcher_op(
    "q_sample_fwd",
    "(Tensor x_start, Tensor t, Tensor noise, Tensor coef_start, Tensor coef_noise) -> Tensor",
    fake=lambda x_start, *_: torch.empty_like(x_start),
)
def q_sample_fwd(x_start, t, noise, coef_start, coef_noise):
    """x_start, noise: contiguous (N, *); tables contiguous float32. Returns x_start's dtype."""
    out = torch.empty_like(x_start)
    launch(_q_sample_fwd_kernel, x_start.shape[0], inner_size(x_start), x_start, noise, t, coef_start, coef_noise, out)
    return out


def _q_sample_bwd_fake(grad_out, t, coef_start, coef_noise, x_start_dtype, noise_dtype, need_x_start, need_noise):
    return (
        torch.empty_like(grad_out, dtype=x_start_dtype) if need_x_start else None,
        torch.empty_like(grad_out, dtype=noise_dtype) if need_noise else None,
    )


@launcher_op(
    "q_sample_bwd",
    "(Tensor grad_out, Tensor t, Tensor coef_start, Tensor coef_noise, ScalarType x_start_dtype, "
    "ScalarType noise_dtype, bool need_x_start, bool need_noise) -> (Tensor?, Tensor?)",
    fake=_q_sample_bwd_fake,
)
def q_sample_bwd(grad_out, t, coef_start, coef_noise, x_start_dtype, noise_dtype, need_x_start, need_noise):
    """(coef_start[t] * grad_out or None, coef_noise[t] * grad_out or None) in the inputs' dtypes."""
    grad_out = grad_out.contiguous()
    grad_x_start = torch.empty_like(grad_out, dtype=x_start_dtype) if need_x_start else None
    grad_noise = torch.empty_like(grad_out, dtype=noise_dtype) if need_noise else None
    launch(
        _q_sample_bwd_kernel, grad_out.shape[0], inner_size(grad_out),
        grad_out, t, coef_start, coef_noise,
        grad_out if grad_x_start is None else grad_x_start,
        grad_out if grad_noise is None else grad_noise,
        NEED_X_START=need_x_start, NEED_NOISE=need_noise,
    )
    return grad_x_start, grad_noise


class QSampleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_start, t, noise, coef_start, coef_noise):
        ctx.save_for_backward(t, coef_start, coef_noise)
        ctx.dtypes = (x_start.dtype, noise.dtype)
        return q_sample_fwd(x_start, t, noise, coef_start, coef_noise)

    @staticmethod
    def backward(ctx, grad_out):
        t, coef_start, coef_noise = ctx.saved_tensors
        need_x_start, _, need_noise = ctx.needs_input_grad[:3]
        grad_x_start, grad_noise = q_sample_bwd(
            grad_out, t, coef_start, coef_noise, *ctx.dtypes, need_x_start, need_noise
        )
        return grad_x_start, None, grad_noise, None, None


def q_sample(x_start, t, noise, coef_start, coef_noise):
    """coef_start[t] * x_start + coef_noise[t] * noise, computed in float32.

    x_start, noise: (N, *) float32/float16/bfloat16, same shape; t: (N,) int64 timesteps;
    coef_start, coef_noise: 1-D float32 (or float64) tables on the same device.
    Returns (N, *) in x_start's dtype; differentiable in x_start and noise.
    On a GPU, t is assumed to index the tables (checking would synchronise); on the CPU it is checked.
    """
    check_batch(x_start=x_start, noise=noise)
    validate(t, dict(x_start=x_start, noise=noise), dict(coef_start=coef_start, coef_noise=coef_noise))
    if not use_triton(x_start):
        return reference.q_sample(x_start, t, noise, coef_start, coef_noise)
    return QSampleFunction.apply(
        x_start.contiguous(), t.contiguous(), noise.contiguous(), *as_tables(coef_start, coef_noise)
    )
