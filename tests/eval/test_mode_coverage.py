"""Stacked-digit mode counting and KL(histogram || uniform), on mode arrays with known answers."""

import math

import numpy as np
import pytest
import torch

from ddx.eval import mode_coverage


def test_ten_modes_hit_five_times_each():
    modes = torch.arange(0, 1000, 100).repeat_interleave(5)  # 10 modes x 5 samples
    result = mode_coverage(modes)
    assert result.modes_covered == 10
    assert result.kl == pytest.approx(math.log(100))  # p = 1/10 on 10 modes: log(0.1 * 1000)
    assert result.counts.sum() == 50 and result.counts[100] == 5 and result.counts[101] == 0


def test_all_modes_uniformly_gives_zero_kl():
    result = mode_coverage(np.tile(np.arange(1000), 3))
    assert result.modes_covered == 1000 and result.kl == pytest.approx(0.0, abs=1e-12)


def test_single_mode_gives_log_1000():
    result = mode_coverage(torch.full((7,), 123))
    assert result.modes_covered == 1 and result.kl == pytest.approx(math.log(1000))


def test_uneven_histogram():
    modes = torch.tensor([0, 0, 0, 1])  # p = (3/4, 1/4)
    expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
    assert mode_coverage(modes).kl == pytest.approx(expected)
    assert mode_coverage(modes, num_modes=2).kl == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))


@pytest.mark.parametrize(
    "modes,message",
    [(torch.tensor([0, 1000]), "in \\[0, 1000\\)"), (torch.tensor([-1]), "in \\[0, 1000\\)"),
     (torch.zeros(2, 2, dtype=torch.long), "1-D"), (torch.tensor([0.5]), "integer"),
     (torch.tensor([], dtype=torch.long), "non-empty")],
    ids=["too-large", "negative", "2-d", "float", "empty"],
)
def test_bad_modes(modes, message):
    with pytest.raises(ValueError, match=message):
        mode_coverage(modes)
