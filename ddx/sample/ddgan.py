"""DDGAN sampling and its outputs.

generate() runs the T-step reverse chain (ddx.diffusion.ddgan.sample_from_model, through
ddx.sample.fast.FastDDGANSampler in the execution's sampler mode) in batches from one seed.
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

from ddx.diffusion.ddgan import DDGANDiffusionConfig, PosteriorCoefficients
from ddx.execution import ExecutionOptions
from ddx.ops import prepare_model
from ddx.sample.fast import FastDDGANSampler
from ddx.sample.fast_common import check_on_model_device, model_device, reseed
from ddx.sample.timing import SampleTimer
from ddx.utils.checks import check_positive_int
from ddx.utils.images import images_to_uint8_grid, scatter_image, uint8_nhwc_rounded

SAMPLES_FILE = "samples.npz"
GRID_FILE = "grid.png"
SCATTER_FILE = "scatter.png"
IMAGES_DIR = "images"
METRICS_FILE = "metrics.json"


def generate(generator: nn.Module, diffusion: DDGANDiffusionConfig, nz: int, num_samples: int, batch_size: int,
             shape: tuple[int, ...], seed: int | None = None, execution: ExecutionOptions | None = None,
             timer: SampleTimer | None = None) -> torch.Tensor:
    """num_samples samples (N, *shape), float32 on the CPU, drawn batch by batch after torch.manual_seed(seed).

    Runs on the generator's device. execution: its sampler mode, precision and memory format run the chain
    (ddx.sample.fast.FastDDGANSampler), and its fused switch routes the generator and the posterior
    (ddx.ops.prepare_model); None: ExecutionOptions() for the chain (EAGER, fp32, fused posterior) with the
    generator used as routed. The draws: torch.manual_seed(seed) once, then per batch x_T and the chain's
    draws, so EAGER gives the images of the official loop. execution.nvtx and .threads are the process's
    (the CLI applies them). timer: times each batch (ddx.sample.timing; the samples are the same with or without).
    """
    if execution is not None and not isinstance(execution, ExecutionOptions):
        raise TypeError(f"execution must be a ddx.execution.ExecutionOptions, got {type(execution).__name__}")
    check_positive_int(num_samples, "num_samples")
    check_positive_int(batch_size, "batch_size")
    routed_here = execution is not None
    execution = ExecutionOptions() if execution is None else execution
    on = model_device(generator)
    check_on_model_device(execution.device, on, "the generator")
    if routed_here:
        prepare_model(generator, execution)
    coeff = PosteriorCoefficients(diffusion, on, fused=execution.fused)
    sampler = FastDDGANSampler.from_execution(generator, coeff, nz, diffusion.num_timesteps, execution,
                                              sample_shape=shape)
    was_training = generator.training
    generator.eval()
    try:
        reseed(seed)
        out = []
        for start in range(0, num_samples, batch_size):
            size = min(batch_size, num_samples - start)
            batch = sampler(size) if timer is None else timer.time(lambda: sampler(size), size)
            out.append(batch.float().cpu())
        if timer is not None:
            first = min(batch_size, num_samples)
            timer.ensure_steady(lambda: sampler(first), first)
    finally:
        generator.train(was_training)
    return torch.cat(out)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def write_images(images: torch.Tensor, outdir: str | os.PathLike, grid_size: int = 64) -> dict[str, Path]:
    """Write grid.png (the first grid_size samples), images/<index>.png and samples.npz (arr_0 uint8 NHWC)."""
    outdir = Path(outdir)
    (outdir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    pixels = uint8_nhwc_rounded(images)
    _save_png(images_to_uint8_grid(images[:grid_size]).numpy(), outdir / GRID_FILE)
    width = max(6, len(str(len(pixels) - 1)))
    for index, image in enumerate(pixels):
        _save_png(image, outdir / IMAGES_DIR / f"{index:0{width}d}.png")
    np.savez(outdir / SAMPLES_FILE, arr_0=pixels)
    return {"grid": outdir / GRID_FILE, "images": outdir / IMAGES_DIR, "npz": outdir / SAMPLES_FILE}


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
