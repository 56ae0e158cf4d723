"""Stacked digits (DESIGN.md preset): three digits images, one per RGB channel; 1,000 modes.

As the official StackedMNIST (datasets_prep/stackmnist_data.py), channel 0 (R) gives the hundreds:
mode = 100 * label(R) + 10 * label(G) + label(B). Each channel's image is drawn independently and uniformly
from the chosen split; the draws are fixed at construction from `seed`, so the dataset is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ddx.data.common import Split, check_index, uint8_to_unit_range
from ddx.data.digits import DEFAULT_DIGITS_SIZE, NUM_TRAIN_DIGITS, digits_uint8
from ddx.utils.checks import check_positive_int, parse_enum

NUM_STACKED_MODES = 1000
# The official StackedMNIST has 2 x the MNIST training set per epoch; the same ratio here.
DEFAULT_STACKED_LENGTH = 2 * NUM_TRAIN_DIGITS


def stacked_mode(labels: torch.Tensor) -> torch.Tensor:
    """Per-channel digit labels int (..., 3) -> mode index int64 (...) in [0, 1000)."""
    labels = labels.to(torch.int64)
    return 100 * labels[..., 0] + 10 * labels[..., 1] + labels[..., 2]


class StackedDigitsDataset(Dataset):
    """Item i -> (image float32 (3, H, W) in [-1, 1], mode int in [0, 1000)).

    length: number of samples per epoch. seed: fixes which image goes in each channel of each sample.
    """

    def __init__(
        self,
        length: int = DEFAULT_STACKED_LENGTH,
        seed: int = 0,
        image_size: int = DEFAULT_DIGITS_SIZE,
        split: Split | str = Split.TRAIN,
    ):
        self.length = check_positive_int(length, "length")
        self.seed = int(seed)
        self.split = parse_enum(Split, split, "split")
        self.images, self.digit_labels = digits_uint8(self.split, check_positive_int(image_size, "image_size"))
        rng = np.random.default_rng(self.seed)
        # (length, 3): which image of the split goes in channel R, G, B.
        self.indices = torch.from_numpy(rng.integers(0, self.images.shape[0], size=(self.length, 3)))
        self.modes = stacked_mode(self.digit_labels[self.indices])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = check_index(index, self.length)
        return uint8_to_unit_range(self.images[self.indices[i]]), int(self.modes[i])
