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


def split_optimizer_ema(optimizer_state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[int, torch.Tensor]]:
    """Adam's state_dict without EMA.py's 'ema' entries, and those entries by parameter index."""
    states, emas = {}, {}
    for index, param_state in optimizer_state["state"].items():
        param_state = dict(param_state)
        if "ema" in param_state:
            emas[int(index)] = param_state.pop("ema")
        states[index] = param_state
    return {"state": states, "param_groups": optimizer_state["param_groups"]}, emas


def with_optimizer_ema(optimizer_state: Mapping[str, Any], shadow: list[torch.Tensor]) -> dict[str, Any]:
    """Adam's state_dict with each parameter's moving average (in parameter order) under 'ema', as EMA.py keeps it."""
    states = {}
    for index, param_state in optimizer_state["state"].items():
        states[index] = {**param_state, "ema": shadow[int(index)].detach().clone()}
    return {"state": states, "param_groups": optimizer_state["param_groups"]}


def official_content(*, net_g: Mapping[str, torch.Tensor], net_d: Mapping[str, torch.Tensor],
                     optimizer_g: Mapping[str, Any], optimizer_d: Mapping[str, Any], scheduler_g: Mapping[str, Any],
                     scheduler_d: Mapping[str, Any], epoch: int, global_step: int, args: argparse.Namespace,
                     ema_shadow: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """The official content.pth dict from plain (unprefixed) state_dicts.

    epoch: the next epoch to run (the official loop saves epoch + 1 after finishing ``epoch``); args: the
    run's flags; ema_shadow: G's moving averages in parameter order, stored in optimizerG as EMA.py does.
    """
    if ema_shadow is not None:
        optimizer_g = with_optimizer_ema(optimizer_g, ema_shadow)
    return {
        "epoch": int(epoch), "global_step": int(global_step), "args": args,
        "netG_dict": add_module_prefix(net_g), "optimizerG": optimizer_g, "schedulerG": scheduler_g,
        "netD_dict": add_module_prefix(net_d), "optimizerD": optimizer_d, "schedulerD": scheduler_d,
    }


def official_generator_weights(content: Mapping[str, Any], parameter_names: list[str], use_ema: bool
                               ) -> dict[str, torch.Tensor]:
    """G's weights in a content.pth: its netG_dict, with optimizerG's moving averages in place when ``use_ema``
    and every parameter has one (``parameter_names``: G's parameters in order, as the optimizer indexes them)."""
    weights = strip_module_prefix(dict(content["netG_dict"]))
    states = content["optimizerG"]["state"]
    _, emas = split_optimizer_ema(content["optimizerG"])
    if use_ema and len(emas) == len(states) == len(parameter_names):
        weights.update({parameter_names[index]: value for index, value in emas.items()})
    return weights


def save_official_generator(path: str | os.PathLike, generator_state: Mapping[str, torch.Tensor]) -> Path:
    """Write netG_<epoch>.pth: the given (EMA) weights under DDP 'module.' keys."""
    return atomic_save(add_module_prefix(generator_state), path)
