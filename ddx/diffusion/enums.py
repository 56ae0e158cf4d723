"""The options of IDDPM's Gaussian diffusion (names and meanings of openai/improved-diffusion)."""

import enum


class BetaSchedule(str, enum.Enum):
    """A named beta schedule (get_named_beta_schedule); the value is the official name."""

    LINEAR = "linear"
    COSINE = "cosine"


class ModelMeanType(enum.Enum):
    """What the model's first C output channels predict."""

    PREVIOUS_X = "previous_x"  # x_{t-1}
    START_X = "start_x"  # x_0
    EPSILON = "epsilon"  # the noise


class ModelVarType(enum.Enum):
    """Where the variance of p(x_{t-1} | x_t) comes from.

    LEARNED: the model outputs the log-variance. LEARNED_RANGE: the model outputs v in [-1, 1],
    interpolating the log-variance between FIXED_SMALL (posterior variance) and FIXED_LARGE (beta_t).
    """

    LEARNED = "learned"
    FIXED_SMALL = "fixed_small"
    FIXED_LARGE = "fixed_large"
    LEARNED_RANGE = "learned_range"

    @property
    def is_learned(self):
        """True when the model outputs 2C channels (mean part and variance part)."""
        return self in (ModelVarType.LEARNED, ModelVarType.LEARNED_RANGE)


class LossType(enum.Enum):
    """The training objective."""

    MSE = "mse"  # raw MSE (plus the KL term when the variance is learned)
    RESCALED_MSE = "rescaled_mse"  # raw MSE (plus the KL term scaled by T/1000 when learned): the hybrid loss
    KL = "kl"  # the variational bound term
    RESCALED_KL = "rescaled_kl"  # KL scaled by T, an estimate of the full bound

    @property
    def is_vb(self):
        return self in (LossType.KL, LossType.RESCALED_KL)
