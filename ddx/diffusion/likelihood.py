"""The full variational bound in bits/dim (calc_bpd_loop) and its prior term."""

import math

import torch

from ddx.diffusion._checks import check_input
from ddx.diffusion.losses import mean_flat, normal_kl, vb_terms_bpd
from ddx.diffusion.posterior import draw_noise, predict_eps_from_xstart, q_mean_variance, q_sample


def prior_bpd(diffusion, x_start):
    """KL(q(x_T | x_0) || N(0, I)) per sample in bits/dim, (N,): the bound's prior term (not trainable)."""
    check_input("x_start", x_start)
    t = torch.full((x_start.shape[0],), diffusion.num_timesteps - 1, dtype=torch.int64, device=x_start.device)
    qt_mean, _, qt_log_variance = q_mean_variance(diffusion, x_start, t)
    kl_prior = normal_kl(qt_mean, qt_log_variance, 0.0, 0.0)
    return mean_flat(kl_prior) / math.log(2.0)


def calc_bpd_loop(diffusion, model, x_start, clip_denoised=True, model_kwargs=None, noise=None, generator=None):
    """The whole variational bound of x_start (N, C, ...), one model call per timestep, t = T-1 down to 0.

    noise: optional (T, N, C, ...) q_sample noises in call order (T-1 first), to replay a recorded run;
    otherwise drawn per step (from `generator` if given). Returns a dict of 'total_bpd' (N,), 'prior_bpd'
    (N,), and per step, columns in call order (column 0 is t = T-1): 'vb', 'xstart_mse', 'mse' (N, T).
    """
    check_input("x_start", x_start)
    steps = diffusion.num_timesteps
    if noise is not None and tuple(noise.shape) != (steps, *x_start.shape):
        raise ValueError(f"noise must have shape {(steps, *x_start.shape)} (one draw per step), got {tuple(noise.shape)}")
    vb, xstart_mse, mse = [], [], []
    for k, t in enumerate(reversed(range(steps))):
        t_batch = torch.full((x_start.shape[0],), t, dtype=torch.int64, device=x_start.device)
        step_noise = noise[k] if noise is not None else draw_noise(x_start, generator)
        x_t = q_sample(diffusion, x_start, t_batch, noise=step_noise)
        with torch.no_grad():
            out = vb_terms_bpd(diffusion, model, x_start, x_t, t_batch, clip_denoised=clip_denoised, model_kwargs=model_kwargs)
        vb.append(out["output"])
        xstart_mse.append(mean_flat((out["pred_xstart"] - x_start) ** 2))
        eps = predict_eps_from_xstart(diffusion, x_t, t_batch, out["pred_xstart"])
        mse.append(mean_flat((eps - step_noise) ** 2))
    vb, xstart_mse, mse = (torch.stack(terms, dim=1) for terms in (vb, xstart_mse, mse))
    prior = prior_bpd(diffusion, x_start)
    return {"total_bpd": vb.sum(dim=1) + prior, "prior_bpd": prior, "vb": vb, "xstart_mse": xstart_mse, "mse": mse}
