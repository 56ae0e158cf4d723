"""Named presets: flag defaults for a model's train.py / sample.py, overridden by explicit flags.

A preset maps argparse destinations (the flag names without dashes) to values; the CLI installs them
with ``parser.set_defaults`` before parsing, so any flag given on the command line wins.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

MODELS = ("ddgan", "iddpm")


@dataclasses.dataclass(frozen=True)
class Preset:
    """name, a one-line description (with its source), and the flag defaults it sets."""

    name: str
    description: str
    defaults: Mapping[str, Any]

    def __post_init__(self):
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


def presets(model: str) -> Mapping[str, Preset]:
    """The presets of `model` by name (ddx.presets.<model>.PRESETS)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from: {', '.join(MODELS)}")
    try:
        module = importlib.import_module(f"ddx.presets.{model}")
    except ModuleNotFoundError as err:
        if err.name != f"ddx.presets.{model}":
            raise
        raise ValueError(f"model {model!r} has no presets (no module ddx.presets.{model})") from None
    return module.PRESETS


def get_preset(model: str, name: str) -> Preset:
    """The preset `name` of `model`; ValueError listing the valid names otherwise."""
    table = presets(model)
    if name not in table:
        raise ValueError(f"unknown {model} preset {name!r}; choose from: {', '.join(table)}")
    return table[name]


__all__ = ["MODELS", "Preset", "get_preset", "presets"]
