"""Aggregation of bits/dim over a dataset; the per-image values come from IDDPM's calc_bpd_loop (total_bpd).

The mean is over images. The official scripts/image_nll.py averages per-batch means instead, which gives the same
number when every batch has the same size and weights a smaller last batch more otherwise.
"""

from __future__ import annotations

from typing import Iterable

import torch


class BitsPerDimMeter:
    """Running mean of per-image bits/dim. add(values (B,)) per batch; mean is the mean over all images."""

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def add(self, bpd: torch.Tensor) -> None:
        """bpd: float (B,), one value per image (calc_bpd_loop's "total_bpd")."""
        if not isinstance(bpd, torch.Tensor) or bpd.ndim != 1 or bpd.numel() == 0:
            got = tuple(bpd.shape) if isinstance(bpd, torch.Tensor) else type(bpd).__name__
            raise ValueError(f"bpd must be a non-empty 1-D tensor of per-image values, got {got}")
        if not torch.isfinite(bpd).all():
            raise ValueError("bpd values contain NaN or inf")
        self.total += bpd.detach().double().sum().item()
        self.count += bpd.numel()

    @property
    def mean(self) -> float:
        if self.count == 0:
            raise ValueError("no bits/dim values were added")
        return self.total / self.count


def mean_bits_per_dim(per_batch_bpd: Iterable[torch.Tensor]) -> float:
    """Mean bits/dim over every image of the per-batch value tensors (each (B,))."""
    meter = BitsPerDimMeter()
    for bpd in per_batch_bpd:
        meter.add(bpd)
    return meter.mean
