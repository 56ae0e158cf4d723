"""The forward process q(x_t | x_0), its posterior q(x_{t-1} | x_t, x_0), and the conversions between
the model's parametrisations (x_0, x_{t-1}, eps). Each function takes the diffusion as first argument
(a GaussianDiffusion binds them as methods); x tensors are (N, C, ...), t is int64 (N,)."""

import torch

from ddx.diffusion._checks import check_input, check_same_shape, check_timesteps


def draw_noise(like, generator=None):
    """Standard normal noise shaped like `like`: torch.randn_like(like), or drawn from `generator`."""
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def q_mean_variance(diffusion, x_start, t):
    """Mean, variance and log-variance of q(x_t | x_0), each x_start's shape."""
    check_input("x_start", x_start)
    check_timesteps(t, x_start.shape[0], diffusion.num_timesteps)
    shape = x_start.shape
    mean = diffusion.extract("sqrt_alphas_cumprod", t, shape) * x_start
    variance = diffusion.extract("one_minus_alphas_cumprod", t, shape)
    log_variance = diffusion.extract("log_one_minus_alphas_cumprod", t, shape)
    return mean, variance, log_variance


def q_sample(diffusion, x_start, t, noise=None, generator=None):
    """A sample of q(x_t | x_0): sqrt(alpha_bar_t) x_start + sqrt(1 - alpha_bar_t) noise, x_start's shape.

    noise: the normal noise to use (drawn, from `generator` if given, when None). One fused pass.
    """
    check_input("x_start", x_start)
    check_timesteps(t, x_start.shape[0], diffusion.num_timesteps)
    if noise is None:
        noise = draw_noise(x_start, generator)
    check_same_shape("noise", noise, "x_start", x_start)
    device = x_start.device
    coef_start = diffusion.table("sqrt_alphas_cumprod", device)
    coef_noise = diffusion.table("sqrt_one_minus_alphas_cumprod", device)
    return diffusion.ops().q_sample(x_start, t, noise, coef_start, coef_noise)


def q_posterior_mean_variance(diffusion, x_start, x_t, t):
    """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0), each x_t's shape."""
    check_input("x_t", x_t)
    check_same_shape("x_start", x_start, "x_t", x_t)
    check_timesteps(t, x_t.shape[0], diffusion.num_timesteps)
    shape = x_t.shape
    coef1 = diffusion.extract("posterior_mean_coef1", t, shape)
    coef2 = diffusion.extract("posterior_mean_coef2", t, shape)
    mean = coef1 * x_start + coef2 * x_t
    variance = diffusion.extract("posterior_variance", t, shape)
    log_variance_clipped = diffusion.extract("posterior_log_variance_clipped", t, shape)
    return mean, variance, log_variance_clipped


def predict_xstart_from_eps(diffusion, x_t, t, eps):
    """x_0 = sqrt(1 / alpha_bar_t) x_t - sqrt(1 / alpha_bar_t - 1) eps."""
    check_same_shape("eps", eps, "x_t", x_t)
    shape = x_t.shape
    sqrt_recip = diffusion.extract("sqrt_recip_alphas_cumprod", t, shape)
    sqrt_recipm1 = diffusion.extract("sqrt_recipm1_alphas_cumprod", t, shape)
    return sqrt_recip * x_t - sqrt_recipm1 * eps


def predict_xstart_from_xprev(diffusion, x_t, t, xprev):
    """x_0 = (x_{t-1} - coef2 x_t) / coef1, with the posterior mean coefficients (1/coef1, coef2/coef1 in float64)."""
    check_same_shape("xprev", xprev, "x_t", x_t)
    shape = x_t.shape
    return (
        diffusion.extract("recip_posterior_mean_coef1", t, shape) * xprev
        - diffusion.extract("posterior_mean_coef2_over_coef1", t, shape) * x_t
    )


def predict_eps_from_xstart(diffusion, x_t, t, pred_xstart):
    """eps = (sqrt(1 / alpha_bar_t) x_t - x_0) / sqrt(1 / alpha_bar_t - 1)."""
    check_same_shape("pred_xstart", pred_xstart, "x_t", x_t)
    shape = x_t.shape
    sqrt_recip = diffusion.extract("sqrt_recip_alphas_cumprod", t, shape)
    sqrt_recipm1 = diffusion.extract("sqrt_recipm1_alphas_cumprod", t, shape)
    return (sqrt_recip * x_t - pred_xstart) / sqrt_recipm1
