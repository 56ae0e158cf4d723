"""Bits/dim aggregation: the mean over images of per-batch per-image values."""

import pytest
import torch

from ddx.eval import BitsPerDimMeter, mean_bits_per_dim


def test_mean_over_images_with_uneven_batches():
    batches = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0]), torch.tensor([5.0, 6.0])]
    assert mean_bits_per_dim(batches) == pytest.approx(3.5)
    assert mean_bits_per_dim(iter(batches)) == pytest.approx(torch.cat(batches).mean().item())


def test_meter_counts():
    meter = BitsPerDimMeter()
    meter.add(torch.full((64,), 3.0, dtype=torch.float16))
    meter.add(torch.full((40,), 4.0))
    assert meter.count == 104 and meter.mean == pytest.approx((64 * 3 + 40 * 4) / 104)


@pytest.mark.parametrize(
    "values", [torch.tensor(3.0), torch.zeros(2, 2), torch.tensor([]), torch.tensor([1.0, float("nan")])],
    ids=["scalar", "2-d", "empty", "nan"],
)
def test_bad_values(values):
    with pytest.raises(ValueError, match="bpd"):
        BitsPerDimMeter().add(values)


def test_no_values():
    with pytest.raises(ValueError, match="no bits/dim values"):
        mean_bits_per_dim([])
