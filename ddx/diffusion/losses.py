"""IDDPM's training objectives: the variational-bound term in bits/dim, and training_losses
(MSE, the hybrid loss with its stop-gradient on the mean, KL)."""

import torch

from kernels import reference
from ddx.diffusion._checks import check_input, check_same_shape, check_timesteps
from ddx.diffusion.enums import LossType, ModelMeanType
from ddx.diffusion.mean_variance import check_model_output, p_mean_variance, p_mean_variance_from_output
from ddx.diffusion.posterior import draw_noise, q_posterior_mean_variance, q_sample

approx_standard_normal_cdf = reference.approx_standard_normal_cdf
discretized_gaussian_log_likelihood = reference.discretized_gaussian_log_likelihood


def mean_flat(tensor):
    """The mean over every non-batch dimension: (N, ...) -> (N,)."""
    return tensor.mean(dim=tuple(range(1, tensor.dim())))


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise in nats; python scalars broadcast
    (at least one argument must be a tensor)."""
    like = next((v for v in (mean1, logvar1, mean2, logvar2) if isinstance(v, torch.Tensor)), None)
    if like is None:
        raise TypeError("normal_kl needs at least one torch.Tensor argument")
    # torch.exp needs tensors, so scalar log-variances become tensors of `like`'s dtype and device.
    logvar1, logvar2 = (v if isinstance(v, torch.Tensor) else torch.tensor(v).to(like) for v in (logvar1, logvar2))
    return reference.normal_kl(mean1, logvar1, mean2, logvar2)


def vb_terms_from_mean_variance(diffusion, x_start, x_t, t, mean, log_variance):
    """The bound term (N,) in bits: decoder NLL where t == 0, else KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)).

    One fused pass (or its eager reference, by `diffusion.fused`); mean, log_variance: x_t's shape.
    """
    names = ("posterior_mean_coef1", "posterior_mean_coef2", "posterior_log_variance_clipped")
    tables = [diffusion.table(name, x_t.device) for name in names]
    return diffusion.ops().vb_terms_bpd(x_start, x_t, t, mean, log_variance, *tables)


def vb_terms_bpd(diffusion, model, x_start, x_t, t, clip_denoised=True, model_kwargs=None):
    """A term of the variational bound, in bits: a dict of 'output' (N,) and 'pred_xstart' (x_t's shape)."""
    check_same_shape("x_start", x_start, "x_t", x_t)
    out = p_mean_variance(diffusion, model, x_t, t, clip_denoised=clip_denoised, model_kwargs=model_kwargs)
    output = vb_terms_from_mean_variance(diffusion, x_start, x_t, t, out["mean"], out["log_variance"])
    return {"output": output, "pred_xstart": out["pred_xstart"]}


def _hybrid_vb(diffusion, model_output, x_start, x_t, t):
    """The bound term of a learned variance, with the gradient stopped on the mean channels: the vb term
    trains only the variance, the MSE only the mean. Scaled by T/1000 for RESCALED_MSE."""
    mean_output, var_values = torch.split(model_output, x_t.shape[1], dim=1)
    frozen_out = torch.cat([mean_output.detach(), var_values], dim=1)
    out = p_mean_variance_from_output(diffusion, frozen_out, x_t, t, clip_denoised=False)
    vb = vb_terms_from_mean_variance(diffusion, x_start, x_t, t, out["mean"], out["log_variance"])
    if diffusion.loss_type is LossType.RESCALED_MSE:
        # Without the 1/1000 the vb term would overwhelm the MSE term (as the official code says).
        vb = vb * (diffusion.num_timesteps / 1000.0)
    return mean_output, vb


def training_losses(diffusion, model, x_start, t, model_kwargs=None, noise=None, generator=None):
    """Losses of one training step at timesteps t: a dict of (N,) tensors.

    x_start: (N, C, ...); t: int64 (N,); noise: the q_sample noise (drawn, from `generator` if given,
    when None). KL losses give {'loss'}; MSE losses give {'mse', 'loss'}, plus 'vb' with a learned
    variance (loss = mse + vb).
    """
    check_input("x_start", x_start)
    check_timesteps(t, x_start.shape[0], diffusion.num_timesteps)
    if model_kwargs is None:
        model_kwargs = {}
    if noise is None:
        noise = draw_noise(x_start, generator)
    x_t = q_sample(diffusion, x_start, t, noise=noise)

    if diffusion.loss_type.is_vb:
        loss = vb_terms_bpd(diffusion, model, x_start, x_t, t, clip_denoised=False, model_kwargs=model_kwargs)["output"]
        if diffusion.loss_type is LossType.RESCALED_KL:
            loss = loss * diffusion.num_timesteps
        return {"loss": loss}

    model_output = diffusion.call_model(model, x_t, t, model_kwargs)
    check_model_output(diffusion, model_output, x_t)
    terms = {}
    if diffusion.model_var_type.is_learned:
        model_output, terms["vb"] = _hybrid_vb(diffusion, model_output, x_start, x_t, t)
    if diffusion.model_mean_type is ModelMeanType.PREVIOUS_X:
        target = q_posterior_mean_variance(diffusion, x_start, x_t, t)[0]
    elif diffusion.model_mean_type is ModelMeanType.START_X:
        target = x_start
    else:
        target = noise
    terms["mse"] = mean_flat((target - model_output) ** 2)
    terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
    return terms

