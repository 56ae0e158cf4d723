"""The shipped digits array and the digits preset (DESIGN.md: /16, bilinear resize, 8-bit grid, 3 channels)."""

import hashlib

import numpy as np
import pytest
import torch

from ddx.data import DigitsDataset, Split, digits_tensor, digits_uint8, load_raw_digits

IMAGES_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
LABELS_SHA256 = "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21"
LABEL_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_shipped_array_matches_checksums_and_sklearn():
    images, labels = load_raw_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256
    assert hashlib.sha256(labels.astype("<i8").tobytes()).hexdigest() == LABELS_SHA256
    assert int(images.max()) == 16 and int(images.astype(np.int64).sum()) == 561718
    assert np.bincount(labels).tolist() == LABEL_COUNTS
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # scikit-learn is not a dependency; the checksums above already pin the data
        return
    reference = load_digits()
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(labels, reference.target)


def _bilinear_numpy(img: np.ndarray, size: int) -> np.ndarray:
    """Independent bilinear resize with align_corners=False (half-pixel centres, edges clamped)."""
    n = img.shape[0]

    def weights(out_size):
        src = np.maximum((np.arange(out_size) + 0.5) * n / out_size - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n - 1)
        hi = np.minimum(lo + 1, n - 1)
        return lo, hi, src - lo

    lo, hi, f = weights(size)
    rows = img[lo] * (1 - f)[:, None] + img[hi] * f[:, None]
    return rows[:, lo] * (1 - f)[None] + rows[:, hi] * f[None]


@pytest.mark.parametrize("image_size", [16, 8, 7, 32, 1], ids=lambda s: f"{s}px")
def test_preset_matches_independent_computation(image_size):
    raw, _ = load_raw_digits()
    train, _ = digits_uint8(Split.TRAIN, image_size)
    for i in (0, 5, 1436):
        expected = np.round(_bilinear_numpy(raw[i] / 16.0, image_size) * 255.0)
        np.testing.assert_array_equal(train[i].numpy(), expected.astype(np.uint8))


@pytest.mark.parametrize(
    "split,count,first", [(Split.TRAIN, 1437, 0), (Split.HELDOUT, 360, 1437)], ids=["train", "heldout"]
)
def test_split_sizes_labels_and_grid(split, count, first):
    _, raw_labels = load_raw_digits()
    images, labels = digits_tensor(split)
    assert images.shape == (count, 3, 16, 16) and images.dtype == torch.float32
    np.testing.assert_array_equal(labels.numpy(), raw_labels[first:first + count])
    k = torch.round((images + 1) * 127.5)
    assert k.min() >= 0 and k.max() <= 255
    assert torch.equal(images, k / 127.5 - 1), "values must be exactly k / 127.5 - 1 for 8-bit k"
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])


def test_dataset_items_match_split_tensor_and_are_deterministic():
    ds = DigitsDataset(Split.HELDOUT, image_size=16)
    images, labels = digits_tensor(Split.HELDOUT)
    assert len(ds) == 360
    for i in (0, 17, 359, -1):
        x, y = ds[i]
        assert torch.equal(x, images[i]) and y == int(labels[i])
    assert torch.equal(DigitsDataset("heldout")[3][0], ds[3][0])


def test_changing_returned_images_leaves_the_cache_intact():
    images, labels = digits_uint8(Split.TRAIN)
    before = images.clone()
    images.zero_()
    labels.zero_()
    again, again_labels = digits_uint8(Split.TRAIN)
    assert torch.equal(again, before) and again_labels.max() == 9


def test_default_is_16px_train():
    ds = DigitsDataset()
    assert len(ds) == 1437 and ds[0][0].shape == (3, 16, 16)


@pytest.mark.parametrize(
    "kwargs,error",
    [({"split": "validation"}, ValueError), ({"image_size": 0}, ValueError), ({"image_size": 16.0}, TypeError)],
    ids=["bad-split", "zero-size", "float-size"],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match="split|image_size"):
        DigitsDataset(**kwargs)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        DigitsDataset(Split.HELDOUT)[360]
