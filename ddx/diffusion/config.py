"""DiffusionConfig and create_gaussian_diffusion (script_util.py of improved-diffusion)."""

import dataclasses

from ddx.diffusion.enums import BetaSchedule, LossType, ModelMeanType, ModelVarType
from ddx.diffusion.respace import SpacedDiffusion, space_timesteps
from ddx.diffusion.schedules import get_named_beta_schedule
from ddx.utils.checks import parse_enum


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """The diffusion flags of improved-diffusion, with create_gaussian_diffusion's defaults.

    (The official training script's defaults differ: rescale_timesteps=True, rescale_learned_sigmas=True.)
    timestep_respacing: "" keeps every step; "10,15,20", "ddimN" or a tuple of section counts as in space_timesteps.
    """

    steps: int = 1000
    learn_sigma: bool = False
    sigma_small: bool = False
    noise_schedule: BetaSchedule = BetaSchedule.LINEAR
    use_kl: bool = False
    predict_xstart: bool = False
    rescale_timesteps: bool = False
    rescale_learned_sigmas: bool = False
    timestep_respacing: str | tuple[int, ...] = ""

    def __post_init__(self):
        object.__setattr__(self, "noise_schedule", parse_enum(BetaSchedule, self.noise_schedule, "noise_schedule"))
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if isinstance(self.timestep_respacing, (list, tuple)):
            object.__setattr__(self, "timestep_respacing", tuple(int(c) for c in self.timestep_respacing))
        elif not isinstance(self.timestep_respacing, str):
            raise TypeError(
                f"timestep_respacing must be a string such as '' or 'ddim50', or section counts, got {self.timestep_respacing!r}"
            )

    @property
    def model_mean_type(self):
        return ModelMeanType.START_X if self.predict_xstart else ModelMeanType.EPSILON

    @property
    def model_var_type(self):
        if self.learn_sigma:
            return ModelVarType.LEARNED_RANGE
        return ModelVarType.FIXED_SMALL if self.sigma_small else ModelVarType.FIXED_LARGE

    @property
    def loss_type(self):
        if self.use_kl:
            return LossType.RESCALED_KL
        return LossType.RESCALED_MSE if self.rescale_learned_sigmas else LossType.MSE

    def build(self, fused=True):
        """The SpacedDiffusion these flags describe (every step kept when timestep_respacing is "")."""
        respacing = self.timestep_respacing or [self.steps]
        return SpacedDiffusion(
            space_timesteps(self.steps, respacing),
            betas=get_named_beta_schedule(self.noise_schedule, self.steps),
            model_mean_type=self.model_mean_type,
            model_var_type=self.model_var_type,
            loss_type=self.loss_type,
            rescale_timesteps=self.rescale_timesteps,
            fused=fused,
        )


def create_gaussian_diffusion(
    *,
    steps=1000,
    learn_sigma=False,
    sigma_small=False,
    noise_schedule="linear",
    use_kl=False,
    predict_xstart=False,
    rescale_timesteps=False,
    rescale_learned_sigmas=False,
    timestep_respacing="",
    fused=True,
):
    """The official factory: a SpacedDiffusion (learn_sigma -> LEARNED_RANGE, use_kl -> RESCALED_KL, ...)."""
    config = DiffusionConfig(
        steps=steps,
        learn_sigma=learn_sigma,
        sigma_small=sigma_small,
        noise_schedule=noise_schedule,
        use_kl=use_kl,
        predict_xstart=predict_xstart,
        rescale_timesteps=rescale_timesteps,
        rescale_learned_sigmas=rescale_learned_sigmas,
        timestep_respacing=timestep_respacing,
    )
    return config.build(fused=fused)
