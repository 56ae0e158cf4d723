"""CIFAR-10 reader on a tiny fake `cifar-10-batches-py` in torchvision's python format."""

import pickle

import numpy as np
import pytest
import torch

from ddx.data import Cifar10Dataset, Split, load_cifar10_uint8, make_dataset

PER_BATCH, TEST_COUNT = 2, 3


def _write_batch(path, rng, n):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({"batch_label": "fake", "data": data, "labels": labels, "filenames": ["x.png"] * n}, f)
    return data, labels


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = [_write_batch(folder / f"data_batch_{i}", rng, PER_BATCH) for i in range(1, 6)]
    test = _write_batch(folder / "test_batch", rng, TEST_COUNT)
    return tmp_path, train, test


def test_reads_both_splits_in_order(cifar_root):
    root, train, test = cifar_root
    images, labels = load_cifar10_uint8(root, Split.TRAIN)
    assert images.shape == (5 * PER_BATCH, 3, 32, 32) and images.dtype == torch.uint8
    np.testing.assert_array_equal(images.reshape(-1, 3072).numpy(), np.concatenate([d for d, _ in train]))
    assert labels.tolist() == sum((l for _, l in train), [])
    images, labels = load_cifar10_uint8(root, "heldout")
    np.testing.assert_array_equal(images.reshape(-1, 3072).numpy(), test[0])
    assert labels.tolist() == test[1]


def test_items_are_channel_planes_on_the_8bit_grid(cifar_root):
    root, train, _ = cifar_root
    ds = make_dataset("cifar10", root=root)
    assert isinstance(ds, Cifar10Dataset) and len(ds) == 5 * PER_BATCH
    x, y = ds[3]  # second image of data_batch_2
    raw = train[1][0][1]
    assert x.shape == (3, 32, 32) and y == train[1][1][1]
    expected = torch.from_numpy(raw.reshape(3, 32, 32)).float() / 127.5 - 1  # R plane = first 1024 values
    assert torch.equal(x, expected)


def test_root_may_be_the_batches_folder_itself(cifar_root):
    root, _, test = cifar_root
    ds = Cifar10Dataset(root / "cifar-10-batches-py", Split.HELDOUT)
    assert len(ds) == TEST_COUNT


def test_resize_and_flip(cifar_root):
    root, _, _ = cifar_root
    small = Cifar10Dataset(root, image_size=16)
    assert small[0][0].shape == (3, 16, 16)
    plain = Cifar10Dataset(root)[0][0]
    flipping = Cifar10Dataset(root, random_flip=True)
    seen = [flipping[0][0] for _ in range(16)]
    assert any(torch.equal(s, plain.flip(-1)) for s in seen) and any(torch.equal(s, plain) for s in seen)


def test_wrong_layout_says_what_was_expected(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(ValueError, match="cifar-10-batches-py.*data_batch_1.*test_batch.*never downloads"):
        make_dataset("cifar10", root=tmp_path)


def test_missing_training_batch(cifar_root):
    root, _, _ = cifar_root
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(ValueError, match="missing batch file.*data_batch_4"):
        Cifar10Dataset(root)
    assert len(Cifar10Dataset(root, Split.HELDOUT)) == TEST_COUNT


def test_not_a_cifar_pickle(cifar_root):
    root, _, _ = cifar_root
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(ValueError, match="not a CIFAR python batch"):
        Cifar10Dataset(root, Split.HELDOUT)
