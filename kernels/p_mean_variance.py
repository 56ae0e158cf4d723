"""Fused IDDPM p_mean_variance for EPSILON prediction with LEARNED_RANGE variance.

One kernel reads eps and v (the two halves of the model output) and x once and writes
mean, variance, log_variance and pred_xstart:
    log_variance = frac * log_betas[t] + (1 - frac) * posterior_log_variance_clipped[t], frac = (v + 1) / 2
    pred_xstart  = clip(sqrt_recip_alphas_cumprod[t] x - sqrt_recipm1_alphas_cumprod[t] eps)
    mean         = posterior_mean_coef1[t] pred_xstart + posterior_mean_coef2[t] x
The backward pass recomputes these from the same three reads instead of saving the outputs.
"""

import torch
import triton
import triton.language as tl

from kernels import reference
from kernels._checks import check_bool, use_triton
from kernels._library import launcher_op
from kernels._per_sample import (
    as_tables, check_batch, clamp_passes_grad, inner_size, launch, sample_block, store_rounded, validate,
)


@triton.jit
def _load_step(x_ptr, model_output_ptr, t_ptr, sqrt_recip_ptr, sqrt_recipm1_ptr, min_log_ptr, max_log_ptr,
               inner, num_chunks, BLOCK: tl.constexpr):
    """This program's eps, v, x (float32) and the per-sample coefficients, in the reference's order.

    model_output rows hold 2 * inner elements: eps then v.
    """
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    eps_ptrs = model_output_ptr + n * 2 * inner + offsets
    eps = tl.load(eps_ptrs, mask=mask).to(tl.float32)
    v = tl.load(eps_ptrs + inner, mask=mask).to(tl.float32)
    x = tl.load(x_ptr + n * inner + offsets, mask=mask).to(tl.float32)
    min_log = tl.load(min_log_ptr + step)
    max_log = tl.load(max_log_ptr + step)
    raw_xstart = tl.load(sqrt_recip_ptr + step) * x - tl.load(sqrt_recipm1_ptr + step) * eps
    return n, offsets, mask, step, eps, v, x, min_log, max_log, raw_xstart


@triton.jit
def _p_mean_variance_fwd_kernel(
    model_output_ptr, x_ptr, t_ptr, sqrt_recip_ptr, sqrt_recipm1_ptr, coef1_ptr, coef2_ptr, min_log_ptr, max_log_ptr,
    mean_ptr, variance_ptr, log_variance_ptr, pred_xstart_ptr,
    inner, num_chunks, BLOCK: tl.constexpr, CLIP: tl.constexpr,
):
    n, offsets, mask, step, eps, v, x, min_log, max_log, pred_xstart = _load_step(
        x_ptr, model_output_ptr, t_ptr, sqrt_recip_ptr, sqrt_recipm1_ptr, min_log_ptr, max_log_ptr,
        inner, num_chunks, BLOCK,
    )
    frac = (v + 1.0) * 0.5
    log_variance = frac * max_log + (1.0 - frac) * min_log
    if CLIP:
        pred_xstart = tl.minimum(tl.maximum(pred_xstart, -1.0, propagate_nan=tl.PropagateNan.ALL), 1.0,
                                 propagate_nan=tl.PropagateNan.ALL)
    mean = tl.load(coef1_ptr + step) * pred_xstart + tl.load(coef2_ptr + step) * x
    idx = n * inner + offsets
    store_rounded(mean_ptr + idx, mean, mask)
    store_rounded(variance_ptr + idx, tl.exp(log_variance), mask)
    store_rounded(log_variance_ptr + idx, log_variance, mask)
    store_rounded(pred_xstart_ptr + idx, pred_xstart, mask)


@triton.jit
def _p_mean_variance_bwd_kernel(
    model_output_ptr, x_ptr, t_ptr, sqrt_recip_ptr, sqrt_recipm1_ptr, coef1_ptr, coef2_ptr, min_log_ptr, max_log_ptr,
    grad_mean_ptr, grad_variance_ptr, grad_log_variance_ptr, grad_pred_xstart_ptr, grad_model_output_ptr, grad_x_ptr,
    inner, num_chunks, BLOCK: tl.constexpr, CLIP: tl.constexpr,
    HAS_GRAD_MEAN: tl.constexpr, HAS_GRAD_VARIANCE: tl.constexpr,
    HAS_GRAD_LOG_VARIANCE: tl.constexpr, HAS_GRAD_PRED_XSTART: tl.constexpr, NEED_X: tl.constexpr,
):
    n, offsets, mask, step, eps, v, x, min_log, max_log, raw_xstart = _load_step(
        x_ptr, model_output_ptr, t_ptr, sqrt_recip_ptr, sqrt_recipm1_ptr, min_log_ptr, max_log_ptr,
        inner, num_chunks, BLOCK,
    )
    idx = n * inner + offsets
    zeros = tl.zeros((BLOCK,), dtype=tl.float32)

    # log_variance: d/dv = (max_log - min_log) / 2, through both the log_variance and variance outputs.
    grad_log_variance = zeros
    if HAS_GRAD_LOG_VARIANCE:
        grad_log_variance = tl.load(grad_log_variance_ptr + idx, mask=mask).to(tl.float32)
    if HAS_GRAD_VARIANCE:
        frac = (v + 1.0) * 0.5
        variance = tl.exp(frac * max_log + (1.0 - frac) * min_log)
        grad_log_variance += tl.load(grad_variance_ptr + idx, mask=mask).to(tl.float32) * variance
    grad_v = (grad_log_variance * max_log - grad_log_variance * min_log) * 0.5

    # pred_xstart feeds its own output and the mean; the clip passes gradient inside [-1, 1] as torch.clamp does.
    coef1 = tl.load(coef1_ptr + step)
    grad_mean = zeros
    if HAS_GRAD_MEAN:
        grad_mean = tl.load(grad_mean_ptr + idx, mask=mask).to(tl.float32)
    grad_xstart = coef1 * grad_mean
    if HAS_GRAD_PRED_XSTART:
        grad_xstart += tl.load(grad_pred_xstart_ptr + idx, mask=mask).to(tl.float32)
    if CLIP:
        grad_xstart = tl.where(clamp_passes_grad(raw_xstart, -1.0, 1.0), grad_xstart, 0.0)
    grad_eps = -(tl.load(sqrt_recipm1_ptr + step) * grad_xstart)

    out_ptrs = grad_model_output_ptr + n * 2 * inner + offsets
    store_rounded(out_ptrs, grad_eps, mask)
    store_rounded(out_ptrs + inner, grad_v, mask)
    if NEED_X:
        grad_x = tl.load(sqrt_recip_ptr + step) * grad_xstart + tl.load(coef2_ptr + step) * grad_mean
        store_rounded(grad_x_ptr + idx, grad_x, mask)


@launcher_op(
    "p_mean_variance_fwd",
    "(Tensor model_output, Tensor x, Tensor t, Tensor[] tables, bool clip_denoised) -> (Tensor, Tensor, Tensor, Tensor)",
    fake=lambda model_output, x, *_: tuple(torch.empty_like(x) for _ in range(4)),
)
def p_mean_variance_fwd(model_output, x, t, tables, clip_denoised):
    """Contiguous model_output (N, 2C, *) and x (N, C, *); tables = (sqrt_recip_alphas_cumprod,
    sqrt_recipm1_alphas_cumprod, posterior_mean_coef1, posterior_mean_coef2, posterior_log_variance_clipped,
    log_betas) contiguous float32. Returns (mean, variance, log_variance, pred_xstart) in x's dtype."""
    outputs = tuple(torch.empty_like(x) for _ in range(4))
    launch(
        _p_mean_variance_fwd_kernel, x.shape[0], inner_size(x), model_output, x, t, *tables, *outputs,
        CLIP=clip_denoised,
    )
    return outputs


def _p_mean_variance_bwd_fake(model_output, x, t, tables, clip_denoised, grads, need_x):
    return torch.empty_like(model_output), (torch.empty_like(x) if need_x else None)


@launcher_op(
    "p_mean_variance_bwd",
    "(Tensor model_output, Tensor x, Tensor t, Tensor[] tables, bool clip_denoised, Tensor?[] grads, bool need_x) "
    "-> (Tensor, Tensor?)",
    fake=_p_mean_variance_bwd_fake,
)
def p_mean_variance_bwd(model_output, x, t, tables, clip_denoised, grads, need_x):
    """(grad of model_output, grad of x or None) from grads = (mean, variance, log_variance, pred_xstart),
    any of which may be None."""
    grads = [None if g is None else g.contiguous() for g in grads]
    grad_model_output = torch.empty_like(model_output)
    grad_x = torch.empty_like(x) if need_x else None
    launch(
        _p_mean_variance_bwd_kernel, x.shape[0], inner_size(x), model_output, x, t, *tables,
        *(x if g is None else g for g in grads), grad_model_output, x if grad_x is None else grad_x,
        CLIP=clip_denoised,
        HAS_GRAD_MEAN=grads[0] is not None, HAS_GRAD_VARIANCE=grads[1] is not None,
        HAS_GRAD_LOG_VARIANCE=grads[2] is not None, HAS_GRAD_PRED_XSTART=grads[3] is not None,
        NEED_X=need_x,
    )
    return grad_model_output, grad_x


class PMeanVarianceFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, model_output, x, t, clip_denoised, *tables):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(model_output, x, t, *tables)
        ctx.clip_denoised = clip_denoised
        return p_mean_variance_fwd(model_output, x, t, tables, clip_denoised)

    @staticmethod
    def backward(ctx, *grads):
        model_output, x, t, *tables = ctx.saved_tensors
        need_model_output, need_x = ctx.needs_input_grad[:2]
        if all(g is None for g in grads) or not (need_model_output or need_x):
            return (None,) * (4 + len(tables))
        grad_model_output, grad_x = p_mean_variance_bwd(model_output, x, t, tables, ctx.clip_denoised, grads, need_x)
        return (grad_model_output if need_model_output else None, grad_x, None, None, *([None] * len(tables)))


def p_mean_variance_learned_range(
    model_output,
    x,
    t,
    sqrt_recip_alphas_cumprod,
    sqrt_recipm1_alphas_cumprod,
    posterior_mean_coef1,
    posterior_mean_coef2,
    posterior_log_variance_clipped,
    log_betas,
    clip_denoised=True,
):
    """IDDPM's p_mean_variance (EPSILON mean, LEARNED_RANGE variance) fused into one pass.

    model_output: (N, 2C, *spatial) = [eps, v], v in [-1, 1]; x: (N, C, *spatial) (float32/float16/bfloat16);
    t: (N,) int64; tables: 1-D float32 (or float64) on the same device (log_betas = log(betas)).
    Returns (mean, variance, log_variance, pred_xstart), each (N, C, *spatial) in x's dtype;
    differentiable in model_output (both halves) and x. clip_denoised (a bool) clamps pred_xstart to [-1, 1]
    (its gradient passes inside [-1, 1]; at exactly -1 and 1 it passes or not as the installed torch.clamp
    does: older releases pass it, torch 2.14 does not). On a GPU, t is assumed in range.
    """
    check_batch(model_output=model_output)
    check_batch(x=x)
    if model_output.dim() < 2 or x.dim() < 2:
        raise ValueError(
            f"model_output and x must be (N, C, *spatial), got shapes {tuple(model_output.shape)} and {tuple(x.shape)}"
        )
    expected = (x.shape[0], 2 * x.shape[1], *x.shape[2:])
    if tuple(model_output.shape) != expected:
        raise ValueError(
            f"model_output must have shape {expected} (eps and v for the {x.shape[1]} channels of x), "
            f"got {tuple(model_output.shape)}"
        )
    tables = dict(
        sqrt_recip_alphas_cumprod=sqrt_recip_alphas_cumprod,
        sqrt_recipm1_alphas_cumprod=sqrt_recipm1_alphas_cumprod,
        posterior_mean_coef1=posterior_mean_coef1,
        posterior_mean_coef2=posterior_mean_coef2,
        posterior_log_variance_clipped=posterior_log_variance_clipped,
        log_betas=log_betas,
    )
    validate(t, dict(model_output=model_output, x=x), tables)
    check_bool("clip_denoised", clip_denoised)
    if not use_triton(x):
        return reference.p_mean_variance_learned_range(
            model_output, x, t, *tables.values(), clip_denoised=clip_denoised
        )
    return PMeanVarianceFunction.apply(
        model_output.contiguous(), x.contiguous(), t.contiguous(), clip_denoised, *as_tables(*tables.values())
    )
