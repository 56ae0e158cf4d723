"""p(x_{t-1} | x_t): the model's mean, variance and x_0 prediction, for every ModelMeanType x ModelVarType.

EPSILON with LEARNED_RANGE (the IDDPM default) is the hot path: one fused op (or its eager
reference, by `diffusion.fused`). The other combinations are plain torch code.
"""

import torch

from ddx.diffusion._checks import check_input, check_timesteps
from ddx.diffusion.enums import ModelMeanType, ModelVarType
from ddx.diffusion.posterior import predict_xstart_from_eps, predict_xstart_from_xprev, q_posterior_mean_variance


def p_mean_variance(diffusion, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None):
    """Apply `model(x, timesteps, **model_kwargs)` and return p(x_{t-1} | x_t) and the x_0 prediction.

    x: (N, C, ...); t: int64 (N,). clip_denoised clips the x_0 prediction to [-1, 1]; denoised_fn, if
    given, applies to the x_0 prediction before the clip. Returns a dict of 'mean', 'variance',
    'log_variance', 'pred_xstart', each x's shape.
    """
    check_input("x", x)
    check_timesteps(t, x.shape[0], diffusion.num_timesteps)
    model_output = diffusion.call_model(model, x, t, model_kwargs)
    return p_mean_variance_from_output(diffusion, model_output, x, t, clip_denoised, denoised_fn)


def check_model_output(diffusion, model_output, x):
    """ValueError unless model_output is (N, 2C, ...) for a learned variance, else (N, C, ...), for x (N, C, ...)."""
    channels = 2 * x.shape[1] if diffusion.model_var_type.is_learned else x.shape[1]
    expected = (x.shape[0], channels, *x.shape[2:])
    if not isinstance(model_output, torch.Tensor) or tuple(model_output.shape) != expected:
        got = tuple(model_output.shape) if isinstance(model_output, torch.Tensor) else type(model_output).__name__
        raise ValueError(f"the model output must have shape {expected} for {diffusion.model_var_type.name}, got {got}")


def model_variance(diffusion, var_values, x, t):
    """(variance, log_variance), each x's shape; var_values (N, C, ...) are the model's variance channels
    (None for the fixed variances)."""
    if diffusion.model_var_type is ModelVarType.LEARNED:
        return torch.exp(var_values), var_values
    if diffusion.model_var_type is ModelVarType.LEARNED_RANGE:
        min_log = diffusion.extract("posterior_log_variance_clipped", t, x.shape)
        max_log = diffusion.extract("log_betas", t, x.shape)
        # var_values in [-1, 1] spans [min_var, max_var] in log space.
        frac = (var_values + 1) / 2
        log_variance = frac * max_log + (1 - frac) * min_log
        return torch.exp(log_variance), log_variance
    if diffusion.model_var_type is ModelVarType.FIXED_LARGE:
        names = ("fixed_large_variance", "fixed_large_log_variance")
    else:
        names = ("posterior_variance", "posterior_log_variance_clipped")
    return tuple(diffusion.extract(name, t, x.shape) for name in names)


def model_mean_and_xstart(diffusion, mean_output, x, t, clip_denoised=True, denoised_fn=None):
    """(mean, pred_xstart), each x's shape, from the model's mean channels (N, C, ...)."""

    def process_xstart(pred):
        if denoised_fn is not None:
            pred = denoised_fn(pred)
        return pred.clamp(-1, 1) if clip_denoised else pred

    if diffusion.model_mean_type is ModelMeanType.PREVIOUS_X:
        return mean_output, process_xstart(predict_xstart_from_xprev(diffusion, x, t, mean_output))
    if diffusion.model_mean_type is ModelMeanType.START_X:
        pred_xstart = process_xstart(mean_output)
    else:
        pred_xstart = process_xstart(predict_xstart_from_eps(diffusion, x, t, mean_output))
    mean, _, _ = q_posterior_mean_variance(diffusion, pred_xstart, x, t)
    return mean, pred_xstart


def p_mean_variance_from_output(diffusion, model_output, x, t, clip_denoised=True, denoised_fn=None):
    """p_mean_variance for a model output already computed: (N, 2C, ...) for learned variances, else (N, C, ...)."""
    check_model_output(diffusion, model_output, x)
    fused_case = diffusion.model_mean_type is ModelMeanType.EPSILON and diffusion.model_var_type is ModelVarType.LEARNED_RANGE
    if fused_case and denoised_fn is None:
        tables = [
            diffusion.table(name, x.device)
            for name in (
                "sqrt_recip_alphas_cumprod",
                "sqrt_recipm1_alphas_cumprod",
                "posterior_mean_coef1",
                "posterior_mean_coef2",
                "posterior_log_variance_clipped",
                "log_betas",
            )
        ]
        mean, variance, log_variance, pred_xstart = diffusion.ops().p_mean_variance_learned_range(
            model_output, x, t, *tables, clip_denoised=clip_denoised
        )
        return {"mean": mean, "variance": variance, "log_variance": log_variance, "pred_xstart": pred_xstart}
    if diffusion.model_var_type.is_learned:
        mean_output, var_values = torch.split(model_output, x.shape[1], dim=1)
    else:
        mean_output, var_values = model_output, None
    variance, log_variance = model_variance(diffusion, var_values, x, t)
    mean, pred_xstart = model_mean_and_xstart(diffusion, mean_output, x, t, clip_denoised, denoised_fn)
    return {"mean": mean, "variance": variance, "log_variance": log_variance, "pred_xstart": pred_xstart}
