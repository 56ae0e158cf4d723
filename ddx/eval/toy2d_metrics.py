"""Metrics of samples from a 2-D Gaussian mixture (DESIGN.md): modes covered and high-quality fraction.

A mode is covered when at least one sample lies within 3 sigma (Euclidean distance) of its mean; a sample is of
high quality when it lies within 3 sigma of some mean.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from ddx.data.toy2d import Mixture2D, MixtureSpec, mixture_spec


@dataclass(frozen=True)
class MixtureMetrics:
    """modes_covered of num_modes; high_quality_fraction in [0, 1]; counts int64 (num_modes,) of samples per mode."""

    modes_covered: int
    num_modes: int
    high_quality_fraction: float
    counts: torch.Tensor


def mixture_metrics(
    samples: torch.Tensor, mixture: Mixture2D | str | MixtureSpec = Mixture2D.GRID25, num_sigmas: float = 3.0
) -> MixtureMetrics:
    """samples float (N, 2) -> MixtureMetrics against the mixture's means and std.

    num_sigmas: the radius, in stds, within which a sample counts for a mode (finite, > 0).
    """
    spec = mixture if isinstance(mixture, MixtureSpec) else mixture_spec(mixture)
    if isinstance(num_sigmas, bool) or not isinstance(num_sigmas, numbers.Real):
        raise TypeError(f"num_sigmas must be a number, got {type(num_sigmas).__name__}")
    if not 0 < num_sigmas < math.inf:
        raise ValueError(f"num_sigmas must be a finite number > 0, got {num_sigmas!r}")
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
        raise TypeError("samples must be a float tensor of shape (N, 2)")
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must have shape (N >= 1, 2), got {tuple(samples.shape)}")
    dist = torch.cdist(samples.to(torch.float64), spec.means.to(torch.float64))  # (N, K)
    near = dist <= num_sigmas * spec.std
    counts = near.sum(0)
    return MixtureMetrics(
        modes_covered=int((counts > 0).sum()),
        num_modes=spec.num_modes,
        high_quality_fraction=near.any(1).double().mean().item(),
        counts=counts,
    )
