"""IDDPM checkpoints in the official layout (openai/improved-diffusion train_util.TrainLoop.save), both ways.

The official training loop writes three kinds of files into its log directory at each save:
- ``model{step:06d}.pt``: the UNet's state_dict;
- ``ema_{rate}_{step:06d}.pt``: the same keys holding the EMA weights of one rate (``rate`` as Python
  prints the float, e.g. ``ema_0.9999_200000.pt``);
- ``opt{step:06d}.pt``: the AdamW state_dict (parameters indexed in ``model.parameters()`` order, which
  ddx's UNet shares).
The released checkpoints (CIFAR-10, ImageNet-64, ...) are such state_dicts. ddx names its exports with
the number of completed optimizer steps; the official loop's name is the step index before its
increment, one less than the number of updates the weights have seen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ddx.checkpoints.io import CheckpointError, atomic_save, load_checkpoint
from ddx.checkpoints.state_dict import strip_module_prefix

_MODEL_NAME = re.compile(r"^model(\d+)\.pt$")


def model_filename(step: int) -> str:
    return f"model{step:06d}.pt"


def ema_filename(rate: float, step: int) -> str:
    return f"ema_{float(rate)}_{step:06d}.pt"


def opt_filename(step: int) -> str:
    return f"opt{step:06d}.pt"


def parse_model_step(path: str | os.PathLike) -> int | None:
    """The step of an official ``model{NNNNNN}.pt`` file name, or None for any other name."""
    match = _MODEL_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def export_official(directory: str | os.PathLike, step: int, model_state: Mapping[str, torch.Tensor],
                    ema_states: Mapping[float, Mapping[str, torch.Tensor]],
                    opt_state: Mapping | None) -> list[Path]:
    """Write model/ema_<rate>/opt files of ``step`` into ``directory`` (atomically); returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [atomic_save(dict(model_state), directory / model_filename(step))]
    for rate, state in ema_states.items():
        paths.append(atomic_save(dict(state), directory / ema_filename(rate, step)))
    if opt_state is not None:
        paths.append(atomic_save(opt_state, directory / opt_filename(step)))
    return paths


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A UNet state_dict from an official file (``weights_only`` loading); a DDP 'module.' prefix is removed.

    Raises CheckpointError when the file is missing, unreadable, or not a flat mapping of tensors.
    """
    state = load_checkpoint(path)
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a model state_dict (a mapping of parameter names to tensors)")
    return strip_module_prefix(state)


def official_siblings(model_path: str | os.PathLike, rates: tuple[float, ...]) -> dict[str, Path | None]:
    """The files that accompany an official ``model{N}.pt``, as the official resume looks for them.

    Returns {'opt': path or None, 'ema_<rate>': path or None, ...}; a file that does not exist is None.
    Raises ValueError when the name is not ``model{N}.pt``.
    """
    step = parse_model_step(model_path)
    if step is None:
        raise ValueError(f"an official model checkpoint is named model<step>.pt, got {Path(model_path).name!r}")
    directory = Path(model_path).parent
    found: dict[str, Path | None] = {}
    for key, name in [("opt", opt_filename(step))] + [(f"ema_{float(r)}", ema_filename(r, step)) for r in rates]:
        candidate = directory / name
        found[key] = candidate if candidate.is_file() else None
    return found
