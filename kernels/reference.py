"""Pure-PyTorch references of every fused op in kernels/.

They are the ground truth of the tests and the eager baseline of the benchmarks. Each computes
in float32 (float64 for float64 inputs of adagn and upfirdn2d) and returns the input's dtype,
with the same formulas, in the same order, as the official code (NVlabs/denoising-diffusion-gan,
openai/improved-diffusion), so that on fp32 inputs they reproduce it bit for bit.

Coefficient tables are 1-D float32 tensors indexed by the per-sample timestep t (int64, (N,)).
"""

import math

import torch
import torch.nn.functional as F


def _per_sample(table, t, ndim):
    """table[t] shaped (N, 1, 1, ...) to broadcast against an ndim-dimensional batch."""
    return table.float()[t].reshape(-1, *([1] * (ndim - 1)))


def _compute_dtype(x):
    """float32 for half and float32 inputs; float64 stays float64 (gradcheck runs through it)."""
    return torch.promote_types(x.dtype, torch.float32)


def _affine(param, x):
    """A (N, C) or (C,) affine parameter shaped to broadcast against x (N, C, *spatial), in x's compute dtype."""
    rows = x.shape[0] if param.dim() == 2 else 1
    return param.to(_compute_dtype(x)).reshape(rows, x.shape[1], *([1] * (x.dim() - 2)))


def adagn(x, gamma, beta, num_groups, eps=1e-6, silu=False):
    """GroupNorm without affine, then `* gamma + beta` (per sample (N, C) or per channel (C,)), then SiLU.

    x: (N, C, *spatial); gamma, beta: (N, C), (C,) or None. Returns x's dtype and shape.
    A group of one element normalises to 0. F.group_norm refuses a batch whose groups all hold one
    element ("more than 1 value per channel", a training-mode check of batch statistics that does not
    apply here), so this calls the op behind it, native_group_norm, the same arithmetic without the check.
    torch's fp32 statistics overflow for huge groups (|x| >~ 1e18 at 512 elements a group: the CPU
    kernel then returns rstd 0 and a finite wrong output, or NaN); on the CPU such groups are
    recomputed by _scaled_group_norm, the kernels' overflow-free arithmetic. Elsewhere the reference
    stays torch's op alone, as the benchmarks' sync-free, compilable eager baseline.
    """
    xc = x.to(_compute_dtype(x))
    n, c = x.shape[:2]
    y, _, rstd = torch.native_group_norm(xc, None, None, n, c, math.prod(x.shape[2:]), num_groups, eps)
    overflowed = ~(rstd > 0)  # a finite variance gives rstd >= 1 / sqrt(fp32 max) > 0; overflow gives 0 or NaN
    if x.device.type == "cpu" and not torch.compiler.is_compiling() and bool(overflowed.any()):
        rescued = _scaled_group_norm(xc, num_groups, eps)
        y = torch.where(overflowed.repeat_interleave(c // num_groups, 1).reshape(n, c, *([1] * (x.dim() - 2))), rescued, y)
    if gamma is not None:
        y = y * _affine(gamma, x)
    if beta is not None:
        y = y + _affine(beta, x)
    if silu:
        y = F.silu(y)
    return y.to(x.dtype)


def _scaled_group_norm(x, num_groups, eps):
    """GroupNorm of x (N, C, *spatial) whose statistics cannot overflow: each group divided by a power of two.

    The power 2^k <= max |x| of the group (k clamped to [0, 126], so 2^-k stays a normal float) makes
    the scaling exact; the statistics of x / 2^k are those of x scaled, and eps scales with them
    (floored at the smallest normal float, far below any variance an fp32 group can have unless it is
    constant, where the output is 0 either way). kernels/adagn.py computes the same way.
    """
    n = x.shape[0]
    groups = x.reshape(n, num_groups, -1)
    amax = groups.detach().abs().amax(-1, keepdim=True)
    k = (torch.frexp(amax).exponent - 1).clamp(0, 126)
    inv_scale = torch.ldexp(torch.ones_like(amax), -k)
    scaled = groups * inv_scale
    var, mean = torch.var_mean(scaled, -1, correction=0, keepdim=True)
    eps_scaled = (eps * inv_scale * inv_scale).clamp_min(torch.finfo(x.dtype).tiny)
    return ((scaled - mean) * torch.rsqrt(var + eps_scaled)).reshape(x.shape)


def upfirdn2d_native(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    """Zero-insert upsample, pad (negative pads crop), convolve with the flipped kernel, downsample.

    The official DDGAN `upfirdn2d_native`: x (N, C, H, W), kernel (kh, kw); returns
    (N, C, (H*up_y + pad_y0 + pad_y1 - kh) // down_y + 1, (W*up_x + pad_x0 + pad_x1 - kw) // down_x + 1).
    """
    n, c, in_h, in_w = x.shape
    kernel_h, kernel_w = kernel.shape
    compute = _compute_dtype(x)
    out = x.to(compute).reshape(-1, in_h, 1, in_w, 1)
    out = F.pad(out, [0, up_x - 1, 0, 0, 0, up_y - 1])
    out = out.reshape(n, c, in_h * up_y, in_w * up_x)
    out = F.pad(out, [max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
    out = out[:, :, max(-pad_y0, 0): out.shape[2] - max(-pad_y1, 0), max(-pad_x0, 0): out.shape[3] - max(-pad_x1, 0)]
    # The official code convolves an (N*C, 1, H, W) batch and then keeps every down-th output. A depthwise
    # conv (groups=C) with stride=down computes the same sums, only the kept ones, bit-identically; on the CPU
    # it is ~20x faster with its double backward (64x128x16x16 down2: 27 ms vs 567 ms; the official form made
    # the stacked-digits DDGAN step take 3.6 s, nearly all in single-channel mkldnn convolution_backward).
    weight = torch.flip(kernel.to(compute), [0, 1]).reshape(1, 1, kernel_h, kernel_w).expand(c, 1, kernel_h, kernel_w)
    out = F.conv2d(out, weight, stride=(down_y, down_x), groups=c)
    return out.to(x.dtype)


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """The official `upfirdn2d(input, kernel, up, down, pad)`; pad (p0, p1) for both axes or (x0, x1, y0, y1)."""
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    return upfirdn2d_native(x, kernel, up, up, down, down, *pad)


def q_sample(x_start, t, noise, coef_start, coef_noise):
    """coef_start[t] * x_start + coef_noise[t] * noise.

    IDDPM: coef_start = sqrt_alphas_cumprod, coef_noise = sqrt_one_minus_alphas_cumprod;
    DDGAN: a_s_cum and sigmas_cum. Also the posterior mean (coef1 * x_0 + coef2 * x_t).
    """
    out = _per_sample(coef_start, t, x_start.dim()) * x_start.float() + _per_sample(coef_noise, t, x_start.dim()) * noise.float()
    return out.to(x_start.dtype)


def q_sample_pairs(x_start, t, noise, noise_next, a_s_cum, sigmas_cum, a_s, sigmas):
    """DDGAN's (x_t, x_{t+1}): x_t = q_sample(x_start, t, noise); x_{t+1} = a_s[t+1] x_t + sigmas[t+1] noise_next."""
    x_t = _per_sample(a_s_cum, t, x_start.dim()) * x_start.float() + _per_sample(sigmas_cum, t, x_start.dim()) * noise.float()
    x_next = _per_sample(a_s, t + 1, x_start.dim()) * x_t + _per_sample(sigmas, t + 1, x_start.dim()) * noise_next.float()
    return x_t.to(x_start.dtype), x_next.to(x_start.dtype)


def sample_posterior(x_0, x_t, t, noise, posterior_mean_coef1, posterior_mean_coef2, posterior_log_variance_clipped):
    """DDGAN's posterior sample: coef1[t] x_0 + coef2[t] x_t + (t != 0) exp(0.5 log_var[t]) noise."""
    nd = x_t.dim()
    mean = _per_sample(posterior_mean_coef1, t, nd) * x_0.float() + _per_sample(posterior_mean_coef2, t, nd) * x_t.float()
    log_var = _per_sample(posterior_log_variance_clipped, t, nd)
    nonzero_mask = (1 - (t == 0).float()).reshape(-1, *([1] * (nd - 1)))
    out = mean + nonzero_mask * torch.exp(0.5 * log_var) * noise.float()
    return out.to(x_t.dtype)


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
    """IDDPM's p_mean_variance for EPSILON prediction with LEARNED_RANGE variance.

    model_output (N, 2C, *spatial) = [eps, v] with v in [-1, 1]; x (N, C, *spatial).
    Returns (mean, variance, log_variance, pred_xstart), each (N, C, *spatial).
    """
    nd = x.dim()
    c = x.shape[1]
    if model_output.shape[1] != 2 * c:
        raise ValueError(f"model_output has {model_output.shape[1]} channels, expected 2 * {c}")
    eps, var_values = model_output.float()[:, :c], model_output.float()[:, c:]
    min_log = _per_sample(posterior_log_variance_clipped, t, nd)
    max_log = _per_sample(log_betas, t, nd)
    frac = (var_values + 1) / 2
    log_variance = frac * max_log + (1 - frac) * min_log
    variance = torch.exp(log_variance)
    xf = x.float()
    pred_xstart = _per_sample(sqrt_recip_alphas_cumprod, t, nd) * xf - _per_sample(sqrt_recipm1_alphas_cumprod, t, nd) * eps
    if clip_denoised:
        pred_xstart = pred_xstart.clamp(-1, 1)
    mean = _per_sample(posterior_mean_coef1, t, nd) * pred_xstart + _per_sample(posterior_mean_coef2, t, nd) * xf
    dt = x.dtype
    return mean.to(dt), variance.to(dt), log_variance.to(dt), pred_xstart.to(dt)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats (broadcasting)."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    """The tanh approximation of the standard normal CDF used by IDDPM."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-probability (nats, elementwise) of 8-bit images x in [-1, 1] under a Gaussian discretised to bins of 2/255."""
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered_x + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered_x - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))


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
    """IDDPM's variational-bound term per sample, in bits/dim, shape (N,).

    KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) averaged over non-batch dims for t > 0, and the
    discretized Gaussian decoder NLL for t == 0. The true posterior is computed from the tables.
    """
    nd = x_start.dim()
    x0, xt = x_start.float(), x_t.float()
    mean, log_var = model_mean.float(), model_log_variance.float()
    true_mean = _per_sample(posterior_mean_coef1, t, nd) * x0 + _per_sample(posterior_mean_coef2, t, nd) * xt
    true_log_var = _per_sample(posterior_log_variance_clipped, t, nd)
    kl = normal_kl(true_mean, true_log_var, mean, log_var).mean(dim=tuple(range(1, nd))) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var).mean(dim=tuple(range(1, nd))) / math.log(2.0)
    return torch.where(t == 0, nll, kl)
