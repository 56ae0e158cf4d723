"""Pieces shared by the datasets: the split enum, enum parsing, 8-bit <-> [-1, 1] conversion, path checks."""

from __future__ import annotations

import os
from enum import Enum
from typing import TypeVar

import numpy as np
import torch

E = TypeVar("E", bound=Enum)


class Split(str, Enum):
    """Which part of a dataset.

    TRAIN: the training images. HELDOUT: the images kept out of training (digits 1,437-1,796,
    CIFAR-10's test_batch, the CelebA-HQ LMDB's validation.lmdb).
    """

    TRAIN = "train"
    HELDOUT = "heldout"


def parse_enum(enum_cls: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `enum_cls` (given as a member or its string value); ValueError listing the choices."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if member.value == value.lower():
                return member
    choices = ", ".join(repr(m.value) for m in enum_cls)
    raise ValueError(f"unknown {what} {value!r}; expected one of {choices}")


def check_positive_int(value: object, what: str) -> int:
    """`value` if it is a positive int (bool excluded), else TypeError/ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    return int(value)


def check_index(index: int, length: int) -> int:
    """A valid non-negative index into a sequence of `length` items (negative indices count from the end)."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"dataset index must be an int, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    return int(index) % length


def uint8_to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """8-bit values k (uint8, any shape) -> float32 k / 127.5 - 1, in [-1, 1]."""
    return images.to(torch.float32) / 127.5 - 1.0


def require_dir(path: str | os.PathLike | None, what: str) -> str:
    """`path` as a str if it is an existing directory, else a ValueError saying what was expected there."""
    if path is None:
        raise ValueError(f"{what}: a root path is required")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{what}: path {path!r} does not exist")
    if not os.path.isdir(path):
        raise ValueError(f"{what}: path {path!r} is not a directory")
    return path
