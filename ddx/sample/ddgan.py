"""DDGAN sampling and its outputs.

generate() runs the T-step reverse chain (ddx.diffusion.ddgan.sample_from_model) in batches from one seed.
Images are written as a PNG grid, one lossless PNG per sample (the official test_ddgan.py writes JPEGs) and an
npz whose arr_0 is uint8 (N, H, W, C), the layout of the usual FID / Inception-score tools. 2-D samples are
written as a scatter plot and an npz of float32 points (N, 2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ddx.diffusion.ddgan import DDGANDiffusionConfig, PosteriorCoefficients, sample_from_model
from ddx.train.rundir import images_to_uint8_grid

SAMPLES_FILE = "samples.npz"
GRID_FILE = "grid.png"
SCATTER_FILE = "scatter.png"
IMAGES_DIR = "images"
METRICS_FILE = "metrics.json"


@torch.no_grad()
def generate(generator: nn.Module, diffusion: DDGANDiffusionConfig, nz: int, num_samples: int, batch_size: int,
             shape: tuple[int, ...], device: torch.device | str = "cpu", seed: int | None = None,
             fused: bool = True) -> torch.Tensor:
    """num_samples samples (N, *shape), float32 on the CPU, drawn batch by batch after torch.manual_seed(seed)."""
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")
    device = torch.device(device)
    if seed is not None:
        torch.manual_seed(seed)
    pos_coeff = PosteriorCoefficients(diffusion, device)
    was_training = generator.training
    generator.eval()
    out = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        x_init = torch.randn(n, *shape, device=device)
        out.append(sample_from_model(pos_coeff, generator, diffusion.num_timesteps, x_init, nz, fused=fused).float().cpu())
    generator.train(was_training)
    return torch.cat(out)


def to_uint8_nhwc(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C), rounded as torchvision's save_image."""
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    unit = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return unit.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def write_images(images: torch.Tensor, outdir: str | os.PathLike, grid_size: int = 64) -> dict[str, Path]:
    """Write grid.png (the first grid_size samples), images/<index>.png and samples.npz (arr_0 uint8 NHWC)."""
    outdir = Path(outdir)
    (outdir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    pixels = to_uint8_nhwc(images)
    _save_png(images_to_uint8_grid(images[:grid_size]).numpy(), outdir / GRID_FILE)
    width = max(6, len(str(len(pixels) - 1)))
    for index, image in enumerate(pixels):
        _save_png(image, outdir / IMAGES_DIR / f"{index:0{width}d}.png")
    np.savez(outdir / SAMPLES_FILE, arr_0=pixels)
    return {"grid": outdir / GRID_FILE, "images": outdir / IMAGES_DIR, "npz": outdir / SAMPLES_FILE}


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


def write_points(points: torch.Tensor, outdir: str | os.PathLike, means: torch.Tensor | None = None) -> dict[str, Path]:
    """Write scatter.png and samples.npz (arr_0 float32 (N, 2)) of 2-D samples."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    extent = max(5.0, float(means.abs().max()) * 1.25) if means is not None else 5.0
    _save_png(scatter_image(points, means, extent), outdir / SCATTER_FILE)
    np.savez(outdir / SAMPLES_FILE, arr_0=points.detach().float().cpu().numpy())
    return {"scatter": outdir / SCATTER_FILE, "npz": outdir / SAMPLES_FILE}


def write_metrics(metrics: Mapping[str, Any], outdir: str | os.PathLike) -> Path:
    path = Path(outdir) / METRICS_FILE
    path.write_text(json.dumps(dict(metrics), indent=2) + "\n")
    return path
