"""CIFAR-10 from a local copy in torchvision's python format (`cifar-10-batches-py`); never downloads."""

from __future__ import annotations

import os
import pickle

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ddx.data.common import Split, check_index, require_dir
from ddx.data.image_transform import ImageTransform
from ddx.utils.checks import parse_enum

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_FILES = {
    Split.TRAIN: tuple(f"data_batch_{i}" for i in range(1, 6)),
    Split.HELDOUT: ("test_batch",),
}


def find_cifar10_dir(root: str | os.PathLike) -> str:
    """The `cifar-10-batches-py` folder: `root` itself or `root/cifar-10-batches-py`."""
    root = require_dir(root, "cifar10")
    for candidate in (root, os.path.join(root, CIFAR10_DIRNAME)):
        if os.path.isfile(os.path.join(candidate, "test_batch")):
            return candidate
    raise ValueError(
        f"cifar10: no CIFAR-10 python batches under {root!r}: expected the folder {CIFAR10_DIRNAME}/ "
        f"(holding data_batch_1 ... data_batch_5 and test_batch, as extracted from cifar-10-python.tar.gz) "
        f"at {os.path.join(root, CIFAR10_DIRNAME)!r} or as the root itself; ddx never downloads"
    )


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise ValueError(f"cifar10: missing batch file {path!r}")
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    if not isinstance(entry, dict) or "data" not in entry or ("labels" not in entry and "fine_labels" not in entry):
        raise ValueError(f"cifar10: {path!r} is not a CIFAR python batch (a pickled dict with 'data' and 'labels')")
    data = np.asarray(entry["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"cifar10: {path!r} has data of shape {data.shape}, expected (N, 3072)")
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10_uint8(root: str | os.PathLike, split: Split | str = Split.TRAIN) -> tuple[torch.Tensor, torch.Tensor]:
    """One split: images uint8 (N, 3, 32, 32), labels int64 (N,). N is 50,000 / 10,000 for the real dataset."""
    split = parse_enum(Split, split, "split")
    folder = find_cifar10_dir(root)
    parts = [_read_batch(os.path.join(folder, name)) for name in CIFAR10_FILES[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


class Cifar10Dataset(Dataset):
    """Item i -> (image float32 (3, image_size, image_size) in [-1, 1], class label int 0-9).

    The official DDGAN CIFAR-10 pipeline is image_size=32 with random_flip=True.
    """

    def __init__(
        self, root: str | os.PathLike, split: Split | str = Split.TRAIN, image_size: int = 32, random_flip: bool = False
    ):
        self.split = parse_enum(Split, split, "split")
        self.transform = ImageTransform(image_size, random_flip)
        self.images, self.labels = load_cifar10_uint8(root, self.split)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = check_index(index, len(self))
        image = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return self.transform(image), int(self.labels[i])
