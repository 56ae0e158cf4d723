"""2-D Gaussian mixtures with equal weights: the 25-Gaussian grid (DESIGN.md preset) and a ring.

GRID25: means on {-4, -2, 0, 2, 4}^2, std 0.05 (fixed by DESIGN.md).
RING8: 8 means evenly spaced on the circle of radius 2 (angles 2*pi*k/8, k = 0..7), std 0.02; the
ring of the unrolled-GAN / VEEGAN / PacGAN literature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch
from torch.utils.data import Dataset

from ddx.data.common import check_index
from ddx.utils.checks import check_positive_int, parse_enum

DEFAULT_TOY_LENGTH = 100_000


class Mixture2D(str, Enum):
    GRID25 = "grid25"
    RING8 = "ring8"


@dataclass(frozen=True)
class MixtureSpec:
    """An isotropic equal-weight Gaussian mixture: means float64 (K, 2), one std shared by all components."""

    means: torch.Tensor
    std: float

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]


def mixture_spec(mixture: Mixture2D | str) -> MixtureSpec:
    """Means and std of a named mixture."""
    mixture = parse_enum(Mixture2D, mixture, "2-D mixture")
    if mixture is Mixture2D.GRID25:
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
        gx, gy = torch.meshgrid(axis, axis, indexing="ij")
        return MixtureSpec(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), 0.05)
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return MixtureSpec(2.0 * torch.stack([angles.cos(), angles.sin()], dim=1), 0.02)


def sample_mixture(spec: MixtureSpec, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws: points float32 (n, 2), component index int64 (n,)."""
    n = check_positive_int(n, "n")
    comp = torch.randint(0, spec.num_modes, (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (spec.means[comp] + spec.std * noise).to(torch.float32), comp


class Toy2DDataset(Dataset):
    """Item i -> (point float32 (2,), component index int). All points drawn at construction from `seed`."""

    def __init__(self, mixture: Mixture2D | str = Mixture2D.GRID25, length: int = DEFAULT_TOY_LENGTH, seed: int = 0):
        self.mixture = parse_enum(Mixture2D, mixture, "2-D mixture")
        self.spec = mixture_spec(self.mixture)
        self.length = check_positive_int(length, "length")
        self.seed = int(seed)
        self.points, self.components = sample_mixture(self.spec, self.length, torch.Generator().manual_seed(self.seed))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = check_index(index, self.length)
        return self.points[i], int(self.components[i])
