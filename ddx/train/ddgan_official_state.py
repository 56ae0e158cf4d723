"""DDGANTrainer state <-> the official content.pth (NVlabs/denoising-diffusion-gan's resume file).

The content.pth layout belongs to ddx.checkpoints.ddgan_official and the trainer's state to
ddx.train.ddgan / ddx.train.ema; this module maps one onto the other, so neither reads the other's keys.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ddx.checkpoints.ddgan_official import official_content, split_optimizer_ema
from ddx.checkpoints.io import CheckpointError, atomic_save
from ddx.checkpoints.state_dict import strip_module_prefix
from ddx.train.ema import EMA, EMAStart


def _parameter_names(generator: nn.Module) -> list[str]:
    return [name for name, _ in generator.named_parameters()]


def content_from_trainer_state(trainer_state: Mapping[str, Any], generator: nn.Module, epoch: int,
                               args: argparse.Namespace) -> dict[str, Any]:
    """The official content.pth dict from a DDGANTrainer.state_dict().

    generator: the (unwrapped) G, for its parameter order; epoch: the next epoch to run (the official
    loop saves epoch + 1 after finishing `epoch`); args: the run's flags.
    """
    shadow = EMA.shadow_of(trainer_state["ema"])
    return official_content(
        net_g=trainer_state["netG"], net_d=trainer_state["netD"], optimizer_g=trainer_state["optimizerG"],
        optimizer_d=trainer_state["optimizerD"], scheduler_g=trainer_state["schedulerG"],
        scheduler_d=trainer_state["schedulerD"], epoch=epoch, global_step=trainer_state["global_step"], args=args,
        ema_shadow=None if shadow is None else [shadow[name] for name in _parameter_names(generator)])


def save_official_content(path: str | os.PathLike, trainer_state: Mapping[str, Any], generator: nn.Module,
                          epoch: int, args: argparse.Namespace) -> Path:
    """Write content.pth (atomically) in the official layout; see content_from_trainer_state."""
    return atomic_save(content_from_trainer_state(trainer_state, generator, epoch, args), path)


def trainer_state_from_content(content: Mapping[str, Any], generator: nn.Module, use_ema: bool,
                               ema_decay: float) -> dict[str, Any]:
    """A DDGANTrainer.load_state_dict() input from an official content.pth dict.

    The EMA shadow comes from optimizerG's 'ema' entries; where there are none (no G step yet, or a run
    without --use_ema resumed with it), the average starts again from the next step.
    """
    optimizer_g, emas = split_optimizer_ema(content["optimizerG"])
    net_g = strip_module_prefix(dict(content["netG_dict"]))
    ema = None
    if use_ema:
        names = _parameter_names(generator)
        complete = len(emas) == len(names)
        if emas and not complete:
            raise CheckpointError(f"optimizerG holds 'ema' for {len(emas)} of G's {len(names)} parameters")
        shadow = {name: (emas[i] if complete else net_g[name]).clone() for i, name in enumerate(names)}
        ema = EMA.state_from_shadow(shadow, ema_decay, EMAStart.FIRST_STEP, initialized=complete,
                                    num_updates=int(content["global_step"]) if complete else 0)
    return {
        "netG": net_g, "netD": strip_module_prefix(dict(content["netD_dict"])),
        "optimizerG": optimizer_g, "optimizerD": content["optimizerD"],
        "schedulerG": content["schedulerG"], "schedulerD": content["schedulerD"],
        "ema": ema, "global_step": int(content["global_step"]),
    }
