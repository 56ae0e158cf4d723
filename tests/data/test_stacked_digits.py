"""Stacked digits: one training digit per channel, mode = 100 R + 10 G + B, deterministic by seed."""

import pytest
import torch

from ddx.data import Split, StackedDigitsDataset, digits_uint8, stacked_mode


@pytest.mark.parametrize("image_size", [16, 9], ids=lambda s: f"{s}px")
def test_channels_are_training_digits_and_mode_matches_labels(image_size):
    ds = StackedDigitsDataset(length=50, seed=1, image_size=image_size)
    train, labels = digits_uint8(Split.TRAIN, image_size)
    for i in range(len(ds)):
        x, mode = ds[i]
        assert x.shape == (3, image_size, image_size) and x.dtype == torch.float32
        k = torch.round((x + 1) * 127.5)
        assert torch.equal(x, k / 127.5 - 1)
        digits = []
        for c in range(3):
            j = int(ds.indices[i, c])
            assert torch.equal(k[c].to(torch.uint8), train[j])
            digits.append(int(labels[j]))
        assert mode == 100 * digits[0] + 10 * digits[1] + digits[2]


def test_deterministic_by_seed():
    a, b, c = StackedDigitsDataset(100, seed=7), StackedDigitsDataset(100, seed=7), StackedDigitsDataset(100, seed=8)
    assert torch.equal(a.indices, b.indices) and torch.equal(a[42][0], b[42][0])
    assert not torch.equal(a.indices, c.indices)


def test_draws_cover_many_modes_uniformly():
    ds = StackedDigitsDataset(length=20000, seed=0)
    assert len(ds) == 20000
    assert ds.indices.min() >= 0 and ds.indices.max() < 1437
    counts = torch.bincount(ds.modes, minlength=1000)
    assert (counts > 0).sum() >= 995  # 20 draws per mode on average
    channel_digits = torch.stack([ds.modes // 100, ds.modes // 10 % 10, ds.modes % 10], 1)
    for c in range(3):
        freq = torch.bincount(channel_digits[:, c], minlength=10).double() / len(ds)
        assert (freq - 0.1).abs().max() < 0.015


def test_default_length_is_twice_the_training_set():
    assert len(StackedDigitsDataset()) == 2 * 1437


def test_stacked_mode_function():
    assert stacked_mode(torch.tensor([[1, 2, 3], [9, 9, 9], [0, 0, 7]])).tolist() == [123, 999, 7]


@pytest.mark.parametrize("length", [0, -3], ids=["zero", "negative"])
def test_bad_length(length):
    with pytest.raises(ValueError, match="length"):
        StackedDigitsDataset(length=length)
