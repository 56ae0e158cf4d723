"""Fused IDDPM variational-bound term (`_vb_terms_bpd`) in bits/dim, one pass over memory.

Per sample n: mean over its elements of KL(q(x_{t-1} | x_t, x_0) || N(model_mean, e^model_log_variance))
for t > 0, or of the discretized-Gaussian decoder NLL of x_0 for t == 0, divided by ln 2.
Program (n, chunk) writes the partial sum of its chunk; a (N, num_chunks) torch sum finishes the
mean, so the result is deterministic. The backward pass is analytic (derivatives below), with the
where/clamp branches of the official formulas: no gradient where a probability is clamped at 1e-12.
"""

import math

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from kernels import reference
from kernels._checks import use_triton
from kernels._library import launcher_op
from kernels._per_sample import (
    INTERPRETED, as_tables, check_batch, clamp_min_passes_grad, inner_size, launch, plan, sample_block,
    store_rounded, validate,
)

LN2 = math.log(2.0)
_LN2 = tl.constexpr(LN2)
_SQRT_2_OVER_PI = tl.constexpr(math.sqrt(2.0 / math.pi))


@triton.jit
def _tanh(x):
    """float32 tanh as accurate as PyTorch's, which matters: the CDF's tails are 1 + tanh, where one ulp
    of tanh is the whole probability. Compiled: libdevice's tanhf (the function torch's CUDA kernel
    calls). Interpreted (extern calls cannot run): float64 exp, rounded once, as torch's CPU tanh."""
    if INTERPRETED:
        e = tl.exp(-2.0 * tl.abs(x).to(tl.float64))
        magnitude = ((1.0 - e) / (1.0 + e)).to(tl.float32)
        result = tl.where(x < 0.0, -magnitude, magnitude)
    else:
        result = libdevice.tanh(x)
    return result


@triton.jit
def _approx_standard_normal_cdf(u):
    """(0.5 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), the tanh) as IDDPM computes it."""
    th = _tanh((u + 0.044715 * (u * u * u)) * _SQRT_2_OVER_PI)
    return 0.5 * (1.0 + th), th


@triton.jit
def _one_minus_square(th):
    """1 - th^2 rounded once, as torch's tanh_backward kernels compute it (compiled to a fused multiply-add);
    in the tails th is within ulps of 1, where a second rounding would change the result by percents.
    Interpreted, fma rounds twice, so the exact float64 product of the two float32 values is used."""
    if INTERPRETED:
        th64 = th.to(tl.float64)
        result = (1.0 - th64 * th64).to(tl.float32)
    else:
        result = tl.fma(-th, th, 1.0)
    return result


@triton.jit
def _approx_standard_normal_cdf_bwd(grad_cdf, u, th):
    """d/du of the approximate CDF times grad_cdf: 0.5 (1 - th^2) sqrt(2/pi) (1 + 3 * 0.044715 u^2)."""
    grad_inner = grad_cdf * 0.5 * _one_minus_square(th) * _SQRT_2_OVER_PI
    return grad_inner + (grad_inner * 0.044715) * (3.0 * (u * u))


@triton.jit
def _decoder_terms(x, mean, log_variance):
    """The discretized Gaussian's intermediates for 8-bit x in [-1, 1] (bins of 2/255), log_scale = log_var / 2."""
    centered_x = x - mean
    inv_stdv = tl.exp(-(0.5 * log_variance))
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_plus, th_plus = _approx_standard_normal_cdf(plus_in)
    cdf_min, th_min = _approx_standard_normal_cdf(min_in)
    return centered_x, inv_stdv, plus_in, min_in, cdf_plus, th_plus, cdf_min, th_min


@triton.jit
def _decoder_log_likelihood(x, mean, log_variance):
    """log P(x) in nats: the lowest bin takes the whole left tail, the highest the right tail."""
    _, _, _, _, cdf_plus, _, cdf_min, _ = _decoder_terms(x, mean, log_variance)
    log_cdf_plus = tl.log(tl.maximum(cdf_plus, 1e-12))
    log_one_minus_cdf_min = tl.log(tl.maximum(1.0 - cdf_min, 1e-12))
    log_cdf_delta = tl.log(tl.maximum(cdf_plus - cdf_min, 1e-12))
    return tl.where(x < -0.999, log_cdf_plus, tl.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))


@triton.jit
def _log_clamped_bwd(grad, p):
    """grad * d/dp log(clamp(p, min=1e-12)): grad / p, or 0 where the clamp holds."""
    return tl.where(clamp_min_passes_grad(p, 1e-12), grad / tl.maximum(p, 1e-12), 0.0)


@triton.jit
def _decoder_log_likelihood_bwd(grad, x, mean, log_variance):
    """(d/d mean, d/d log_variance, d/d x) of the log-likelihood times grad.

    With u± = e^{-log_var/2} (x - mean ± 1/255): lowest bin d log cdf(u+) = cdf'(u+)/cdf(u+) du+,
    highest bin d log(1 - cdf(u-)) = -cdf'(u-)/(1 - cdf(u-)) du-, otherwise both over the bin's mass;
    zero where the clamp at 1e-12 holds; du±/d mean = -e^{-log_var/2}, du±/d log_var = -u±/2.
    """
    centered_x, inv_stdv, plus_in, min_in, cdf_plus, th_plus, cdf_min, th_min = _decoder_terms(x, mean, log_variance)
    lowest = x < -0.999
    highest = x > 0.999
    one_minus_cdf_min = 1.0 - cdf_min
    cdf_delta = cdf_plus - cdf_min
    grad_delta = _log_clamped_bwd(grad, cdf_delta)
    grad_cdf_plus = _log_clamped_bwd(grad, cdf_plus)
    grad_one_minus = _log_clamped_bwd(grad, one_minus_cdf_min)
    grad_cdf_plus = tl.where(lowest, grad_cdf_plus, tl.where(highest, 0.0, grad_delta))
    grad_cdf_min = tl.where(lowest, 0.0, -tl.where(highest, grad_one_minus, grad_delta))
    grad_plus_in = _approx_standard_normal_cdf_bwd(grad_cdf_plus, plus_in, th_plus)
    grad_min_in = _approx_standard_normal_cdf_bwd(grad_cdf_min, min_in, th_min)
    grad_centered = grad_plus_in * inv_stdv + grad_min_in * inv_stdv
    grad_inv_stdv = grad_plus_in * (centered_x + 1.0 / 255.0) + grad_min_in * (centered_x - 1.0 / 255.0)
    grad_log_variance = -(grad_inv_stdv * inv_stdv) * 0.5
    return -grad_centered, grad_log_variance, grad_centered


@triton.jit
def _normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats, in the official formula's order."""
    diff = mean1 - mean2
    return 0.5 * (-1.0 + logvar2 - logvar1 + tl.exp(logvar1 - logvar2) + (diff * diff) * tl.exp(-logvar2))


@triton.jit
def _normal_kl_bwd(grad, mean1, logvar1, mean2, logvar2):
    """(d/d mean2, d/d logvar2) of the KL times grad: (mean2 - mean1) e^{-logvar2} and
    (1 - e^{logvar1 - logvar2} - (mean1 - mean2)^2 e^{-logvar2}) / 2; d/d mean1 = -d/d mean2."""
    diff = mean1 - mean2
    half = grad * 0.5
    inv_var2 = tl.exp(-logvar2)
    grad_mean2 = -((half * inv_var2) * (2.0 * diff))
    grad_logvar2 = half - half * tl.exp(logvar1 - logvar2) - (half * (diff * diff)) * inv_var2
    return grad_mean2, grad_logvar2


@triton.jit
def _vb_terms_bpd_fwd_kernel(
    x_start_ptr, x_t_ptr, mean_ptr, log_variance_ptr, t_ptr, coef1_ptr, coef2_ptr, true_log_variance_ptr,
    partials_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    x_start = tl.load(x_start_ptr + idx, mask=mask).to(tl.float32)
    mean = tl.load(mean_ptr + idx, mask=mask).to(tl.float32)
    log_variance = tl.load(log_variance_ptr + idx, mask=mask).to(tl.float32)
    if step == 0:
        terms = -_decoder_log_likelihood(x_start, mean, log_variance)
    else:
        x_t = tl.load(x_t_ptr + idx, mask=mask).to(tl.float32)
        true_mean = tl.load(coef1_ptr + step) * x_start + tl.load(coef2_ptr + step) * x_t
        terms = _normal_kl(true_mean, tl.load(true_log_variance_ptr + step), mean, log_variance)
    tl.store(partials_ptr + tl.program_id(0).to(tl.int64), tl.sum(tl.where(mask, terms, 0.0), axis=0))


@triton.jit
def _vb_terms_bpd_bwd_kernel(
    grad_out_ptr, x_start_ptr, x_t_ptr, mean_ptr, log_variance_ptr, t_ptr, coef1_ptr, coef2_ptr,
    true_log_variance_ptr, grad_mean_ptr, grad_log_variance_ptr, grad_x_start_ptr, grad_x_t_ptr,
    inner, num_chunks, BLOCK: tl.constexpr,
    NEED_MEAN: tl.constexpr, NEED_LOG_VARIANCE: tl.constexpr, NEED_X_START: tl.constexpr, NEED_X_T: tl.constexpr,
):
    n, offsets, mask = sample_block(inner, num_chunks, BLOCK)
    step = tl.load(t_ptr + n)
    idx = n * inner + offsets
    # Upstream gradient of the sample's bits/dim, through "/ ln 2" and the mean over its elements.
    grad = tl.load(grad_out_ptr + n) / _LN2 / inner
    x_start = tl.load(x_start_ptr + idx, mask=mask).to(tl.float32)
    mean = tl.load(mean_ptr + idx, mask=mask).to(tl.float32)
    log_variance = tl.load(log_variance_ptr + idx, mask=mask).to(tl.float32)
    if step == 0:
        grad_mean, grad_log_variance, grad_x_start = _decoder_log_likelihood_bwd(-grad, x_start, mean, log_variance)
        grad_x_t = tl.zeros((BLOCK,), dtype=tl.float32)
    else:
        coef1 = tl.load(coef1_ptr + step)
        coef2 = tl.load(coef2_ptr + step)
        x_t = tl.load(x_t_ptr + idx, mask=mask).to(tl.float32)
        true_mean = coef1 * x_start + coef2 * x_t
        true_log_variance = tl.load(true_log_variance_ptr + step)
        grad_mean, grad_log_variance = _normal_kl_bwd(grad, true_mean, true_log_variance, mean, log_variance)
        grad_x_start = coef1 * -grad_mean
        grad_x_t = coef2 * -grad_mean
    if NEED_MEAN:
        store_rounded(grad_mean_ptr + idx, grad_mean, mask)
    if NEED_LOG_VARIANCE:
        store_rounded(grad_log_variance_ptr + idx, grad_log_variance, mask)
    if NEED_X_START:
        store_rounded(grad_x_start_ptr + idx, grad_x_start, mask)
    if NEED_X_T:
        store_rounded(grad_x_t_ptr + idx, grad_x_t, mask)


@launcher_op(
    "vb_terms_bpd_fwd",
    "(Tensor x_start, Tensor x_t, Tensor t, Tensor model_mean, Tensor model_log_variance, Tensor[] tables) -> Tensor",
    fake=lambda x_start, *_: x_start.new_empty(x_start.shape[:1], dtype=torch.float32),
)
def vb_terms_bpd_fwd(x_start, x_t, t, model_mean, model_log_variance, tables):
    """Contiguous (N, *) inputs; tables = (coef1, coef2, log_var_clipped) contiguous float32. Returns (N,) float32."""
    batch, inner = x_start.shape[0], inner_size(x_start)
    partials = torch.empty(batch, plan(inner)[1], dtype=torch.float32, device=x_start.device)
    launch(
        _vb_terms_bpd_fwd_kernel, batch, inner, x_start, x_t, model_mean, model_log_variance, t, *tables, partials
    )
    return partials.sum(dim=1) / inner / LN2


def _vb_terms_bpd_bwd_fake(grad_out, x_start, x_t, t, model_mean, model_log_variance, tables, needs):
    inputs = (x_start, x_t, model_mean, model_log_variance)
    return tuple(torch.empty_like(tensor) if need else None for tensor, need in zip(inputs, needs))


@launcher_op(
    "vb_terms_bpd_bwd",
    "(Tensor grad_out, Tensor x_start, Tensor x_t, Tensor t, Tensor model_mean, Tensor model_log_variance, "
    "Tensor[] tables, bool[] needs) -> (Tensor?, Tensor?, Tensor?, Tensor?)",
    fake=_vb_terms_bpd_bwd_fake,
)
def vb_terms_bpd_bwd(grad_out, x_start, x_t, t, model_mean, model_log_variance, tables, needs):
    """Gradients of (x_start, x_t, model_mean, model_log_variance), None where needs says so."""
    inputs = (x_start, x_t, model_mean, model_log_variance)
    grads = [torch.empty_like(tensor) if need else None for tensor, need in zip(inputs, needs)]
    launch(
        _vb_terms_bpd_bwd_kernel, x_start.shape[0], inner_size(x_start),
        grad_out.contiguous().float(), x_start, x_t, model_mean, model_log_variance, t, *tables,
        *(x_start if g is None else g for g in (grads[2], grads[3], grads[0], grads[1])),
        NEED_MEAN=needs[2], NEED_LOG_VARIANCE=needs[3], NEED_X_START=needs[0], NEED_X_T=needs[1],
    )
    return tuple(grads)


class VbTermsBpdFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_start, x_t, t, model_mean, model_log_variance, *tables):
        ctx.save_for_backward(x_start, x_t, t, model_mean, model_log_variance, *tables)
        return vb_terms_bpd_fwd(x_start, x_t, t, model_mean, model_log_variance, tables)

    @staticmethod
    def backward(ctx, grad_out):
        x_start, x_t, t, model_mean, model_log_variance, *tables = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad[i] for i in (0, 1, 3, 4))
        grad_x_start, grad_x_t, grad_mean, grad_log_variance = vb_terms_bpd_bwd(
            grad_out, x_start, x_t, t, model_mean, model_log_variance, tables, needs
        )
        return grad_x_start, grad_x_t, None, grad_mean, grad_log_variance, *([None] * len(tables))


def vb_terms_bpd(
    x_start,
    x_t,
    t,
    model_mean,
    model_log_variance,
    posterior_mean_coef1,
    posterior_mean_coef2,
    posterior_log_variance_clipped,
):
    """IDDPM's variational-bound term per sample in bits/dim (`GaussianDiffusion._vb_terms_bpd`'s output).

    x_start (8-bit images scaled to [-1, 1]), x_t, model_mean, model_log_variance: (N, *) float32/float16/
    bfloat16, same shape; t: (N,) int64; the posterior tables: 1-D float32 (or float64) on the same device.
    Returns (N,) float32: the KL to the true posterior for t > 0, the decoder NLL for t == 0. Differentiable
    in model_mean and model_log_variance (and x_start, x_t). On a GPU, t is assumed in range.
    """
    check_batch(x_start=x_start, x_t=x_t, model_mean=model_mean, model_log_variance=model_log_variance)
    tables = dict(
        posterior_mean_coef1=posterior_mean_coef1,
        posterior_mean_coef2=posterior_mean_coef2,
        posterior_log_variance_clipped=posterior_log_variance_clipped,
    )
    validate(t, dict(x_start=x_start, x_t=x_t, model_mean=model_mean, model_log_variance=model_log_variance), tables)
    if not use_triton(x_start):
        return reference.vb_terms_bpd(x_start, x_t, t, model_mean, model_log_variance, *tables.values())
    return VbTermsBpdFunction.apply(
        x_start.contiguous(), x_t.contiguous(), t.contiguous(), model_mean.contiguous(),
        model_log_variance.contiguous(), *as_tables(*tables.values()),
    )
