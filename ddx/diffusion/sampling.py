"""Ancestral sampling (p_sample) and DDIM (forward and reverse), one step and whole loops.

Every random draw can be injected (`noise=` one tensor per step, or a torch.Generator), so that a
recorded official run can be replayed exactly. Without either, draws come from torch's global RNG
in the official order (one torch.randn_like per step, DDIM included even when eta = 0).
"""

import torch

from ddx.diffusion._checks import check_same_shape
from ddx.diffusion.mean_variance import p_mean_variance
from ddx.diffusion.posterior import draw_noise, predict_eps_from_xstart
from ddx.utils.progress import Progress


def _nonzero_mask(t, x):
    """(N, 1, ..., 1) float: 0 where t == 0 (the last step adds no noise), else 1."""
    return (t != 0).float().view(-1, *([1] * (x.dim() - 1)))


def _step_noise(x, noise, generator):
    if noise is None:
        return draw_noise(x, generator)
    check_same_shape("noise", noise, "x", x)
    return noise


def p_sample(diffusion, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None, noise=None, generator=None):
    """A sample of p(x_{t-1} | x_t): a dict of 'sample' and 'pred_xstart', each x's shape (N, C, ...)."""
    out = p_mean_variance(diffusion, model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn, model_kwargs=model_kwargs)
    noise = _step_noise(x, noise, generator)
    sample = out["mean"] + _nonzero_mask(t, x) * torch.exp(0.5 * out["log_variance"]) * noise
    return {"sample": sample, "pred_xstart": out["pred_xstart"]}


def ddim_sample(
    diffusion, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None, eta=0.0, noise=None, generator=None
):
    """One DDIM step x_t -> x_{t-1} (Song et al., eq. 12), eta = 0 deterministic, eta = 1 like DDPM.

    Returns a dict of 'sample' and 'pred_xstart', each x's shape. eps is re-derived from the x_0
    prediction so that every ModelMeanType works.
    """
    out = p_mean_variance(diffusion, model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn, model_kwargs=model_kwargs)
    eps = predict_eps_from_xstart(diffusion, x, t, out["pred_xstart"])
    alpha_bar = diffusion.extract("alphas_cumprod", t, x.shape)
    alpha_bar_prev = diffusion.extract("alphas_cumprod_prev", t, x.shape)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
    noise = _step_noise(x, noise, generator)
    mean_pred = out["pred_xstart"] * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
    sample = mean_pred + _nonzero_mask(t, x) * sigma * noise
    return {"sample": sample, "pred_xstart": out["pred_xstart"]}


def ddim_reverse_sample(diffusion, model, x, t, clip_denoised=True, denoised_fn=None, model_kwargs=None, eta=0.0):
    """One step of the deterministic DDIM ODE backwards, x_t -> x_{t+1}: a dict of 'sample', 'pred_xstart'."""
    if eta != 0.0:
        raise ValueError(f"ddim_reverse_sample follows the deterministic ODE only: eta must be 0.0, got {eta}")
    out = p_mean_variance(diffusion, model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn, model_kwargs=model_kwargs)
    eps = predict_eps_from_xstart(diffusion, x, t, out["pred_xstart"])
    alpha_bar_next = diffusion.extract("alphas_cumprod_next", t, x.shape)
    mean_pred = out["pred_xstart"] * torch.sqrt(alpha_bar_next) + torch.sqrt(1 - alpha_bar_next) * eps
    return {"sample": mean_pred, "pred_xstart": out["pred_xstart"]}


def _loop_device(model, noise, device):
    """The device to sample on: given, else the initial noise's, else the model's parameters', else the CPU."""
    if device is not None:
        return torch.device(device)
    if noise is not None:
        return noise.device
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def _progressive(step, diffusion, model, shape, noise, device, progress, step_noises, generator, **step_kwargs):
    """Yield step's output dict at each t = T-1 .. 0, starting from `noise` (or a fresh draw)."""
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"shape must be a tuple or list such as (N, C, H, W), got {type(shape).__name__}")
    steps = diffusion.num_timesteps
    if step_noises is not None and tuple(step_noises.shape) != (steps, *shape):
        raise ValueError(f"step_noises must have shape {(steps, *shape)}, got {tuple(step_noises.shape)}")
    device = _loop_device(model, noise, device)
    img = noise if noise is not None else torch.randn(*shape, generator=generator, device=device)
    bar = Progress(steps, "sampling step", unit="step", enabled=progress)
    try:
        for k, i in enumerate(range(steps - 1, -1, -1)):
            t = torch.full((shape[0],), i, dtype=torch.int64, device=device)
            step_noise = step_noises[k] if step_noises is not None else None
            with torch.no_grad():
                out = step(diffusion, model, img, t, noise=step_noise, generator=generator, **step_kwargs)
            bar.update()
            yield out
            img = out["sample"]
    finally:
        bar.close()


def p_sample_loop_progressive(
    diffusion, model, shape, noise=None, clip_denoised=True, denoised_fn=None, model_kwargs=None, device=None,
    progress=False, step_noises=None, generator=None,
):
    """Yield p_sample's dict at every step from t = T-1 to 0.

    shape: (N, C, ...); noise: the initial x_T (drawn when None); step_noises: optional (T, N, C, ...)
    per-step noises in loop order (T-1 first); generator: draws otherwise; progress: a progress line on
    stderr (ddx.utils.progress.Progress).
    """
    yield from _progressive(
        p_sample, diffusion, model, shape, noise, device, progress, step_noises, generator,
        clip_denoised=clip_denoised, denoised_fn=denoised_fn, model_kwargs=model_kwargs,
    )


def p_sample_loop(
    diffusion, model, shape, noise=None, clip_denoised=True, denoised_fn=None, model_kwargs=None, device=None,
    progress=False, step_noises=None, generator=None,
):
    """Samples (shape) of the model by the whole ancestral chain; arguments as p_sample_loop_progressive."""
    final = None
    for final in p_sample_loop_progressive(
        diffusion, model, shape, noise, clip_denoised, denoised_fn, model_kwargs, device, progress, step_noises, generator
    ):
        pass
    return final["sample"]


def ddim_sample_loop_progressive(
    diffusion, model, shape, noise=None, clip_denoised=True, denoised_fn=None, model_kwargs=None, device=None,
    progress=False, eta=0.0, step_noises=None, generator=None,
):
    """Yield ddim_sample's dict at every step from t = T-1 to 0; arguments as p_sample_loop_progressive."""
    yield from _progressive(
        ddim_sample, diffusion, model, shape, noise, device, progress, step_noises, generator,
        clip_denoised=clip_denoised, denoised_fn=denoised_fn, model_kwargs=model_kwargs, eta=eta,
    )


def ddim_sample_loop(
    diffusion, model, shape, noise=None, clip_denoised=True, denoised_fn=None, model_kwargs=None, device=None,
    progress=False, eta=0.0, step_noises=None, generator=None,
):
    """Samples (shape) by DDIM over every step of this diffusion (respace it for fewer steps)."""
    final = None
    for final in ddim_sample_loop_progressive(
        diffusion, model, shape, noise, clip_denoised, denoised_fn, model_kwargs, device, progress, eta, step_noises, generator
    ):
        pass
    return final["sample"]
