"""Fused DDGAN q_sample_pairs: (x_t, x_{t+1}) in one pass over memory.

x_t = a_s_cum[t] x_start + sigmas_cum[t] noise stays in float32 registers and feeds
x_{t+1} = a_s[t+1] x_t + sigmas[t+1] noise_next, exactly as the reference rounds it.
"""

import torch
import triton
import triton.language as tl

from kernels import reference
from kernels._checks import use_triton
from kernels._library import launcher_op
from kernels._per_sample import as_tables, check_batch, inner_size, launch, sample_block, store_rounded, validate


@triton.jit
def _q_sample_pairs_fwd_kernel(
    x_start_ptr, noise_ptr, noise_next_ptr, t_ptr, a_s_cum_ptr, sigmas_cum_ptr, a_s_ptr, sigmas_ptr,
    x_t_ptr, x_next_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    x_start = tl.load(x_start_ptr + idx, mask=mask).to(tl.float32)
    noise = tl.load(noise_ptr + idx, mask=mask).to(tl.float32)
    noise_next = tl.load(noise_next_ptr + idx, mask=mask).to(tl.float32)
    x_t = tl.load(a_s_cum_ptr + step) * x_start + tl.load(sigmas_cum_ptr + step) * noise
    x_next = tl.load(a_s_ptr + step + 1) * x_t + tl.load(sigmas_ptr + step + 1) * noise_next
    store_rounded(x_t_ptr + idx, x_t, mask)
    store_rounded(x_next_ptr + idx, x_next, mask)


@triton.jit
def _q_sample_pairs_bwd_kernel(
    grad_x_t_ptr, grad_x_next_ptr, t_ptr, a_s_cum_ptr, sigmas_cum_ptr, a_s_ptr, sigmas_ptr,
    grad_x_start_ptr, grad_noise_ptr, grad_noise_next_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
    HAS_GRAD_X_T: tl.constexpr, HAS_GRAD_X_NEXT: tl.constexpr,
    NEED_X_START: tl.constexpr, NEED_NOISE: tl.constexpr, NEED_NOISE_NEXT: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    # Gradient reaching the float32 x_t: its own output's plus the path through x_{t+1}.
    grad_x_t = tl.zeros((BLOCK,), dtype=tl.float32)
    grad_x_next = tl.zeros((BLOCK,), dtype=tl.float32)
    if HAS_GRAD_X_NEXT:
        grad_x_next = tl.load(grad_x_next_ptr + idx, mask=mask).to(tl.float32)
        grad_x_t = tl.load(a_s_ptr + step + 1) * grad_x_next
    if HAS_GRAD_X_T:
        grad_x_t = tl.load(grad_x_t_ptr + idx, mask=mask).to(tl.float32) + grad_x_t
    if NEED_X_START:
        store_rounded(grad_x_start_ptr + idx, tl.load(a_s_cum_ptr + step) * grad_x_t, mask)
    if NEED_NOISE:
        store_rounded(grad_noise_ptr + idx, tl.load(sigmas_cum_ptr + step) * grad_x_t, mask)
    if NEED_NOISE_NEXT:
        store_rounded(grad_noise_next_ptr + idx, tl.load(sigmas_ptr + step + 1) * grad_x_next, mask)


@launcher_op(
    "q_sample_pairs_fwd",
    "(Tensor x_start, Tensor t, Tensor noise, Tensor noise_next, Tensor a_s_cum, Tensor sigmas_cum, Tensor a_s, "
    "Tensor sigmas) -> (Tensor, Tensor)",
    fake=lambda x_start, *_: (torch.empty_like(x_start), torch.empty_like(x_start)),
)
def q_sample_pairs_fwd(x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas):
    """Contiguous (N, *) inputs, contiguous float32 tables. Returns (x_t, x_next) in x_start's dtype."""
    x_t, x_next = torch.empty_like(x_start), torch.empty_like(x_start)
    launch(
        _q_sample_pairs_fwd_kernel, x_start.shape[0], inner_size(x_start),
        x_start, noise, noise_next, t, a_s_cum, sigmas_cum, a_s, sigmas, x_t, x_next,
    )
    return x_t, x_next


def _q_sample_pairs_bwd_fake(grad_x_t, grad_x_next, t, tables, x_start_dtype, noise_dtype, noise_next_dtype, needs):
    dtypes = (x_start_dtype, noise_dtype, noise_next_dtype)
    present = grad_x_t if grad_x_t is not None else grad_x_next
    return tuple(torch.empty_like(present, dtype=dtype) if need else None for dtype, need in zip(dtypes, needs))


@launcher_op(
    "q_sample_pairs_bwd",
    "(Tensor? grad_x_t, Tensor? grad_x_next, Tensor t, Tensor[] tables, ScalarType x_start_dtype, "
    "ScalarType noise_dtype, ScalarType noise_next_dtype, bool[] needs) "
    "-> (Tensor?, Tensor?, Tensor?)",
    fake=_q_sample_pairs_bwd_fake,
)
def q_sample_pairs_bwd(grad_x_t, grad_x_next, t, tables, x_start_dtype, noise_dtype, noise_next_dtype, needs):
    """Gradients of (x_start, noise, noise_next) (None where not needed) from those of (x_t, x_next).

    grad_x_t / grad_x_next may be None (output unused); tables = (a_s_cum, sigmas_cum, a_s, sigmas);
    the dtypes and needs are per input, in that order.
    """
    dtypes = (x_start_dtype, noise_dtype, noise_next_dtype)
    present = grad_x_t if grad_x_t is not None else grad_x_next
    grad_x_t = None if grad_x_t is None else grad_x_t.contiguous()
    grad_x_next = None if grad_x_next is None else grad_x_next.contiguous()
    grads = [
        torch.empty(present.shape, dtype=dtype, device=present.device) if need else None
        for dtype, need in zip(dtypes, needs)
    ]
    launch(
        _q_sample_pairs_bwd_kernel, present.shape[0], inner_size(present),
        *(present if g is None else g for g in (grad_x_t, grad_x_next)), t, *tables,
        *(present if g is None else g for g in grads),
        HAS_GRAD_X_T=grad_x_t is not None, HAS_GRAD_X_NEXT=grad_x_next is not None,
        NEED_X_START=needs[0], NEED_NOISE=needs[1], NEED_NOISE_NEXT=needs[2],
    )
    return tuple(grads)


class QSamplePairsFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(t, a_s_cum, sigmas_cum, a_s, sigmas)
        ctx.dtypes = (x_start.dtype, noise.dtype, noise_next.dtype)
        return q_sample_pairs_fwd(x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas)

    @staticmethod
    def backward(ctx, grad_x_t, grad_x_next):
        t, *tables = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[2], ctx.needs_input_grad[3])
        if (grad_x_t is None and grad_x_next is None) or not any(needs):
            return (None,) * 8
        grad_x_start, grad_noise, grad_noise_next = q_sample_pairs_bwd(
            grad_x_t, grad_x_next, t, tables, *ctx.dtypes, needs
        )
        return grad_x_start, None, grad_noise, grad_noise_next, None, None, None, None


def q_sample_pairs(x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas):
    """DDGAN's (x_t, x_{t+1}) with explicit noises.

    x_start, noise (the draw for x_t), noise_next (the draw for x_{t+1}): (N, *) float32/float16/bfloat16,
    same shape; t: (N,) int64 with t + 1 indexing a_s and sigmas; a_s_cum, sigmas_cum, a_s, sigmas: 1-D
    float32 (or float64) tables of length T + 1 (DDGAN's Diffusion_Coefficients) on the same device.
    Returns (x_t, x_next), each (N, *) in x_start's dtype; differentiable in x_start, noise, noise_next.
    On a GPU, t is assumed in range (checking would synchronise); on the CPU it is checked.
    """
    check_batch(x_start=x_start, noise=noise, noise_next=noise_next)
    tensors = dict(x_start=x_start, noise=noise, noise_next=noise_next)
    validate(t, tensors, dict(a_s_cum=a_s_cum, sigmas_cum=sigmas_cum))
    validate(t, tensors, dict(a_s=a_s, sigmas=sigmas), offset=1)
    if not use_triton(x_start):
        return reference.q_sample_pairs(x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas)
    return QSamplePairsFunction.apply(
        x_start.contiguous(), t.contiguous(), noise.contiguous(), noise_next.contiguous(),
        *as_tables(a_s_cum, sigmas_cum, a_s, sigmas),
    )
