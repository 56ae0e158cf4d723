"""The DistributedDataParallel ``module.`` key prefix, off and on: the one pair of functions for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

_V = TypeVar("_V")
DDP_PREFIX = "module."


def strip_module_prefix(state_dict: Mapping[str, _V], prefix: str = DDP_PREFIX) -> dict[str, _V]:
    """A state_dict saved from DistributedDataParallel (keys 'module.<name>') with the prefix removed.

    Keys without the prefix are kept as they are, so a plain state_dict passes through unchanged.
    """
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in state_dict.items()}


def add_module_prefix(state_dict: Mapping[str, _V], prefix: str = DDP_PREFIX) -> dict[str, _V]:
    """Keys as a DistributedDataParallel module names them ('module.<name>')."""
    return {prefix + key: value for key, value in state_dict.items()}
