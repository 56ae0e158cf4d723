"""A folder of PNG/JPEG images, searched recursively; files in sorted path order, so indices are stable."""

from __future__ import annotations

import os

import torch
from PIL import Image
from torch.utils.data import Dataset

from ddx.data.common import check_index, require_dir
from ddx.data.image_transform import ImageTransform
from ddx.utils.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# A PNG ends with its IEND chunk (length 0, type, CRC); searched in the file's last bytes, since a few
# writers append data after it.
_PNG_END = b"IEND\xaeB`\x82"
_PNG_TAIL_SEARCHED = 1024
_REPAIR_HINT = "re-save or remove it (PIL.Image.open(path).load() shows the same failure)"


def list_images(root: str) -> list[str]:
    """Paths of the PNG/JPEG files under `root` (any depth, extension case ignored), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        found.extend(os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def check_image_file(path: str) -> None:
    """A DataError naming `path` unless it begins as a PNG or JPEG does and, for a PNG, ends as one does.

    Reads 8 bytes at each end, not the image: cheap enough for every file of a large folder when the
    dataset is built, and it finds random bytes and truncated PNGs before training, not at step 0.
    A truncated JPEG or a PNG damaged inside passes; __getitem__ names the file when it fails to decode.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(_PNG_SIGNATURE))
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - _PNG_TAIL_SEARCHED, 0))
            tail = f.read()
    except OSError as err:
        raise DataError(f"image folder: cannot read {path!r} ({err}); fix its permissions or remove it") from err
    if head.startswith(_PNG_SIGNATURE):
        if _PNG_END not in tail:
            raise DataError(f"image folder: {path!r} is a truncated PNG (its IEND chunk is missing); {_REPAIR_HINT}")
    elif not head.startswith(_JPEG_SIGNATURE):
        raise DataError(
            f"image folder: {path!r} is neither a PNG nor a JPEG file (its first bytes are {head[:4]!r}); {_REPAIR_HINT}"
        )


class ImageFolderDataset(Dataset):
    """Item i -> (image float32 (3, image_size, image_size) in [-1, 1], label 0).

    Images are resized (shorter side), center cropped and optionally flipped; see ImageTransform.
    Every file's first and last bytes are checked when the dataset is built (check_image_file).
    """

    def __init__(self, root: str | os.PathLike, image_size: int, random_flip: bool = False):
        self.root = require_dir(root, "image folder")
        self.transform = ImageTransform(image_size, random_flip)
        self.paths = list_images(self.root)
        if not self.paths:
            raise DataError(
                f"image folder {self.root!r} holds no images: expected files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)} (case ignored) in it or its subfolders; put the images there "
                f"or point the root at the folder that holds them"
            )
        for path in self.paths:
            check_image_file(path)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[check_index(index, len(self.paths))]
        try:
            with Image.open(path) as image:
                return self.transform(image), 0
        except (OSError, SyntaxError, ValueError) as err:  # what PIL raises for a damaged file
            raise DataError(f"image folder: cannot decode {path!r} ({type(err).__name__}: {err}); {_REPAIR_HINT}") from err
