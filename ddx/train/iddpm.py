"""The Improved DDPM trainer (train_util.TrainLoop of openai/improved-diffusion) on ddx.train's loop.

One step: zero the gradients; for each microbatch draw timesteps from the schedule sampler, compute
``training_losses`` with the sampler's importance weights, update a loss-aware sampler (synchronised
over ranks), backpropagate; then anneal the learning rate, take the AdamW step and update every EMA.
The model runs under autocast (bf16, or fp16 with a GradScaler) while the diffusion arithmetic stays
in float32, as the official fp16 UNet returns float32 outputs.

Deviations from the official loop, on purpose:
- Each microbatch's mean loss is weighted by its share of the batch, so the accumulated gradient is the
  full batch's (the official sums the microbatch means: k microbatches give k times the gradient, which
  AdamW nearly ignores except through its eps).
- The q_sample noise is drawn once for the whole batch and sliced per microbatch, so the gradient does
  not depend on the microbatch size.
- fp16 (``execution.precision``, ddx.execution.Precision) is torch.autocast with a GradScaler (initial
  scale 2**20 and doubling every 1 / fp16_scale_growth steps, as the official lg_loss_scale schedule),
  not a cast model with master weights. A step whose gradients overflow is skipped with its EMA update,
  as the official does.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ddx.checkpoints.iddpm_official import (
    export_official,
    load_official_state_dict,
    official_siblings,
    parse_model_step,
)
from ddx.checkpoints.io import load_checkpoint
from ddx.diffusion import LossAwareSampler, ScheduleSamplerName, create_named_schedule_sampler
from ddx.execution import ExecutionOptions, Precision
from ddx.ops import set_fused
from ddx.profiling import nvtx_range
from ddx.train.distributed import DistContext, wrap_ddp
from ddx.train.ema import EMA, EMAStart
from ddx.train.execution_support import trainer_execution
from ddx.train.iddpm_logging import QuartileLossLog
from ddx.train.iddpm_weights import ema_key
from ddx.train.loop import Trainer
from ddx.utils.checks import parse_enum

INITIAL_LOG_LOSS_SCALE = 20.0  # train_util.py: lg_loss_scale starts at 20


@dataclasses.dataclass(frozen=True)
class IddpmTrainConfig:
    """The optimisation flags of image_train.py (``batch_size`` per rank, as the official).

    microbatch: -1 (or the batch size) for none. ema_rates: one EMA per rate, each starting from the
    initial weights. lr_anneal_steps: 0 for a constant learning rate, else linear decay to 0 at that step.
    Mixed precision is the trainer's ``execution.precision`` (ddx.execution.ExecutionOptions), not a field here.
    """

    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_anneal_steps: int = 0
    batch_size: int = 1
    microbatch: int = -1
    ema_rates: tuple[float, ...] = (0.9999,)
    schedule_sampler: ScheduleSamplerName = ScheduleSamplerName.UNIFORM
    fp16_scale_growth: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "schedule_sampler",
                           parse_enum(ScheduleSamplerName, self.schedule_sampler, "schedule_sampler"))
        object.__setattr__(self, "ema_rates", tuple(float(r) for r in self.ema_rates))
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("lr_anneal_steps", "batch_size", "microbatch"):
            value = getattr(self, name)
            low = {"lr_anneal_steps": 0, "batch_size": 1, "microbatch": -1}[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (name == "microbatch" and value == 0):
                rule = "-1 (none) or a positive int" if name == "microbatch" else f"an int >= {low}"
                raise ValueError(f"{name} must be {rule}, got {value!r}")
        if not self.ema_rates or any(not 0.0 <= r < 1.0 for r in self.ema_rates):
            raise ValueError(f"ema_rates must be one or more numbers in [0, 1), got {self.ema_rates}")
        if len(set(self.ema_rates)) != len(self.ema_rates):
            raise ValueError(f"ema_rates must be distinct, got {self.ema_rates}")
        if not 0 < self.fp16_scale_growth <= 1:
            raise ValueError(f"fp16_scale_growth must be in (0, 1], got {self.fp16_scale_growth!r}")

    @property
    def micro_size(self) -> int:
        return self.batch_size if self.microbatch < 0 else min(self.microbatch, self.batch_size)


class AutocastModel(nn.Module):
    """Runs ``model`` under autocast and returns float32, so the diffusion math stays in float32."""

    def __init__(self, model: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.model, self.device_type, self.dtype = model, device_type, dtype

    def forward(self, x, timesteps, **kwargs):
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.model(x, timesteps, **kwargs)
        return out.float()


def _loss_keys(diffusion) -> tuple[str, ...]:
    """The terms training_losses returns for this diffusion, in a fixed order."""
    if diffusion.loss_type.is_vb:
        return ("loss",)
    return ("loss", "mse", "vb") if diffusion.model_var_type.is_learned else ("loss", "mse")


def _grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class IddpmTrainer(Trainer):
    """Trains an IDDPM UNet (``model(x, t, **cond)``) with a (spaced) GaussianDiffusion.

    Args:
        model: the UNet, already on ``ctx.device`` (it is wrapped in DDP here when there are ranks).
        diffusion: a GaussianDiffusion / SpacedDiffusion (``training_losses``, ``num_timesteps``).
        config: IddpmTrainConfig.
        ctx: rank, world size and device.
        class_cond: feed the batch's labels as ``y``.
        export_dir: where to write official-layout files at each save (None: no export).
        execution: the model and diffusion run fused or eager by ``execution.fused`` (ddx.ops.set_fused), the
            model under autocast in ``execution.precision`` (fp16 with a GradScaler); contiguous, not compiled
            (other options are refused). None: the defaults (fp32), with the routing left as the caller set it.

    Batches are ``(x (B, C, H, W) in [-1, 1], labels (B,))`` as ddx datasets collate.
    """

    def __init__(self, model: nn.Module, diffusion, config: IddpmTrainConfig, ctx: DistContext | None = None,
                 class_cond: bool = False, export_dir: str | Path | None = None,
                 execution: ExecutionOptions | None = None):
        if not isinstance(config, IddpmTrainConfig):
            raise TypeError(f"config must be an IddpmTrainConfig, got {type(config).__name__}")
        self.ctx = ctx if ctx is not None else DistContext()
        routed = execution is not None
        self.execution = trainer_execution(execution, "IDDPM", tuple(Precision))
        if routed:
            set_fused(model, self.execution.fused)
            set_fused(diffusion, self.execution.fused)
        self.config = config
        self.diffusion = diffusion
        self.class_cond = class_cond
        self.export_dir = None if export_dir is None else Path(export_dir)
        self.module = model
        self.model = wrap_ddp(model, self.ctx)
        dtype = self.execution.precision.autocast_dtype
        self.forward_model = self.model if dtype is None else AutocastModel(self.model, self.ctx.device.type, dtype)
        self.params = list(model.parameters())
        self.schedule_sampler = create_named_schedule_sampler(config.schedule_sampler, diffusion)
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.emas = {rate: EMA(model, rate, EMAStart.INITIAL) for rate in config.ema_rates}
        self.scaler = torch.amp.GradScaler(
            self.ctx.device.type, enabled=self.execution.precision is Precision.FP16, init_scale=2.0 ** INITIAL_LOG_LOSS_SCALE,
            growth_interval=max(1, round(1.0 / config.fp16_scale_growth)))
        self.loss_log = QuartileLossLog(diffusion.num_timesteps, _loss_keys(diffusion))
        self.step_offset = 0
        self.last_step = 0

    def _batch(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        x = x.to(self.ctx.device, non_blocking=True)
        cond = {}
        if self.class_cond:
            if labels is None:
                raise ValueError("class_cond training needs batches of (images, labels)")
            cond["y"] = torch.as_tensor(labels).to(self.ctx.device, non_blocking=True)
        return x, cond

    def forward_backward(self, x: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Accumulate the batch's gradient microbatch by microbatch; returns the weighted batch means."""
        n, m = x.shape[0], self.config.micro_size
        noise = torch.randn_like(x)
        totals: dict[str, torch.Tensor] = {}
        for start in range(0, n, m):
            stop = min(start + m, n)
            micro, micro_cond = x[start:stop], {k: v[start:stop] for k, v in cond.items()}
            t, weights = self.schedule_sampler.sample(stop - start, x.device)
            last = stop >= n
            sync = (contextlib.nullcontext() if last or not isinstance(self.model, DistributedDataParallel)
                    else self.model.no_sync())
            with sync:
                losses = self.diffusion.training_losses(self.forward_model, micro, t, model_kwargs=micro_cond,
                                                        noise=noise[start:stop])
                if isinstance(self.schedule_sampler, LossAwareSampler):
                    self.schedule_sampler.update_with_local_losses(t, losses["loss"].detach())
                weighted = {key: value * weights for key, value in losses.items()}
                loss = weighted["loss"].mean() * ((stop - start) / n)
                self.scaler.scale(loss).backward()
            self.loss_log.add(t, weighted)
            for key, value in weighted.items():
                totals[key] = totals.get(key, 0.0) + value.detach().sum()
        return {key: value / n for key, value in totals.items()}

    def _anneal_lr(self, step: int) -> None:
        if not self.config.lr_anneal_steps:
            return
        frac_done = (step + self.step_offset) / self.config.lr_anneal_steps
        for group in self.opt.param_groups:
            group["lr"] = self.config.lr * (1 - frac_done)

    def _optimize(self) -> bool:
        """Unscale, step, log the gradient norm; False when fp16 overflow made the scaler skip the step
        (then, as the official, no gradient norm is logged)."""
        fp16 = self.scaler.is_enabled()
        if fp16:
            self.scaler.unscale_(self.opt)
            scale_before = self.scaler.get_scale()
        grad_norm = _grad_norm(self.params)
        self.scaler.step(self.opt)
        self.scaler.update()
        stepped = not fp16 or self.scaler.get_scale() >= scale_before
        if stepped:
            self.loss_log.add_grad_norm(grad_norm)
        return stepped

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        self.last_step = step
        with nvtx_range("train/data"):
            x, cond = self._batch(batch)
        with nvtx_range("train/step"):
            self.opt.zero_grad(set_to_none=True)
            means = self.forward_backward(x, cond)
            self._anneal_lr(step)
            stepped = self._optimize()
        if stepped:
            with nvtx_range("train/ema"):
                for ema in self.emas.values():
                    ema.update()
        return means

    def extra_metrics(self) -> dict[str, float]:
        """Collective (the loop calls it on every rank when it logs): interval means per quartile, lr, samples."""
        metrics = self.loss_log.reduce(self.ctx)
        metrics["lr"] = self.opt.param_groups[0]["lr"]
        metrics["samples"] = (self.last_step + self.step_offset + 1) * self.config.batch_size * self.ctx.world_size
        if self.scaler.is_enabled():
            metrics["lg_loss_scale"] = float(np.log2(self.scaler.get_scale()))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.module.state_dict(),
            "ema": {ema_key(rate): ema.state_dict() for rate, ema in self.emas.items()},
            "opt": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "schedule_sampler": self.schedule_sampler.state_dict(),
            "loss_log": self.loss_log.state_dict(),
            "step_offset": self.step_offset,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        saved_rates = set(state["ema"])
        wanted = {ema_key(rate) for rate in self.emas}
        if saved_rates != wanted:
            raise ValueError(f"checkpoint holds EMA rates {sorted(saved_rates)} but this run has {sorted(wanted)}")
        for rate, ema in self.emas.items():
            ema.load_state_dict(state["ema"][ema_key(rate)])
        self.opt.load_state_dict(state["opt"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if state["schedule_sampler"]:  # empty from a uniform run: a loss-aware sampler starts afresh, as before
            self.schedule_sampler.load_state_dict(state["schedule_sampler"])
        self.loss_log.load_state_dict(state["loss_log"], self.ctx.device)
        self.step_offset = int(state["step_offset"])

    def load_official(self, model_path: str | Path) -> int:
        """Start from an official ``model{N}.pt`` with its ``ema_<rate>_{N}.pt`` and ``opt{N}.pt`` siblings.

        As the official resume: an EMA file that is missing starts that EMA from the model's weights;
        a missing optimizer file starts AdamW afresh. Sets and returns the step offset N.
        """
        siblings = official_siblings(model_path, tuple(self.emas))
        step = parse_model_step(model_path)
        state = load_official_state_dict(model_path)
        self.module.load_state_dict(state)
        for rate, ema in self.emas.items():
            ema_path = siblings[f"ema_{rate}"]
            ema_state = load_official_state_dict(ema_path) if ema_path is not None else state
            ema.load_state_dict(EMA.state_from_shadow({name: ema_state[name] for name in ema.shadow}, rate))
        if siblings["opt"] is not None:
            self.opt.load_state_dict(load_checkpoint(siblings["opt"]))
        self.step_offset = step
        return step

    def on_save(self, step: int) -> None:
        if self.export_dir is None or not self.ctx.is_main:
            return
        with nvtx_range("train/checkpoint"):
            export_official(self.export_dir, step + self.step_offset, self.module.state_dict(),
                            {rate: ema.averaged_state_dict() for rate, ema in self.emas.items()},
                            self.opt.state_dict())
