"""The DDGAN trainer: one step of train_ddgan.py (D step with R1, then G step), driven by ddx.train.run.

Per step, in the official order of random draws (so a run is reproducible against the official loop):
    D step: t ~ U{0..T-1}; (x_t, x_{t+1}) = q_sample_pairs(x_0, t); errD_real = softplus(-D(x_t, t, x_{t+1}));
            R1 = r1_gamma / 2 * mean ||d D / d x_t||^2 on steps where step % lazy_reg == 0 (every step when
            lazy_reg is None), differentiated twice (through the fused ops); z ~ N(0, I);
            x_pos = sample_posterior(G(x_{t+1}, t, z), x_{t+1}, t); errD_fake = softplus(D(x_pos, t, x_{t+1}));
            Adam step of D.
    G step: D frozen (requires_grad False); fresh t, pairs and z; errG = softplus(-D(x_pos, t, x_{t+1}));
            Adam step of G; EMA of G when use_ema (from the weights after G's first step, as EMA.py).
Per epoch (on_epoch_end): CosineAnnealingLR(T_max=num_epoch, eta_min=1e-5) steps unless no_lr_decay, then
the epoch's outputs (sample grid, official files) through an optional callback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddx.diffusion.ddgan import (
    DDGANDiffusionConfig,
    DiffusionCoefficients,
    PosteriorCoefficients,
    q_sample_pairs,
    sample_from_model,
    sample_posterior,
)
from ddx.execution import ExecutionOptions
from ddx.ops import set_fused
from ddx.profiling import nvtx_range
from ddx.train.distributed import DistContext, unwrap
from ddx.train.ema import EMA, EMAStart
from ddx.train.execution_support import trainer_execution
from ddx.train.loop import Trainer
from ddx.utils.checks import check_positive_int

ETA_MIN = 1e-5


@dataclasses.dataclass(frozen=True)
class DDGANTrainConfig:
    """Optimisation flags of train_ddgan.py (same names and defaults): hyperparameters only.

    The latent size nz is the generator's (its config.nz): one fact, read from one place. How the step
    runs (fused kernels or eager) is the trainer's ``execution`` (ddx.execution.ExecutionOptions)."""

    lr_g: float = 1.5e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    no_lr_decay: bool = False
    use_ema: bool = False
    ema_decay: float = 0.9999
    r1_gamma: float = 0.05
    lazy_reg: int | None = None
    num_epoch: int = 1200

    def __post_init__(self):
        if isinstance(self.num_epoch, bool) or not isinstance(self.num_epoch, int) or self.num_epoch < 0:
            raise ValueError(f"num_epoch must be an int >= 0, got {self.num_epoch!r}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not self.r1_gamma >= 0.0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma!r}")
        check_positive_int(self.lazy_reg, "lazy_reg", optional=True)

    def r1_at(self, step: int) -> bool:
        """Whether the R1 penalty is applied at `step` (steps done before this one, as official global_step)."""
        return self.lazy_reg is None or step % self.lazy_reg == 0


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad = flag


def r1_penalty(d_real: torch.Tensor, x_t: torch.Tensor, r1_gamma: float) -> torch.Tensor:
    """r1_gamma / 2 * mean over samples of ||d sum(D) / d x_t||^2, with a graph for the second backward."""
    (grad_real,) = torch.autograd.grad(outputs=d_real.sum(), inputs=x_t, create_graph=True)
    return r1_gamma / 2 * (grad_real.view(grad_real.size(0), -1).norm(2, dim=1) ** 2).mean()


def latent_size(generator: nn.Module) -> int:
    """The generator's latent size (config.nz of NCSNpp and ToyGenerator)."""
    nz = getattr(getattr(generator, "config", None), "nz", None)
    if isinstance(nz, bool) or not isinstance(nz, int) or nz < 1:
        raise TypeError(f"the generator must carry config.nz (a positive int), as NCSNpp and ToyGenerator do; "
                        f"{type(generator).__name__} has {nz!r}")
    return nz


EpochCallback = Callable[["DDGANTrainer", int], None]


class DDGANTrainer(Trainer):
    """DDGAN on (N, ...) data; `netG` / `netD` may be DDP-wrapped (ddx.train.wrap_ddp).

    netG(x_tp1, t, z) -> x_0 prediction, netD(x_t, t, x_tp1) -> logits (N, 1).
    `on_epoch` is called after the LR schedulers' step at the end of every epoch (sample grids, files).
    `execution`: G, D and the coefficient tables run fused or eager by ``execution.fused`` (ddx.ops.set_fused);
    fp32, contiguous, not compiled (other options are refused). None: the defaults, with G's and D's
    routing left as the caller set it.
    """

    def __init__(self, netG: nn.Module, netD: nn.Module, diffusion: DDGANDiffusionConfig, config: DDGANTrainConfig,
                 ctx: DistContext | None = None, on_epoch: EpochCallback | None = None,
                 execution: ExecutionOptions | None = None):
        if not isinstance(diffusion, DDGANDiffusionConfig):
            raise TypeError(f"diffusion must be a DDGANDiffusionConfig, got {type(diffusion).__name__}")
        if not isinstance(config, DDGANTrainConfig):
            raise TypeError(f"config must be a DDGANTrainConfig, got {type(config).__name__}")
        self.ctx = ctx if ctx is not None else DistContext()
        self.device = self.ctx.device
        self.netG, self.netD = netG, netD
        self.G, self.D = unwrap(netG), unwrap(netD)
        self.nz = latent_size(self.G)
        self.execution = trainer_execution(execution, "DDGAN")
        self.diffusion, self.config = diffusion, config
        self.coeff = DiffusionCoefficients(diffusion, self.device)
        self.pos_coeff = PosteriorCoefficients(diffusion, self.device)
        routed = (self.coeff, self.pos_coeff) if execution is None else (self.G, self.D, self.coeff, self.pos_coeff)
        for target in routed:
            set_fused(target, self.execution.fused)
        betas = (config.beta1, config.beta2)
        self.optimizerD = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas)
        self.optimizerG = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas)
        self.ema = EMA(self.G, config.ema_decay, EMAStart.FIRST_STEP) if config.use_ema else None
        # num_epoch 0 (epoch 0 only): the official T_max of 0 divides by zero at the end of the epoch; a T_max of 1
        # gives the same learning rate through the epoch, the only one there is.
        t_max = max(1, config.num_epoch)
        self.schedulerG = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizerG, t_max, eta_min=ETA_MIN)
        self.schedulerD = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizerD, t_max, eta_min=ETA_MIN)
        self.on_epoch = on_epoch
        self.global_step = 0
        self.last_real: torch.Tensor | None = None
        self.last_x_pos: torch.Tensor | None = None

    def _pairs(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = torch.randint(0, self.diffusion.num_timesteps, (real.size(0),), device=real.device)
        x_t, x_tp1 = q_sample_pairs(self.coeff, real, t)
        return t, x_t, x_tp1

    def _fake(self, x_tp1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        latent_z = torch.randn(x_tp1.size(0), self.nz, device=x_tp1.device)
        x_0_predict = self.netG(x_tp1.detach(), t, latent_z)
        return sample_posterior(self.pos_coeff, x_0_predict, x_tp1, t)

    def d_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Accumulate D's gradients (real, R1 where due, fake) and step its optimizer."""
        set_requires_grad(self.netD, True)
        self.netD.zero_grad()
        t, x_t, x_tp1 = self._pairs(real)
        x_t.requires_grad = True
        d_real = self.netD(x_t, t, x_tp1.detach()).view(-1)
        err_real = F.softplus(-d_real).mean()
        err_real.backward(retain_graph=True)
        r1 = torch.zeros((), device=real.device)
        if self.config.r1_at(step):
            with nvtx_range("train/r1"):
                r1 = r1_penalty(d_real, x_t, self.config.r1_gamma)
                r1.backward()
        x_pos = self._fake(x_tp1, t)
        err_fake = F.softplus(self.netD(x_pos, t, x_tp1.detach()).view(-1)).mean()
        err_fake.backward()
        self.optimizerD.step()
        return {"errD": (err_real + err_fake).detach(), "errD_real": err_real.detach(),
                "errD_fake": err_fake.detach(), "r1": r1.detach()}

    def g_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """G's update against the frozen D, on fresh timesteps, pairs and latents."""
        set_requires_grad(self.netD, False)
        self.netG.zero_grad()
        t, _, x_tp1 = self._pairs(real)
        x_pos = self._fake(x_tp1, t)
        err_g = F.softplus(-self.netD(x_pos, t, x_tp1.detach()).view(-1)).mean()
        err_g.backward()
        self.optimizerG.step()
        self.last_x_pos = x_pos.detach()
        return {"errG": err_g.detach()}

    def train_step(self, batch: Any, step: int) -> Mapping[str, torch.Tensor]:
        with nvtx_range("train/data"):
            real = batch[0] if isinstance(batch, (list, tuple)) else batch
            real = real.to(self.device, non_blocking=True)
        with nvtx_range("train/d_step"):
            losses = self.d_step(real, step)
        with nvtx_range("train/g_step"):
            losses.update(self.g_step(real))
        if self.ema is not None:
            with nvtx_range("train/ema"):
                self.ema.update()
        self.last_real = real
        self.global_step = step + 1
        return losses

    def on_epoch_end(self, epoch: int) -> None:
        if not self.config.no_lr_decay:
            self.schedulerG.step()
            self.schedulerD.step()
        if self.on_epoch is not None:
            with nvtx_range("train/checkpoint"):
                self.on_epoch(self, epoch)

    def extra_metrics(self) -> Mapping[str, float]:
        return {"lr_g": self.optimizerG.param_groups[0]["lr"], "lr_d": self.optimizerD.param_groups[0]["lr"]}

    @torch.no_grad()
    def sample(self, x_init: torch.Tensor, use_ema: bool = False) -> torch.Tensor:
        """The T-step reverse chain from x_init (N, ...) with the raw G (as the official epoch grid) or the EMA."""
        if use_ema and self.ema is not None and self.ema.initialized:
            with self.ema.averaged():
                return sample_from_model(self.pos_coeff, self.G, self.diffusion.num_timesteps, x_init, self.nz)
        return sample_from_model(self.pos_coeff, self.G, self.diffusion.num_timesteps, x_init, self.nz)

    def generator_state_dict(self) -> dict[str, torch.Tensor]:
        """G's weights to export: the EMA average when use_ema (and updated at least once), else the raw ones."""
        if self.ema is not None and self.ema.initialized:
            return self.ema.averaged_state_dict()
        return {k: v.detach().clone() for k, v in self.G.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "netG": self.G.state_dict(), "netD": self.D.state_dict(),
            "optimizerG": self.optimizerG.state_dict(), "optimizerD": self.optimizerD.state_dict(),
            "schedulerG": self.schedulerG.state_dict(), "schedulerD": self.schedulerD.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(), "global_step": self.global_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["netG"])
        self.D.load_state_dict(state["netD"])
        self.optimizerG.load_state_dict(state["optimizerG"])
        self.optimizerD.load_state_dict(state["optimizerD"])
        self.schedulerG.load_state_dict(state["schedulerG"])
        self.schedulerD.load_state_dict(state["schedulerD"])
        if (state["ema"] is None) != (self.ema is None):
            have = "has" if state["ema"] is not None else "has no"
            raise ValueError(f"the checkpoint {have} an EMA of G but this run has use_ema={self.config.use_ema}")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.global_step = int(state["global_step"])
