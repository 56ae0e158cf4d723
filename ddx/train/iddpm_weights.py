"""A UNet's weights out of an IDDPM run or an official file: the owner of IddpmTrainer's checkpoint layout.

- a ddx run directory (its newest ``checkpoints/ckpt_<step>.pt``), a checkpoints/ folder or a
  ``ckpt_<step>.pt``: the trainer's weights, or one of its EMAs put in place (ddx.train.ema);
- any other file: an official ``model<N>.pt`` / ``ema_<rate>_<N>.pt`` state_dict
  (ddx.checkpoints.iddpm_official).
sample.py iddpm reads runs through here, so sampling never reads the trainer's keys itself.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ddx.checkpoints.iddpm_official import load_official_state_dict
from ddx.checkpoints.io import CheckpointError, CheckpointManager, load_checkpoint
from ddx.train.ema import EMA
from ddx.utils.checks import parse_enum


class Weights(enum.Enum):
    """Which weights of a ddx run to sample from."""

    EMA = "ema"
    MODEL = "model"


@dataclasses.dataclass(frozen=True)
class LoadedWeights:
    """state_dict: the UNet's; source: a description such as 'ckpt_000003000.pt, EMA 0.999'. (The run's
    configuration is ddx.train.run_file.read_run's to read.)"""

    state_dict: dict[str, torch.Tensor]
    source: str


def ema_key(rate: float) -> str:
    """The key of an EMA rate in IddpmTrainer.state_dict()['ema'] (the rate as Python prints the float)."""
    return str(float(rate))


def is_iddpm_trainer_state(payload: Any) -> bool:
    """Whether a loaded ddx checkpoint holds an IddpmTrainer state (its 'trainer' has the UNet under 'model')."""
    return isinstance(payload, Mapping) and isinstance(payload.get("trainer"), Mapping) and "model" in payload["trainer"]


def unet_weights(trainer_state: Mapping[str, Any], weights: Weights = Weights.EMA, ema_rate: float | None = None,
                 name: str = "the checkpoint") -> tuple[dict[str, torch.Tensor], str]:
    """(UNet state_dict, which weights: 'trained weights' or 'EMA <rate>') of an IddpmTrainer.state_dict().

    weights: a Weights member or its value ('ema', 'model'); ema_rate: one of the run's rates (default: the
    first); a rate the run lacks is a ValueError naming them.
    """
    # By value, so that an equal enum of another module (the CLI's flag type) chooses the same weights.
    weights = parse_enum(Weights, weights.value if isinstance(weights, enum.Enum) else weights, "weights")
    if weights is Weights.MODEL:
        return dict(trainer_state["model"]), "trained weights"
    emas = trainer_state["ema"]
    key = next(iter(emas)) if ema_rate is None else ema_key(ema_rate)
    if key not in emas:
        raise ValueError(f"{name} holds EMA rates {', '.join(emas)}, not {ema_rate}")
    return EMA.averaged_weights(emas[key], trainer_state["model"]), f"EMA {key}"


def _run_checkpoint(path: Path) -> Path | None:
    """The ddx checkpoint a path names: a run directory (its latest), a checkpoints/ dir, or ckpt_*.pt."""
    if path.is_dir():
        for directory in (path / "checkpoints", path):
            latest = CheckpointManager(directory, keep_last=1, create=False).latest()
            if latest is not None:
                return latest
        raise CheckpointError(f"no ddx checkpoint (checkpoints/ckpt_<step>.pt) under {path}")
    return path if path.name.startswith("ckpt_") else None


def load_unet_weights(path: str | os.PathLike, weights: Weights = Weights.EMA, ema_rate: float | None = None
                      ) -> LoadedWeights:
    """The UNet weights at ``path``: a ddx run directory or ``ckpt_<step>.pt``, or an official state_dict file.

    weights / ema_rate choose among a ddx run's trained weights and its EMAs (default: the first rate).
    An official file is one state_dict whatever they say. Raises CheckpointError / ValueError with the reason.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file or run directory not found: {path}")
    checkpoint = _run_checkpoint(path)
    if checkpoint is None:
        return LoadedWeights(load_official_state_dict(path), f"{path.name} (state_dict)")
    payload = load_checkpoint(checkpoint)
    if not is_iddpm_trainer_state(payload):
        raise CheckpointError(f"{checkpoint} is not a ddx IDDPM run checkpoint")
    state, which = unet_weights(payload["trainer"], weights, ema_rate, str(checkpoint))
    return LoadedWeights(state, f"{checkpoint.name}, {which}")
