"""One entry point for every dataset: make_dataset(name, ...) and its config form, DataConfig."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from enum import Enum

from torch.utils.data import Dataset

from ddx.data.cifar10 import Cifar10Dataset
from ddx.data.common import Split
from ddx.data.digits import DEFAULT_DIGITS_SIZE, DigitsDataset
from ddx.data.image_folder import ImageFolderDataset, list_images
from ddx.data.lmdb_images import LmdbImageDataset, LmdbLayout
from ddx.data.stacked_digits import DEFAULT_STACKED_LENGTH, StackedDigitsDataset
from ddx.data.toy2d import DEFAULT_TOY_LENGTH, Mixture2D, Toy2DDataset
from ddx.utils.checks import check_positive_int, parse_enum


class DatasetName(str, Enum):
    DIGITS = "digits"
    STACKED_DIGITS = "stacked_digits"
    TOY25 = "toy25"
    RINGS = "rings"
    IMAGE_FOLDER = "image_folder"
    CIFAR10 = "cifar10"
    LMDB = "lmdb"


BUILTIN = (DatasetName.DIGITS, DatasetName.STACKED_DIGITS, DatasetName.TOY25, DatasetName.RINGS)
TOY = {DatasetName.TOY25: Mixture2D.GRID25, DatasetName.RINGS: Mixture2D.RING8}
# Datasets drawn at construction from a seed: their number of items per epoch is a choice (`length`).
DRAWN = (DatasetName.STACKED_DIGITS, *TOY)


@dataclass(frozen=True)
class DataConfig:
    """Everything make_dataset takes. Fields that do not apply to a dataset must stay None/default.

    name: which dataset. root: folder of a user's files (image_folder, cifar10, lmdb); None for built-ins.
    image_size: side of the square images (default 16 for digits, 32 for cifar10; required for image_folder and
    lmdb; must be None for the 2-D mixtures). split: train or heldout. seed, length: draws of stacked digits and
    of the 2-D mixtures (length = items per epoch; None for the default). random_flip: horizontal flip with
    probability 1/2 (file datasets). lmdb_layout: None detects it.
    """

    name: DatasetName | str
    root: str | None = None
    image_size: int | None = None
    split: Split | str = Split.TRAIN
    seed: int = 0
    length: int | None = None
    random_flip: bool = False
    lmdb_layout: LmdbLayout | str | None = None

    def __post_init__(self):
        object.__setattr__(self, "name", parse_enum(DatasetName, self.name, "dataset name"))
        object.__setattr__(self, "split", parse_enum(Split, self.split, "split"))
        if self.lmdb_layout is not None:
            object.__setattr__(self, "lmdb_layout", parse_enum(LmdbLayout, self.lmdb_layout, "LMDB layout"))
        if self.root is not None:
            object.__setattr__(self, "root", os.fspath(self.root))
        _check_applicable(self)

    def key(self) -> str:
        """A stable string naming exactly this data (e.g. to key cached FID statistics).

        A user's files are named by their folder's absolute path. An image folder's key also holds
        its number of images and the newest image's modification time, so adding, removing or
        rewriting images changes the key (statistics cached for the old images are refused, not
        reused); an image replaced by one with an older modification time goes unnoticed. CIFAR-10
        and LMDB folders (fixed releases) are keyed by path only: delete their cached statistics
        if their files change.
        """
        parts = [f"{f.name}={_plain(getattr(self, f.name))}" for f in dataclasses.fields(self)]
        if self.root is not None:
            parts.append(f"abs_root={os.path.abspath(self.root)}")
        if self.name is DatasetName.IMAGE_FOLDER:
            parts.append(_image_folder_signature(self.root))
        return "|".join(parts)


def _image_folder_signature(root: str) -> str:
    paths = list_images(root) if os.path.isdir(root) else []
    newest = max((os.stat(path).st_mtime_ns for path in paths), default=0)
    return f"images={len(paths)}|newest_mtime_ns={newest}"


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def _check_applicable(cfg: DataConfig) -> None:
    name = cfg.name.value
    if cfg.name in BUILTIN and cfg.root is not None:
        raise ValueError(f"{name} is built into ddx and takes no root (got root={cfg.root!r})")
    if cfg.name not in BUILTIN and cfg.root is None:
        raise ValueError(f"{name} reads a user's files: pass root=<path>")
    if cfg.name in TOY and cfg.image_size is not None:
        raise ValueError(f"{name} is a 2-D point dataset and takes no image_size")
    if cfg.name in (DatasetName.IMAGE_FOLDER, DatasetName.LMDB) and cfg.image_size is None:
        raise ValueError(f"{name} needs image_size (the side of the square images it returns)")
    if cfg.image_size is not None:
        check_positive_int(cfg.image_size, "image_size")
    if cfg.length is not None:
        if cfg.name not in DRAWN:
            raise ValueError(f"{name} has a fixed number of items and takes no length")
        check_positive_int(cfg.length, "length")
    if cfg.random_flip and cfg.name in BUILTIN:
        raise ValueError(f"random_flip applies to file datasets (image_folder, cifar10, lmdb), not {name}")
    if cfg.lmdb_layout is not None and cfg.name is not DatasetName.LMDB:
        raise ValueError(f"lmdb_layout applies to the lmdb dataset only, not {name}")
    if cfg.name in TOY and cfg.split is not Split.TRAIN:
        raise ValueError(f"{name} has no held-out split: draw fresh points with another seed instead")
    if cfg.name is DatasetName.IMAGE_FOLDER and cfg.split is not Split.TRAIN:
        raise ValueError("image_folder has no held-out split: point root at a folder of held-out images instead")


def build_dataset(config: DataConfig) -> Dataset:
    """The dataset a DataConfig describes; items are (float32 tensor, int label). See make_dataset."""
    name, size = config.name, config.image_size
    if name is DatasetName.DIGITS:
        return DigitsDataset(config.split, size or DEFAULT_DIGITS_SIZE)
    if name is DatasetName.STACKED_DIGITS:
        length = config.length or DEFAULT_STACKED_LENGTH
        return StackedDigitsDataset(length, config.seed, size or DEFAULT_DIGITS_SIZE, config.split)
    if name in TOY:
        return Toy2DDataset(TOY[name], config.length or DEFAULT_TOY_LENGTH, config.seed)
    if name is DatasetName.IMAGE_FOLDER:
        return ImageFolderDataset(config.root, size, config.random_flip)
    if name is DatasetName.CIFAR10:
        return Cifar10Dataset(config.root, config.split, size or 32, config.random_flip)
    return LmdbImageDataset(config.root, size, config.split, config.lmdb_layout, config.random_flip)


def make_dataset(
    name: DatasetName | str,
    root: str | os.PathLike | None = None,
    image_size: int | None = None,
    split: Split | str = Split.TRAIN,
    *,
    seed: int = 0,
    length: int | None = None,
    random_flip: bool = False,
    lmdb_layout: LmdbLayout | str | None = None,
) -> Dataset:
    """A map-style dataset; item i -> (x, label).

    Images: x float32 (3, H, W) in [-1, 1], on the 8-bit grid (k / 127.5 - 1). 2-D mixtures (toy25, rings):
    x float32 (2,), label = component. Labels: digit 0-9 (digits), mode 0-999 (stacked_digits), class
    (cifar10), 0 (image_folder, lmdb). Arguments as in DataConfig.
    """
    return build_dataset(
        DataConfig(name, root, image_size, split, seed, length, random_flip, lmdb_layout)
    )
