"""The diffusion side of ddx: schedules and the Gaussian diffusion math, with no knowledge of networks.

Improved DDPM (openai/improved-diffusion): GaussianDiffusion / SpacedDiffusion and their functions,
beta schedules, respacing, timestep samplers, DiffusionConfig / create_gaussian_diffusion.
"""

from ddx.diffusion import ddgan  # DDGAN: schedules, coefficients, posterior sampling
from ddx.diffusion.arrays import ARRAY_NAMES, DeviceTables, DiffusionArrays
from ddx.diffusion.config import DiffusionConfig, create_gaussian_diffusion
from ddx.diffusion.enums import BetaSchedule, LossType, ModelMeanType, ModelVarType
from ddx.diffusion.gaussian import GaussianDiffusion
from ddx.diffusion.losses import approx_standard_normal_cdf, discretized_gaussian_log_likelihood, mean_flat, normal_kl
from ddx.diffusion.respace import SpacedDiffusion, TimestepMappedModel, respaced_betas, space_timesteps
from ddx.diffusion.schedules import betas_for_alpha_bar, cosine_beta_schedule, get_named_beta_schedule, linear_beta_schedule
from ddx.diffusion.timestep_sampler import (
    LossAwareSampler,
    LossSecondMomentResampler,
    ScheduleSampler,
    ScheduleSamplerName,
    UniformSampler,
    create_named_schedule_sampler,
)

__all__ = [
    "ARRAY_NAMES",
    "BetaSchedule",
    "DeviceTables",
    "DiffusionArrays",
    "DiffusionConfig",
    "GaussianDiffusion",
    "LossAwareSampler",
    "LossSecondMomentResampler",
    "LossType",
    "ModelMeanType",
    "ModelVarType",
    "ScheduleSampler",
    "ScheduleSamplerName",
    "SpacedDiffusion",
    "TimestepMappedModel",
    "UniformSampler",
    "approx_standard_normal_cdf",
    "betas_for_alpha_bar",
    "cosine_beta_schedule",
    "create_gaussian_diffusion",
    "create_named_schedule_sampler",
    "ddgan",
    "discretized_gaussian_log_likelihood",
    "get_named_beta_schedule",
    "linear_beta_schedule",
    "mean_flat",
    "normal_kl",
    "respaced_betas",
    "space_timesteps",
]
