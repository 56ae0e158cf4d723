"""A DDGAN generator's weights out of any file sample.py ddgan accepts, read by the owner of each layout.

- a ddx checkpoint (ckpt_<step>.pt): the DDGANTrainer state's netG, with its EMA (ddx.train.ema) in place;
- an official content.pth: netG_dict, with the moving averages EMA.py keeps in optimizerG
  (ddx.checkpoints.ddgan_official);
- a bare generator state_dict (netG_<epoch>.pth, 'module.' keys or not).
Any other file is a CheckpointError that names what the file is (ddx.checkpoints.identify).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ddx.checkpoints.ddgan_official import official_generator_weights
from ddx.checkpoints.identify import Family, identify, wrong_family_message
from ddx.checkpoints.io import CheckpointError
from ddx.checkpoints.state_dict import strip_module_prefix
from ddx.train.ema import EMA


def trainer_generator_weights(trainer_state: Mapping[str, Any], raw: bool) -> dict[str, torch.Tensor]:
    """G's weights in a DDGANTrainer.state_dict(): the EMA's average unless ``raw`` (or no average yet)."""
    net_g = trainer_state["netG"]
    return dict(net_g) if raw else EMA.averaged_weights(trainer_state.get("ema"), net_g)


def generator_weights(payload: Any, generator: nn.Module, raw: bool, name: str) -> dict[str, torch.Tensor]:
    """The generator state_dict in a loaded checkpoint ``payload`` (named ``name`` in errors).

    generator: the NCSN++ / toy generator the weights are for (its parameter order indexes an official
    optimizerG); raw: the trained weights instead of their moving average.
    """
    family = identify(payload)
    wrong = wrong_family_message(name, family, "ddgan")
    if wrong is not None:
        raise CheckpointError(wrong)
    if family is Family.DDX_DDGAN:
        return trainer_generator_weights(payload["trainer"], raw)
    if family is Family.DDGAN_CONTENT:
        return official_generator_weights(payload, [n for n, _ in generator.named_parameters()], use_ema=not raw)
    if family is Family.DDGAN_GENERATOR:
        return strip_module_prefix(payload)
    raise CheckpointError(f"{name} is neither a ddx checkpoint, an official content.pth nor a netG state_dict")
