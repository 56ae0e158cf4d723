"""PIL image -> model input, as the official DDGAN pipelines do it.

Resize the shorter side to image_size (bilinear, PIL's antialiasing), center crop to a square, optional random
horizontal flip (probability 1/2 from torch's global RNG, as torchvision's RandomHorizontalFlip, so DataLoader
workers get distinct streams), then k / 127.5 - 1 for the 8-bit values k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF
from PIL import Image

from ddx.data.common import uint8_to_unit_range
from ddx.utils.checks import check_positive_int


@dataclass(frozen=True)
class ImageTransform:
    """Callable: PIL image (any mode) -> float32 (3, image_size, image_size) in [-1, 1]."""

    image_size: int
    random_flip: bool = False

    def __post_init__(self):
        check_positive_int(self.image_size, "image_size")

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if min(image.size) != self.image_size:
            image = TF.resize(image, self.image_size, interpolation=TF.InterpolationMode.BILINEAR)
        if image.size != (self.image_size, self.image_size):
            image = TF.center_crop(image, [self.image_size, self.image_size])
        x = TF.pil_to_tensor(image)
        if self.random_flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return uint8_to_unit_range(x)
