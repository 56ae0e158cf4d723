"""A folder of PNG/JPEG images, searched recursively; files in sorted path order, so indices are stable."""

from __future__ import annotations

import os

import torch
from PIL import Image
from torch.utils.data import Dataset

from ddx.data.common import check_index, require_dir
from ddx.data.image_transform import ImageTransform

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_images(root: str) -> list[str]:
    """Paths of the PNG/JPEG files under `root` (any depth, extension case ignored), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        found.extend(os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


class ImageFolderDataset(Dataset):
    """Item i -> (image float32 (3, image_size, image_size) in [-1, 1], label 0).

    Images are resized (shorter side), center cropped and optionally flipped; see ImageTransform.
    """

    def __init__(self, root: str | os.PathLike, image_size: int, random_flip: bool = False):
        self.root = require_dir(root, "image folder")
        self.transform = ImageTransform(image_size, random_flip)
        self.paths = list_images(self.root)
        if not self.paths:
            raise ValueError(
                f"image folder {self.root!r} holds no images: expected files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)} (case ignored) in it or its subfolders"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[check_index(index, len(self.paths))]
        with Image.open(path) as image:
            return self.transform(image), 0
