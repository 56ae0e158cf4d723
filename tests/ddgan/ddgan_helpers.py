"""Tiny DDGAN set-ups for the tests, and the official code's EMA optimizer wrapper and training step
re-implemented from train_ddgan.py / EMA.py (to check ddx against them, and to write official files)."""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ddx.diffusion.ddgan import DDGANDiffusionConfig, DiffusionCoefficients, PosteriorCoefficients
from ddx.models.toy import ToyConfig, ToyDiscriminator, ToyGenerator
from kernels import reference

DIFFUSION = DDGANDiffusionConfig(num_timesteps=4)
TOY = ToyConfig(nz=2, hidden=16, num_layers=2, t_emb_dim=8, num_timesteps=4)


def toy_models(seed=0):
    torch.manual_seed(seed)
    return ToyGenerator(TOY), ToyDiscriminator(TOY)


class DDPLike(nn.Module):
    """Holds a module as `.module`, so state_dict keys carry 'module.' as under DistributedDataParallel."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        return self.module(*args)


class OfficialEMA(torch.optim.Optimizer):
    """EMA.py's wrapper: Adam's state holds each parameter's average under 'ema', created after its first step."""

    def __init__(self, opt, ema_decay):
        self.ema_decay = ema_decay
        self.optimizer = opt
        self.state = opt.state
        self.param_groups = opt.param_groups
        self.defaults = opt.defaults
        # What Optimizer.__init__ would set; EMA.py skips it (older torch did not need these).
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                     "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            setattr(self, name, getattr(opt, name))

    def step(self):
        self.optimizer.step()
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.optimizer.state[p]
                if "ema" not in state:
                    state["ema"] = p.data.clone()
                state["ema"].mul_(self.ema_decay).add_(p.data, alpha=1.0 - self.ema_decay)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.optimizer.state = self.state
        self.optimizer.param_groups = self.param_groups

    def swap_parameters_with_ema(self):
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                ema = self.optimizer.state[p]["ema"]
                tmp = p.data.detach()
                p.data = ema.detach()
                self.optimizer.state[p]["ema"] = tmp


def official_step(netG, netD, optG, optD, real, global_step, nz, r1_gamma, lazy_reg, diffusion=DIFFUSION):
    """One iteration of train_ddgan.py's loop body (eager arithmetic), same random draws in the same order."""
    coeff, pos = DiffusionCoefficients(diffusion), PosteriorCoefficients(diffusion)
    T = diffusion.num_timesteps

    def pairs(x0, t):
        noise_next, noise = torch.randn_like(x0), torch.randn_like(x0)
        return reference.q_sample_pairs(x0, t, noise, noise_next, coeff.a_s_cum, coeff.sigmas_cum, coeff.a_s, coeff.sigmas)

    def posterior(x0, xt, t):
        return reference.sample_posterior(x0, xt, t, torch.randn_like(xt), pos.posterior_mean_coef1,
                                          pos.posterior_mean_coef2, pos.posterior_log_variance_clipped)

    for p in netD.parameters():
        p.requires_grad = True
    netD.zero_grad()
    t = torch.randint(0, T, (real.size(0),))
    x_t, x_tp1 = pairs(real, t)
    x_t.requires_grad = True
    d_real = netD(x_t, t, x_tp1.detach()).view(-1)
    err_real = F.softplus(-d_real).mean()
    err_real.backward(retain_graph=True)
    if lazy_reg is None or global_step % lazy_reg == 0:
        grad = torch.autograd.grad(outputs=d_real.sum(), inputs=x_t, create_graph=True)[0]
        (r1_gamma / 2 * (grad.view(grad.size(0), -1).norm(2, dim=1) ** 2).mean()).backward()
    z = torch.randn(real.size(0), nz)
    x_pos = posterior(netG(x_tp1.detach(), t, z), x_tp1, t)
    F.softplus(netD(x_pos, t, x_tp1.detach()).view(-1)).mean().backward()
    optD.step()
    for p in netD.parameters():
        p.requires_grad = False
    netG.zero_grad()
    t = torch.randint(0, T, (real.size(0),))
    x_t, x_tp1 = pairs(real, t)
    z = torch.randn(real.size(0), nz)
    x_pos = posterior(netG(x_tp1.detach(), t, z), x_tp1, t)
    F.softplus(-netD(x_pos, t, x_tp1.detach()).view(-1)).mean().backward()
    optG.step()


def clone_models(G, D):
    return copy.deepcopy(G), copy.deepcopy(D)
