"""DDGAN's diffusion side: time schedule, VP / geometric variances, coefficients, posterior sampling.

Names and index convention follow NVlabs/denoising-diffusion-gan (train_ddgan.py): the forward
chain has T+1 entries (a first beta of 1e-8 at index 0), q_sample_pairs(x_0, t) returns
(x_t, x_{t+1}), and the generator and discriminator both see the cleaner index t. The arithmetic
over images goes through kernels/ (fused), or kernels/reference.py, as the coefficient object routes
it: both coefficient classes are ddx.ops.FusedOp (`coeff.fused`, set by ddx.ops.set_fused).
"""

import dataclasses
import enum

import numpy as np
import torch

from ddx.ops import FusedOp
from ddx.profiling import nvtx_range

EPS_SMALL = 1e-3
FIRST_BETA = 1e-8


class VarianceSchedule(enum.Enum):
    """How the marginal variance grows with continuous time in [eps_small, 1]."""

    VP = "vp"
    GEOMETRIC = "geometric"


@dataclasses.dataclass(frozen=True)
class DDGANDiffusionConfig:
    """The official flags num_timesteps, beta_min, beta_max, use_geometric (defaults of train_ddgan.py)."""

    num_timesteps: int = 4
    beta_min: float = 0.1
    beta_max: float = 20.0
    use_geometric: bool = False

    def __post_init__(self):
        if self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {self.num_timesteps}")
        if not 0 < self.beta_min <= self.beta_max:
            raise ValueError(f"need 0 < beta_min <= beta_max, got beta_min={self.beta_min}, beta_max={self.beta_max}")

    @property
    def schedule(self):
        return VarianceSchedule.GEOMETRIC if self.use_geometric else VarianceSchedule.VP


def get_time_schedule(num_timesteps, device=None):
    """Continuous times eps_small + (1 - eps_small) * i / T for i = 0..T, float64, shape (T+1,)."""
    t = torch.from_numpy(np.arange(0, num_timesteps + 1, dtype=np.float64) / num_timesteps)
    return (t * (1.0 - EPS_SMALL) + EPS_SMALL).to(device)


def var_func_vp(t, beta_min, beta_max):
    """Marginal variance of the VP SDE at continuous time t."""
    log_mean_coeff = -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min
    return 1.0 - torch.exp(2.0 * log_mean_coeff)


def var_func_geometric(t, beta_min, beta_max):
    """Geometric variance beta_min * (beta_max / beta_min) ** t."""
    return beta_min * ((beta_max / beta_min) ** t)


def get_sigma_schedule(config, device=None):
    """Per-step (sigmas, a_s, betas), float32, shape (T+1,), betas[0] = 1e-8.

    Raises ValueError where a geometric schedule would give negative alpha_bars (any variance
    >= 1, e.g. beta_max >= 1): the official code silently returns NaN coefficients there.
    """
    t = get_time_schedule(config.num_timesteps)
    if config.schedule is VarianceSchedule.GEOMETRIC:
        var = var_func_geometric(t, config.beta_min, config.beta_max)
        if bool((var >= 1).any()):
            raise ValueError(
                f"use_geometric with beta_min={config.beta_min}, beta_max={config.beta_max} gives variances up to "
                f"{float(var.max()):.4g} >= 1, i.e. negative alpha_bars and NaN coefficients; use beta_max < 1"
            )
    else:
        var = var_func_vp(t, config.beta_min, config.beta_max)
    alpha_bars = 1.0 - var
    betas = 1 - alpha_bars[1:] / alpha_bars[:-1]
    betas = torch.cat((torch.tensor([FIRST_BETA], dtype=torch.float64), betas)).to(torch.float32)
    return (betas**0.5).to(device), torch.sqrt(1 - betas).to(device), betas.to(device)


class DiffusionCoefficients(FusedOp):
    """Forward-chain tables, float32, shape (T+1,): sigmas, a_s, a_s_cum, sigmas_cum, a_s_prev.

    fused: q_sample / q_sample_pairs with these tables run on the Triton kernels (True) or the eager
    reference (False); the attribute may be changed later (ddx.ops.set_fused).
    """

    def __init__(self, config, device=None, fused=True):
        self.fused = bool(fused)
        self.sigmas, self.a_s, _ = get_sigma_schedule(config)
        self.a_s_cum = torch.cumprod(self.a_s, 0)
        self.sigmas_cum = torch.sqrt(1 - self.a_s_cum**2)
        self.a_s_prev = self.a_s.clone()
        self.a_s_prev[-1] = 1
        for name in ("sigmas", "a_s", "a_s_cum", "sigmas_cum", "a_s_prev"):
            setattr(self, name, getattr(self, name).to(device))


class PosteriorCoefficients(FusedOp):
    """Reverse-step tables, float32, shape (T,): the first beta (1e-8) of the sigma schedule is dropped.

    fused: sample_posterior / sample_from_model with these tables run on the Triton kernels (True) or the
    eager reference (False); the attribute may be changed later (ddx.ops.set_fused).
    """

    def __init__(self, config, device=None, fused=True):
        _, _, betas = get_sigma_schedule(config)
        self.betas = betas[1:]
        self.alphas = 1 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat((torch.tensor([1.0]), self.alphas_cumprod[:-1]), 0)
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        self.sqrt_alphas_cumprod = torch.sqrt(self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = torch.rsqrt(self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = torch.sqrt(1 / self.alphas_cumprod - 1)
        self.posterior_mean_coef1 = self.betas * torch.sqrt(self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1 - self.alphas_cumprod_prev) * torch.sqrt(self.alphas) / (1 - self.alphas_cumprod)
        # log(1e-20) where the variance is 0 (t = 0), as the official code.
        self.posterior_log_variance_clipped = torch.log(self.posterior_variance.clamp(min=1e-20))
        for name, value in list(vars(self).items()):
            setattr(self, name, value.to(device))
        self.fused = bool(fused)  # after the loop above, which moves every attribute set so far (all tables)


def _tables_on(x, *tables):
    return [table.to(x.device) for table in tables]


def q_sample(coeff, x_start, t, noise=None):
    """x_t = a_s_cum[t] x_start + sigmas_cum[t] noise; x_start (N, C, H, W), t int64 (N,)."""
    if noise is None:
        noise = torch.randn_like(x_start)
    return coeff.ops().q_sample(x_start, t, noise, *_tables_on(x_start, coeff.a_s_cum, coeff.sigmas_cum))


def q_sample_pairs(coeff, x_start, t, noise=None, noise_next=None):
    """(x_t, x_{t+1}) for training, one pass. Without given noise, draws as the official code:
    first the noise of x_{t+1}, then that of x_t."""
    if noise_next is None:
        noise_next = torch.randn_like(x_start)
    if noise is None:
        noise = torch.randn_like(x_start)
    tables = _tables_on(x_start, coeff.a_s_cum, coeff.sigmas_cum, coeff.a_s, coeff.sigmas)
    return coeff.ops().q_sample_pairs(x_start, t, noise, noise_next, *tables)


def sample_posterior(coeff, x_0, x_t, t, noise=None):
    """A sample of q(x_{t-1} | x_t, x_0) at index t (no noise where t == 0); x_0, x_t (N, C, H, W).

    Noise is drawn for every sample, also where t == 0 (masked), as the official code does."""
    if noise is None:
        noise = torch.randn_like(x_t)
    tables = _tables_on(x_t, coeff.posterior_mean_coef1, coeff.posterior_mean_coef2, coeff.posterior_log_variance_clipped)
    return coeff.ops().sample_posterior(x_0, x_t, t, noise, *tables)


def sample_from_model(coeff, generator, n_time, x_init, nz, latents=None, noises=None):
    """The T-step reverse chain: at each index i = T-1..0 draw z ~ N(0, I) (N, nz), predict x_0 = G(x, i, z),
    then sample the posterior. Random draws in the official order (latent, then posterior noise);
    `latents` (T, N, nz) and `noises` (T, *x.shape), in step order, replay given draws instead.
    NVTX (ddx.profiling): sample/step_<i> around each step, sample/posterior around its posterior sample."""
    x = x_init
    with torch.no_grad():
        for step, i in enumerate(reversed(range(n_time))):
            with nvtx_range(f"sample/step_{i}"):
                t = torch.full((x.size(0),), i, dtype=torch.int64, device=x.device)
                latent_z = torch.randn(x.size(0), nz, device=x.device) if latents is None else latents[step]
                x_0 = generator(x, t, latent_z)
                noise = None if noises is None else noises[step]
                with nvtx_range("sample/posterior"):
                    x = sample_posterior(coeff, x_0, x, t, noise=noise).detach()
    return x
