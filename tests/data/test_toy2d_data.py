"""2-D mixtures: the 25-Gaussian grid and the 8-Gaussian ring, deterministic draws."""

import math

import pytest
import torch

from ddx.data import Mixture2D, Toy2DDataset, mixture_spec, sample_mixture


def test_grid25_spec():
    spec = mixture_spec(Mixture2D.GRID25)
    assert spec.num_modes == 25 and spec.std == 0.05
    values = {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert {tuple(m) for m in spec.means.tolist()} == {(a, b) for a in values for b in values}


def test_ring8_spec():
    spec = mixture_spec("ring8")
    assert spec.num_modes == 8 and spec.std == 0.02
    torch.testing.assert_close(spec.means.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    angles = torch.atan2(spec.means[:, 1], spec.means[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(angles.sort().values, torch.arange(8, dtype=torch.float64) * math.pi / 4)


@pytest.mark.parametrize("mixture", list(Mixture2D), ids=lambda m: m.value)
def test_samples_follow_their_components(mixture):
    ds = Toy2DDataset(mixture, length=20000, seed=3)
    spec = ds.spec
    offsets = ds.points.double() - spec.means[ds.components]
    assert offsets.abs().max() < 6 * spec.std
    assert abs(offsets.std().item() - spec.std) < 0.03 * spec.std
    freq = torch.bincount(ds.components, minlength=spec.num_modes).double() / len(ds)
    assert (freq - 1 / spec.num_modes).abs().max() < 0.012
    x, label = ds[5]
    assert x.shape == (2,) and x.dtype == torch.float32 and label == int(ds.components[5])


def test_deterministic_by_seed():
    a, b, c = Toy2DDataset(length=64, seed=1), Toy2DDataset(length=64, seed=1), Toy2DDataset(length=64, seed=2)
    assert torch.equal(a.points, b.points) and not torch.equal(a.points, c.points)


def test_sample_mixture_with_generator_is_reproducible():
    spec = mixture_spec(Mixture2D.GRID25)
    p1, c1 = sample_mixture(spec, 10, torch.Generator().manual_seed(0))
    p2, c2 = sample_mixture(spec, 10, torch.Generator().manual_seed(0))
    assert torch.equal(p1, p2) and torch.equal(c1, c2) and p1.shape == (10, 2)


def test_unknown_mixture():
    with pytest.raises(ValueError, match="grid25"):
        Toy2DDataset("spiral")
