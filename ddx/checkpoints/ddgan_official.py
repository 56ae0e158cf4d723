"""DDGAN checkpoints in the official layout (NVlabs/denoising-diffusion-gan), both ways.

Files of the official train_ddgan.py:
- ``content.pth``: {'epoch' (the next epoch to run), 'global_step', 'args' (an argparse.Namespace),
  'netG_dict', 'optimizerG', 'schedulerG', 'netD_dict', 'optimizerD', 'schedulerD'}. The networks are
  DistributedDataParallel modules, so their keys carry the 'module.' prefix. With --use_ema, optimizerG is
  EMA.py's wrapper: its state_dict is Adam's, with each parameter's moving average under 'ema' in that
  parameter's state (present once the parameter has been stepped).
- ``netG_<epoch>.pth``: the DDP generator's state_dict ('module.' keys), holding the EMA weights when use_ema.

Reading uses ``torch.load(weights_only=True)`` with exactly one extra allowed class, argparse.Namespace
(the type of content['args']).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ddx.checkpoints.io import CheckpointError, atomic_save, load_checkpoint
from ddx.checkpoints.state_dict import add_module_prefix, strip_module_prefix

CONTENT_KEYS = ("epoch", "global_step", "args", "netG_dict", "optimizerG", "schedulerG", "netD_dict",
                "optimizerD", "schedulerD")
CONTENT_FILE = "content.pth"


def generator_file(epoch: int) -> str:
    """The official name of the generator file of an epoch: netG_<epoch>.pth."""
    return f"netG_{epoch}.pth"


def load_official(path: str | os.PathLike) -> Any:
    """torch.load(path, weights_only=True) allowing argparse.Namespace and nothing else beyond the defaults."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return load_checkpoint(path)


def load_official_generator(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A netG_<epoch>.pth file (or a ddx export of one) as a plain state_dict, 'module.' prefix removed."""
    state = load_official(path)
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a generator state_dict (netG_<epoch>.pth): expected a mapping "
                              f"of parameter names to tensors")
    return strip_module_prefix(dict(state))


def load_official_content(path: str | os.PathLike) -> dict[str, Any]:
    """An official content.pth, checked for every key the official code writes."""
    content = load_official(path)
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{path} is not an official content.pth (not a dict)")
    missing = [k for k in CONTENT_KEYS if k not in content]
    if missing:
        raise CheckpointError(f"{path} is not an official content.pth: missing {', '.join(missing)}")
    return dict(content)


def _split_ema(optimizer_state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[int, torch.Tensor]]:
    """Adam's state_dict without the 'ema' entries, and those entries by parameter index."""
    states, emas = {}, {}
    for index, param_state in optimizer_state["state"].items():
        param_state = dict(param_state)
        if "ema" in param_state:
            emas[int(index)] = param_state.pop("ema")
        states[index] = param_state
    return {"state": states, "param_groups": optimizer_state["param_groups"]}, emas


def _with_ema(optimizer_state: Mapping[str, Any], shadow: list[torch.Tensor]) -> dict[str, Any]:
    states = {}
    for index, param_state in optimizer_state["state"].items():
        states[index] = {**param_state, "ema": shadow[int(index)].detach().clone()}
    return {"state": states, "param_groups": optimizer_state["param_groups"]}


def official_content(trainer_state: Mapping[str, Any], generator: nn.Module, epoch: int,
                     args: argparse.Namespace) -> dict[str, Any]:
    """The official content.pth dict from a DDGANTrainer.state_dict().

    generator: the (unwrapped) G, for its parameter order; epoch: the next epoch to run (the official
    loop saves epoch + 1 after finishing `epoch`); args: the run's flags.
    """
    optimizer_g = trainer_state["optimizerG"]
    ema = trainer_state["ema"]
    if ema is not None and ema["initialized"]:
        names = [name for name, _ in generator.named_parameters()]
        optimizer_g = _with_ema(optimizer_g, [ema["shadow"][name] for name in names])
    return {
        "epoch": int(epoch), "global_step": int(trainer_state["global_step"]), "args": args,
        "netG_dict": add_module_prefix(trainer_state["netG"]), "optimizerG": optimizer_g,
        "schedulerG": trainer_state["schedulerG"], "netD_dict": add_module_prefix(trainer_state["netD"]),
        "optimizerD": trainer_state["optimizerD"], "schedulerD": trainer_state["schedulerD"],
    }


def trainer_state_from_content(content: Mapping[str, Any], generator: nn.Module, use_ema: bool,
                               ema_decay: float) -> dict[str, Any]:
    """A DDGANTrainer.load_state_dict() input from an official content.pth dict.

    The EMA shadow comes from optimizerG's 'ema' entries; where there are none (no G step yet, or a run
    without --use_ema resumed with it), the average starts again from the next step.
    """
    optimizer_g, emas = _split_ema(content["optimizerG"])
    net_g = strip_module_prefix(dict(content["netG_dict"]))
    ema = None
    if use_ema:
        names = [name for name, _ in generator.named_parameters()]
        complete = len(emas) == len(names)
        if emas and not complete:
            raise CheckpointError(f"optimizerG holds 'ema' for {len(emas)} of G's {len(names)} parameters")
        shadow = {name: (emas[i] if complete else net_g[name]).clone() for i, name in enumerate(names)}
        ema = {"decay": float(ema_decay), "start": "first_step", "initialized": complete,
               "num_updates": int(content["global_step"]) if complete else 0, "shadow": shadow}
    return {
        "netG": net_g, "netD": strip_module_prefix(dict(content["netD_dict"])),
        "optimizerG": optimizer_g, "optimizerD": content["optimizerD"],
        "schedulerG": content["schedulerG"], "schedulerD": content["schedulerD"],
        "ema": ema, "global_step": int(content["global_step"]),
    }


def save_official_content(path: str | os.PathLike, trainer_state: Mapping[str, Any], generator: nn.Module,
                          epoch: int, args: argparse.Namespace) -> Path:
    """Write content.pth (atomically) in the official layout; see official_content."""
    return atomic_save(official_content(trainer_state, generator, epoch, args), path)


def save_official_generator(path: str | os.PathLike, generator_state: Mapping[str, torch.Tensor]) -> Path:
    """Write netG_<epoch>.pth: the given (EMA) weights under DDP 'module.' keys."""
    return atomic_save(add_module_prefix(generator_state), path)
