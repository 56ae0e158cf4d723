"""IDDPM's GaussianDiffusion: the schedule's arrays, the options, and the model-call convention.

The class only holds state; the math lives in small modules (posterior, mean_variance, losses,
sampling, likelihood) whose functions take the diffusion as first argument and are bound here as
methods. It knows nothing of networks: a model is any callable `model(x, timesteps, **model_kwargs)`.
"""

from ddx.diffusion import likelihood, losses, mean_variance, posterior, sampling
from ddx.diffusion.arrays import ARRAY_NAMES, DeviceTables, DiffusionArrays, broadcast_index
from ddx.diffusion.enums import LossType, ModelMeanType, ModelVarType
from ddx.ops import FusedOp
from ddx.utils.checks import parse_enum


class GaussianDiffusion(FusedOp):
    """Training and sampling utilities of a Gaussian diffusion with the given betas (T,).

    model_mean_type / model_var_type / loss_type: enums (or their names). rescale_timesteps: the model
    receives t * 1000 / T as float32 instead of the integer index. fused: the hot arithmetic runs on
    the Triton kernels (True) or on the eager reference (False); the attribute may be changed later.
    The 13 official arrays (betas, alphas_cumprod, ...) are float64 numpy attributes.
    """

    def __init__(self, *, betas, model_mean_type, model_var_type, loss_type, rescale_timesteps=False, fused=True):
        self.model_mean_type = parse_enum(ModelMeanType, model_mean_type, "model_mean_type")
        self.model_var_type = parse_enum(ModelVarType, model_var_type, "model_var_type")
        self.loss_type = parse_enum(LossType, loss_type, "loss_type")
        self.rescale_timesteps = bool(rescale_timesteps)
        self.fused = bool(fused)
        self.arrays = DiffusionArrays.from_betas(betas)
        self.num_timesteps = self.arrays.num_timesteps
        self.tables = DeviceTables(self.arrays)
        for name in ARRAY_NAMES:
            setattr(self, name, getattr(self.arrays, name))

    def table(self, name, device):
        """The float32 (T,) copy of array `name` on `device` (cached)."""
        return self.tables.get(name, device)

    def extract(self, name, t, shape):
        """Array `name` at timesteps t (N,), float32, broadcast to `shape` (N, ...)."""
        return broadcast_index(self.table(name, t.device), t, shape)

    def scale_timesteps(self, t):
        """The timesteps the model is given: t * 1000 / T as float32 with rescale_timesteps, else t."""
        if self.rescale_timesteps:
            return t.float() * (1000.0 / self.num_timesteps)
        return t

    def wrap_model(self, model):
        """The model as this diffusion calls it (a respaced diffusion maps its timesteps back)."""
        return model

    def call_model(self, model, x, t, model_kwargs=None):
        """model(x, timesteps, **model_kwargs) with the timesteps this diffusion gives models."""
        return self.wrap_model(model)(x, self.scale_timesteps(t), **(model_kwargs or {}))

    q_mean_variance = posterior.q_mean_variance
    q_sample = posterior.q_sample
    q_posterior_mean_variance = posterior.q_posterior_mean_variance
    predict_xstart_from_eps = posterior.predict_xstart_from_eps
    predict_xstart_from_xprev = posterior.predict_xstart_from_xprev
    predict_eps_from_xstart = posterior.predict_eps_from_xstart
    p_mean_variance = mean_variance.p_mean_variance
    p_mean_variance_from_output = mean_variance.p_mean_variance_from_output
    vb_terms_bpd = losses.vb_terms_bpd
    training_losses = losses.training_losses
    p_sample = sampling.p_sample
    p_sample_loop = sampling.p_sample_loop
    p_sample_loop_progressive = sampling.p_sample_loop_progressive
    ddim_sample = sampling.ddim_sample
    ddim_reverse_sample = sampling.ddim_reverse_sample
    ddim_sample_loop = sampling.ddim_sample_loop
    ddim_sample_loop_progressive = sampling.ddim_sample_loop_progressive
    prior_bpd = likelihood.prior_bpd
    calc_bpd_loop = likelihood.calc_bpd_loop
