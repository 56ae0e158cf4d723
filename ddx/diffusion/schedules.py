"""IDDPM's beta schedules, float64 numpy arrays of shape (T,) (improved_diffusion/gaussian_diffusion.py)."""

import math

import numpy as np

from ddx.diffusion.enums import BetaSchedule
from ddx.utils.checks import parse_enum

COSINE_OFFSET = 0.008
MAX_BETA = 0.999


def _check_num_timesteps(num_timesteps):
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)) or num_timesteps < 1:
        raise ValueError(f"num_diffusion_timesteps must be a positive int, got {num_timesteps!r}")


def linear_beta_schedule(num_diffusion_timesteps):
    """Ho et al.'s 1e-4 .. 0.02 over 1000 steps, both ends scaled by 1000/T so the schedule keeps its shape."""
    _check_num_timesteps(num_diffusion_timesteps)
    scale = 1000 / num_diffusion_timesteps
    return np.linspace(scale * 0.0001, scale * 0.02, num_diffusion_timesteps, dtype=np.float64)


def betas_for_alpha_bar(num_diffusion_timesteps, alpha_bar, max_beta=MAX_BETA):
    """beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), max_beta): discretises a cumulative-product function."""
    _check_num_timesteps(num_diffusion_timesteps)
    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return np.array(betas, dtype=np.float64)


def cosine_alpha_bar(t, s=COSINE_OFFSET):
    """Nichol & Dhariwal's alpha_bar(t) = cos((t + s) / (1 + s) * pi / 2)^2 for t in [0, 1]."""
    return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2


def cosine_beta_schedule(num_diffusion_timesteps, max_beta=MAX_BETA):
    """The cosine schedule (s = 0.008), betas clipped at 0.999 to avoid the singularity at t = 1."""
    return betas_for_alpha_bar(num_diffusion_timesteps, cosine_alpha_bar, max_beta)


def get_named_beta_schedule(schedule_name, num_diffusion_timesteps):
    """Betas (T,) float64 of a BetaSchedule (or its name, 'linear' / 'cosine')."""
    schedule = parse_enum(BetaSchedule, schedule_name, "beta schedule")
    if schedule is BetaSchedule.LINEAR:
        return linear_beta_schedule(num_diffusion_timesteps)
    return cosine_beta_schedule(num_diffusion_timesteps)
