"""Images in [-1, 1] as uint8 pixels: grids, NHWC arrays (two roundings, on purpose) and 2-D scatter plots.

Both trainers and both samplers write pictures; this module is their one home, at the generic floor
(torch and numpy only; torchvision and PIL are imported where drawn), so train/ and sample/ need not
import each other for it.

Why two uint8 conversions: each family's official code converts its own way, and the npz files that
FID / Inception tools read must match it byte for byte.
    uint8_nhwc_rounded    x * 255 + 0.5, as torchvision.utils.save_image (denoising-diffusion-gan's
                          test_ddgan.py writes its samples with save_image); also the grids below.
    uint8_nhwc_truncated  (x + 1) * 127.5 cast, i.e. truncated, as improved-diffusion's image_sample.py.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _check_nchw(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (N, C, H, W), got {shape}")


def _unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (clamped) -> [0, 1], float32 on the CPU."""
    return (images.detach().float().cpu().clamp(-1, 1) + 1) / 2


def images_to_uint8_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile images (N, C, H, W) with values in [-1, 1] into one uint8 RGB grid (H', W', 3).

    C must be 1 or 3; values outside [-1, 1] are clamped. ``nrow`` images per row, default ceil(sqrt(N)).
    Rounded as torchvision.utils.save_image.
    """
    from torchvision.utils import make_grid

    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (N, C, H, W) with C in (1, 3), got {shape}")
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image")
    if nrow is None:
        nrow = math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(_unit(images), nrow=nrow, padding=padding)
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def uint8_nhwc_rounded(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] (clamped) -> uint8 (N, H, W, C), rounded to nearest as torchvision's
    save_image (x * 255 + 0.5): the DDGAN samples, as the official test_ddgan.py saves them."""
    _check_nchw(images)
    return _unit(images).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def uint8_nhwc_truncated(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), truncated as improved-diffusion's image_sample.py
    ((x + 1) * 127.5, clamped to [0, 255], cast): the IDDPM samples' npz matches the official one byte for byte."""
    _check_nchw(images)
    return ((images + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def scatter_image(points: torch.Tensor, means: torch.Tensor | None = None, extent: float = 5.0,
                  size: int = 512) -> np.ndarray:
    """A scatter plot of points (N, 2) over [-extent, extent]^2 as uint8 (size, size, 3): white background,
    the mixture's means (K, 2) as red crosses under the samples' dark 3x3 dots (y upwards)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)

    def pixel(xy):
        u = (xy[0] + extent) / (2 * extent) * (size - 1)
        v = (extent - xy[1]) / (2 * extent) * (size - 1)
        return u, v

    if means is not None:
        for x, y in means.double().tolist():
            u, v = pixel((x, y))
            draw.line((u - 5, v, u + 5, v), fill=(220, 0, 0))
            draw.line((u, v - 5, u, v + 5), fill=(220, 0, 0))
    for x, y in points.detach().double().cpu().tolist():
        u, v = pixel((x, y))
        draw.rectangle((u - 1, v - 1, u + 1, v + 1), fill=(20, 40, 120))
    return np.asarray(canvas)


__all__ = ["images_to_uint8_grid", "scatter_image", "uint8_nhwc_rounded", "uint8_nhwc_truncated"]
