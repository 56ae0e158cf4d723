"""CIFAR-10 from a local copy in torchvision's python format (`cifar-10-batches-py`); never downloads."""

from __future__ import annotations

import codecs
import os
import pickle

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ddx.data.common import Split, check_index, require_dir
from ddx.data.image_transform import ImageTransform
from ddx.utils.checks import parse_enum
from ddx.utils.errors import DataError

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_FILES = {
    Split.TRAIN: tuple(f"data_batch_{i}" for i in range(1, 6)),
    Split.HELDOUT: ("test_batch",),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def find_cifar10_dir(root: str | os.PathLike) -> str:
    """The `cifar-10-batches-py` folder: `root` itself or `root/cifar-10-batches-py`."""
    root = require_dir(root, "cifar10")
    for candidate in (root, os.path.join(root, CIFAR10_DIRNAME)):
        if os.path.isfile(os.path.join(candidate, "test_batch")):
            return candidate
    raise DataError(
        f"cifar10: no CIFAR-10 python batches under {root!r}: expected the folder {CIFAR10_DIRNAME}/ "
        f"(holding data_batch_1 ... data_batch_5 and test_batch) at {os.path.join(root, CIFAR10_DIRNAME)!r} "
        f"or as the root itself. ddx never downloads: get cifar-10-python.tar.gz from "
        f"{CIFAR10_URL} and extract it there (tar xzf cifar-10-python.tar.gz -C {root})"
    )


def _numpy_reconstruct():
    # numpy 2 moved numpy.core to numpy._core; the official batches (pickled by Python 2's numpy) name numpy.core.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class SafeBatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR-10 batches hold: dicts, lists, str, bytes, ints and numpy arrays.

    pickle.load would call any global a file names (os.system, builtins.eval...), so a crafted
    data_batch_1 could run code when read. Containers and scalars need no global; numpy arrays need
    the three below, and ``_codecs.encode`` is how a protocol-2 pickle written by Python 3 spells
    bytes (it only encodes a str). Any other global is refused with a DataError naming it.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: codecs.encode,
    }

    def __init__(self, file, path: str):
        super().__init__(file, encoding="latin1")  # Python 2 str (keys, array bytes) read as latin-1, as torchvision
        self.path = path

    def find_class(self, module: str, name: str):
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise DataError(
                f"cifar10: {self.path!r} asks to load the Python object {module}.{name}, which no CIFAR-10 batch "
                f"holds; refused, since unpickling it could run code. Replace the file with the one from "
                f"cifar-10-python.tar.gz ({CIFAR10_URL})"
            )
        return allowed()


def _unpickle_batch(path: str):
    with open(path, "rb") as f:
        try:
            return SafeBatchUnpickler(f, path).load()
        except DataError:
            raise
        except Exception as err:  # a truncated or garbled file fails in many ways (EOFError, UnpicklingError...)
            raise DataError(
                f"cifar10: {path!r} is not a readable CIFAR-10 python batch ({type(err).__name__}: {err}); "
                f"replace it with the one from cifar-10-python.tar.gz ({CIFAR10_URL})"
            ) from err


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise DataError(
            f"cifar10: missing batch file {path!r}: the folder must hold data_batch_1 ... data_batch_5 and "
            f"test_batch, extracted from cifar-10-python.tar.gz ({CIFAR10_URL})"
        )
    entry = _unpickle_batch(path)
    if not isinstance(entry, dict) or "data" not in entry or ("labels" not in entry and "fine_labels" not in entry):
        raise DataError(f"cifar10: {path!r} is not a CIFAR python batch (a pickled dict with 'data' and 'labels')")
    data = np.asarray(entry["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"cifar10: {path!r} has data of shape {data.shape}, expected (N, 3072)")
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
