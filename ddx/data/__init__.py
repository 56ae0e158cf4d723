"""Datasets for ddx: built-in presets (digits, stacked digits, 2-D mixtures) and a user's files.

Start with `make_dataset(name, ...)` (or `build_dataset(DataConfig(...))`); items are (x, label) with images
float32 (3, H, W) in [-1, 1]. `digits_tensor(Split.HELDOUT)` gives the 360 held-out digits at once.
"""

from ddx.data.cifar10 import Cifar10Dataset, load_cifar10_uint8
from ddx.data.common import Split
from ddx.data.digits import DigitsDataset, digits_tensor, digits_uint8, load_raw_digits
from ddx.data.factory import DataConfig, DatasetName, build_dataset, make_dataset
from ddx.data.image_folder import ImageFolderDataset
from ddx.data.image_transform import ImageTransform
from ddx.data.lmdb_images import LmdbImageDataset, LmdbLayout
from ddx.data.stacked_digits import NUM_STACKED_MODES, StackedDigitsDataset, stacked_mode
from ddx.data.toy2d import Mixture2D, MixtureSpec, Toy2DDataset, mixture_spec, sample_mixture

__all__ = [
    "Cifar10Dataset",
    "DataConfig",
    "DatasetName",
    "DigitsDataset",
    "ImageFolderDataset",
    "ImageTransform",
    "LmdbImageDataset",
    "LmdbLayout",
    "Mixture2D",
    "MixtureSpec",
    "NUM_STACKED_MODES",
    "Split",
    "StackedDigitsDataset",
    "Toy2DDataset",
    "build_dataset",
    "digits_tensor",
    "digits_uint8",
    "load_cifar10_uint8",
    "load_raw_digits",
    "make_dataset",
    "mixture_spec",
    "sample_mixture",
    "stacked_mode",
]
