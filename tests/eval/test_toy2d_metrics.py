"""2-D mixture metrics on constructed points: 3-sigma mode coverage and high-quality fraction."""

import math

import pytest
import torch

from ddx.data import Mixture2D, Toy2DDataset, mixture_spec
from ddx.eval import mixture_metrics


def test_points_on_every_mean():
    means = mixture_spec(Mixture2D.GRID25).means.float()
    result = mixture_metrics(means.repeat(2, 1))
    assert result.modes_covered == 25 and result.num_modes == 25 and result.high_quality_fraction == 1.0
    assert result.counts.tolist() == [2] * 25


def test_three_sigma_boundary():
    # Grid std 0.05: 3 sigma = 0.15. Points at 0.14 of (2, 2) count, at 0.16 they do not.
    d = 0.14 / math.sqrt(2)
    inside = torch.tensor([[2.0 + d, 2.0 + d], [2.0, 2.0 - 0.14]])
    outside = torch.tensor([[2.16, 2.0], [1.0, 1.0], [0.0, 3.0]])
    result = mixture_metrics(torch.cat([inside, outside]), "grid25")
    assert result.modes_covered == 1 and result.high_quality_fraction == pytest.approx(2 / 5)
    none = mixture_metrics(outside, Mixture2D.GRID25)
    assert none.modes_covered == 0 and none.high_quality_fraction == 0.0


def test_ring_subset_of_modes():
    spec = mixture_spec(Mixture2D.RING8)
    samples = torch.cat([spec.means[:3].float(), torch.zeros(1, 2)])  # 3 modes, plus the centre (no mode)
    result = mixture_metrics(samples, Mixture2D.RING8)
    assert result.modes_covered == 3 and result.num_modes == 8 and result.high_quality_fraction == pytest.approx(0.75)


@pytest.mark.parametrize("mixture", list(Mixture2D), ids=lambda m: m.value)
def test_true_samples_score_high(mixture):
    ds = Toy2DDataset(mixture, length=2000, seed=0)
    result = mixture_metrics(ds.points, mixture)
    assert result.modes_covered == ds.spec.num_modes
    # A 2-D Gaussian lies within 3 sigma with probability 1 - exp(-4.5) = 0.989.
    assert result.high_quality_fraction == pytest.approx(1 - math.exp(-4.5), abs=0.01)


@pytest.mark.parametrize(
    "samples,error",
    [(torch.zeros(4, 3), ValueError), (torch.zeros(0, 2), ValueError), (torch.zeros(4, 2, dtype=torch.long), TypeError)],
    ids=["three-columns", "empty", "integer"],
)
def test_bad_samples(samples, error):
    with pytest.raises(error, match="\\(N"):
        mixture_metrics(samples)


@pytest.mark.parametrize("num_sigmas, error", [(0.0, ValueError), (-3.0, ValueError), (math.nan, ValueError),
                                               (math.inf, ValueError), ("3", TypeError), (True, TypeError)],
                         ids=["zero", "negative", "nan", "inf", "str", "bool"])
def test_bad_num_sigmas(num_sigmas, error):
    with pytest.raises(error, match="num_sigmas must be a"):
        mixture_metrics(torch.zeros(2, 2), num_sigmas=num_sigmas)


def test_num_sigmas_sets_the_radius():
    point = torch.tensor([[2.0, 2.2]])  # 4 stds of the grid from (2, 2)
    assert mixture_metrics(point, num_sigmas=3).modes_covered == 0
    assert mixture_metrics(point, num_sigmas=4.5).modes_covered == 1
