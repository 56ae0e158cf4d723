"""Named presets: typed partial run configurations, laid under the explicit flags of train.py / sample.py.

A preset maps a family's flat field names (the flag names without dashes, ddx.utils.config_io) to values.
Given the family's default run configuration (`base`), a preset is checked when it is defined: every key
must be a field and every value must pass the field's section (an unknown key or a bad value fails at
import, naming the preset), and its values are stored as the fields' types (enums, tuples).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ddx.utils.config_io import flat_values, replace_flat

MODELS = ("ddgan", "iddpm")


@dataclasses.dataclass(frozen=True)
class Preset:
    """name, a one-line description (with its source), the flat field values it sets, and the family's
    default run configuration they are checked against (None: not checked)."""

    name: str
    description: str
    defaults: Mapping[str, Any]
    base: Any = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        values = dict(self.defaults)
        if self.base is not None:
            flat = flat_values(self.config(values))
            values = {name: flat[name] for name in values}
        object.__setattr__(self, "defaults", MappingProxyType(values))

    def config(self, values: Mapping[str, Any] | None = None) -> Any:
        """The family's defaults with this preset's values laid over them (a checked run configuration)."""
        if self.base is None:
            raise ValueError(f"preset {self.name!r} has no base configuration to lay its values over")
        return replace_flat(self.base, self.defaults if values is None else values, f"preset {self.name}")


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
