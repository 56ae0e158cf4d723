"""Pieces shared by the datasets: the split enum, index checks, 8-bit <-> [-1, 1] conversion, path checks.

Enum parsing and positive-int checks are ddx.utils.checks' parse_enum and check_positive_int.
"""

from __future__ import annotations

import os
from enum import Enum

import numpy as np
import torch

from ddx.utils.errors import DataError


class Split(str, Enum):
    """Which part of a dataset.

    TRAIN: the training images. HELDOUT: the images kept out of training (digits 1,437-1,796,
    CIFAR-10's test_batch, the CelebA-HQ LMDB's validation.lmdb).
    """

    TRAIN = "train"
    HELDOUT = "heldout"


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
    """`path` as a str if it is an existing directory, else a DataError (a ValueError) saying what was expected."""
    if path is None:
        raise DataError(f"{what}: a root path is required")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{what}: path {path!r} does not exist; point the root at the folder holding the data")
    if not os.path.isdir(path):
        raise DataError(f"{what}: path {path!r} is not a directory; point the root at the folder holding the data")
    return path
