"""Images in LMDB, in the two layouts the official DDGAN reads (datasets_prep/lmdb_datasets.py, datasets_prep/lsun.py).

CELEBA_HQ: `root/train.lmdb` and `root/validation.lmdb` (TRAIN / HELDOUT), each an LMDB environment whose
  keys are str(i).encode() for i = 0 .. entries-1; a value is an encoded image (PNG/JPEG/WebP...) or the raw
  bytes of a square RGB uint8 image (size * size * 3 bytes, row-major HWC). The official reader hard-codes
  27,000 / 3,000 entries; here the count is the environment's own.
LSUN: `root` is one category's environment (e.g. `church_outdoor_train_lmdb`, holding data.mdb); items in the
  order of its keys (cursor order, as the official key list); values are encoded images. The directory is the
  split, so only Split.TRAIN is accepted for it.

Needs the `lmdb` package (`pip install lmdb`, in ddx's dev extra).
"""

from __future__ import annotations

import io
import os
from enum import Enum

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ddx.data.common import Split, check_index, require_dir
from ddx.data.image_transform import ImageTransform
from ddx.utils.checks import parse_enum
from ddx.utils.errors import DataError


class LmdbLayout(str, Enum):
    CELEBA_HQ = "celeba_hq"
    LSUN = "lsun"


CELEBA_HQ_ENVS = {Split.TRAIN: "train.lmdb", Split.HELDOUT: "validation.lmdb"}
_IMAGE_MAGICS = (b"\x89PNG", b"\xff\xd8", b"RIFF", b"GIF8", b"BM")
_LAYOUT_HELP = (
    "expected either the CelebA-HQ layout (root/train.lmdb/ and root/validation.lmdb/, each an LMDB "
    "environment holding data.mdb) or the LSUN layout (root itself an LMDB environment holding data.mdb, "
    "e.g. church_outdoor_train_lmdb/)"
)


def import_lmdb():
    """The lmdb module, or an ImportError saying how to get it."""
    try:
        import lmdb
    except ImportError as err:
        raise ImportError("reading LMDB datasets needs the lmdb package: pip install lmdb") from err
    return lmdb


def _is_lmdb_env(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "data.mdb"))


def detect_lmdb_layout(root: str) -> LmdbLayout:
    """The layout of the LMDB data at `root`; ValueError saying what was expected where."""
    if _is_lmdb_env(root):
        return LmdbLayout.LSUN
    if _is_lmdb_env(os.path.join(root, CELEBA_HQ_ENVS[Split.TRAIN])) or _is_lmdb_env(
        os.path.join(root, CELEBA_HQ_ENVS[Split.HELDOUT])
    ):
        return LmdbLayout.CELEBA_HQ
    raise DataError(f"lmdb: no LMDB data found at {root!r}: {_LAYOUT_HELP}")


def decode_lmdb_image(value: bytes) -> Image.Image:
    """An LMDB value -> RGB PIL image: an encoded image file, or raw square RGB bytes (CelebA-HQ, not encoded)."""
    value = bytes(value)
    if value.startswith(_IMAGE_MAGICS):
        try:
            with Image.open(io.BytesIO(value)) as image:
                return image.convert("RGB")
        except (OSError, ValueError, SyntaxError):
            pass  # raw pixels may begin like an image file (2 bytes: about 1 image in 65,536)
    size = int(round((len(value) / 3) ** 0.5))
    if size == 0 or 3 * size * size != len(value):
        raise DataError(
            f"lmdb: a value of {len(value)} bytes is neither an encoded image (PNG/JPEG/WebP/GIF/BMP) nor raw "
            f"square RGB bytes (size * size * 3)"
        )
    return Image.fromarray(np.frombuffer(value, dtype=np.uint8).reshape(size, size, 3))


# Read-only environments shared by every dataset in the process: py-lmdb (>= 2) refuses to open one environment
# twice in a process, and a DataLoader worker forked from here inherits the parent's open environment and reads
# through it (read-only, lock=False), as the official readers do; under spawn a worker opens its own.
_OPEN_ENVS: dict[tuple, object] = {}


def shared_env(path: str):
    """The process's read-only environment for the LMDB directory `path`, opened on first use."""
    data_file = os.stat(os.path.join(path, "data.mdb"))
    key = (os.path.realpath(path), data_file.st_dev, data_file.st_ino)
    if key not in _OPEN_ENVS:
        _OPEN_ENVS[key] = import_lmdb().open(
            path, readonly=True, lock=False, readahead=False, meminit=False, max_readers=126
        )
    return _OPEN_ENVS[key]


class LmdbImageDataset(Dataset):
    """Item i -> (image float32 (3, image_size, image_size) in [-1, 1], label 0).

    layout None detects it from the files. Holds no open handle (see shared_env), so it pickles to DataLoader
    workers.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int,
        split: Split | str = Split.TRAIN,
        layout: LmdbLayout | str | None = None,
        random_flip: bool = False,
    ):
        import_lmdb()
        root = require_dir(root, "lmdb")
        self.split = parse_enum(Split, split, "split")
        self.layout = detect_lmdb_layout(root) if layout is None else parse_enum(LmdbLayout, layout, "LMDB layout")
        self.transform = ImageTransform(image_size, random_flip)
        self.env_path = self._env_path(root)
        with shared_env(self.env_path).begin(write=False) as txn:
            if self.layout is LmdbLayout.LSUN:
                self.keys = list(txn.cursor().iternext(keys=True, values=False))
            else:
                self.keys = [str(i).encode() for i in range(txn.stat()["entries"])]
        if not self.keys:
            raise DataError(f"lmdb: the environment {self.env_path!r} holds no entries; point root at one that holds images")

    def _env_path(self, root: str) -> str:
        if self.layout is LmdbLayout.LSUN:
            if self.split is not Split.TRAIN:
                raise DataError(
                    "lmdb: in the LSUN layout the directory is the split (e.g. church_outdoor_val_lmdb/); "
                    "pass that directory as root with split='train'"
                )
            path = root
        else:
            path = os.path.join(root, CELEBA_HQ_ENVS[self.split])
        if not _is_lmdb_env(path):
            raise DataError(f"lmdb: {path!r} is not an LMDB environment (no data.mdb in it); {_LAYOUT_HELP}")
        return path

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        key = self.keys[check_index(index, len(self.keys))]
        with shared_env(self.env_path).begin(write=False) as txn:
            value = txn.get(key)
        if value is None:
            raise DataError(f"lmdb: key {key!r} is missing from {self.env_path!r}; the environment is damaged, rebuild it")
        try:
            return self.transform(decode_lmdb_image(value)), 0
        except (DataError, OSError, SyntaxError) as err:  # a damaged value: name where it is
            raise DataError(f"lmdb: entry {key!r} of {self.env_path!r} cannot be decoded: {err}; rebuild or fix that entry") from err
