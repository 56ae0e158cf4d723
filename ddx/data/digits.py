"""scikit-learn's 8x8 digits, shipped as ddx/data/digits.npz, prepared as DESIGN.md's digits preset.

Preset (fixed): values 0-16 divided by 16, resized bilinearly (align_corners=False) to image_size x image_size,
rounded to the 8-bit grid k = round(x * 255) (half to even, as numpy/torch round), repeated to 3 channels and
returned as k / 127.5 - 1. Images 0-1,436 are the training split, 1,437-1,796 the held-out split.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ddx.data.common import Split, check_index, uint8_to_unit_range
from ddx.utils.checks import check_positive_int, parse_enum

DIGITS_NPZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
NUM_DIGITS_IMAGES = 1797
NUM_TRAIN_DIGITS = 1437
DEFAULT_DIGITS_SIZE = 16


@functools.lru_cache(maxsize=1)
def load_raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """The shipped array: images uint8 (1797, 8, 8) with values 0-16, labels int64 (1797,). Read-only arrays."""
    with np.load(DIGITS_NPZ) as f:
        images, labels = f["images"], f["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_slice(split: Split) -> slice:
    return slice(0, NUM_TRAIN_DIGITS) if split is Split.TRAIN else slice(NUM_TRAIN_DIGITS, NUM_DIGITS_IMAGES)


@functools.lru_cache(maxsize=8)
def _digits_uint8_all(image_size: int) -> torch.Tensor:
    raw, _ = load_raw_digits()
    # float64 keeps the bilinear weights (multiples of 1/16 for 8 -> 16) exact, so rounding ties are real ties.
    x = torch.from_numpy(raw.astype(np.float64) / 16.0)[:, None]
    if image_size != raw.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return torch.round(x[:, 0] * 255.0).clamp_(0, 255).to(torch.uint8)


def digits_uint8(
    split: Split | str = Split.TRAIN, image_size: int = DEFAULT_DIGITS_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split on the 8-bit grid, single channel: images uint8 (N, image_size, image_size), labels int64 (N,).

    N is 1,437 for TRAIN and 360 for HELDOUT. The images are a copy: changing them leaves the cache
    that later calls read from intact.
    """
    split = parse_enum(Split, split, "split")
    image_size = check_positive_int(image_size, "image_size")
    _, labels = load_raw_digits()
    sl = _split_slice(split)
    return _digits_uint8_all(image_size)[sl].clone(), torch.from_numpy(labels[sl].copy())


def digits_tensor(
    split: Split | str = Split.HELDOUT, image_size: int = DEFAULT_DIGITS_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as model inputs: images float32 (N, 3, H, W) in [-1, 1] (channels equal), labels int64 (N,)."""
    images, labels = digits_uint8(split, image_size)
    return uint8_to_unit_range(images)[:, None].expand(-1, 3, -1, -1).contiguous(), labels


class DigitsDataset(Dataset):
    """Digits preset as a map-style dataset: item i -> (image float32 (3, H, W) in [-1, 1], label int 0-9)."""

    def __init__(self, split: Split | str = Split.TRAIN, image_size: int = DEFAULT_DIGITS_SIZE):
        self.split = parse_enum(Split, split, "split")
        self.image_size = check_positive_int(image_size, "image_size")
        self.images, self.labels = digits_tensor(self.split, self.image_size)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = check_index(index, len(self))
        return self.images[i], int(self.labels[i])
