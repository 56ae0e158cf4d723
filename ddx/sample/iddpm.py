"""IDDPM sampling and likelihood evaluation (image_sample.py and image_nll.py of improved-diffusion).

The sampling library only: functions take a built model (weights loaded) and options. Reading weights from a
ddx run or an official file is ddx.train.iddpm_weights.load_unet_weights (called by ddx/cli/sample_iddpm.py).

- :func:`generate_samples`: images by the ancestral chain (``p_sample_loop``) or DDIM, of the diffusion
  given (respace it for fewer steps), through ddx.sample.fast_iddpm.FastIDDPMSampler in the execution's
  sampler mode, as the official uint8 NHWC array, with labels when class-conditional.
- :func:`save_npz` / :func:`save_grid`: the official ``samples_<shape>.npz`` (arr_0, arr_1) and a PNG grid.
- :func:`evaluate_bpd`: calc_bpd_loop over a dataset: mean total_bpd, prior_bpd, vb, mse, xstart_mse.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddx.execution import ExecutionOptions
from ddx.ops import prepare_model, set_fused
from ddx.sample.fast_common import check_on_model_device, model_device
from ddx.sample.fast_iddpm import FastIDDPMSampler, IDDPMLoop
from ddx.sample.timing import SampleTimer
from ddx.utils.checks import check_positive_int
from ddx.utils.images import images_to_uint8_grid, uint8_nhwc_truncated


def generate_samples(diffusion, model, num_samples: int, batch_size: int, image_size: int, *, channels: int = 3,
                     clip_denoised: bool = True, use_ddim: bool = False, eta: float = 0.0,
                     num_classes: int | None = None, generator: torch.Generator | None = None, progress: bool = False,
                     execution: ExecutionOptions | None = None, timer: SampleTimer | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """num_samples images (uint8 (N, H, W, C)) and, with num_classes, their labels int64 (N,).

    Batches of batch_size on the model's device; the last batch is cut to num_samples as the official script
    does. generator: draws the labels, the initial noise and every step's noise (under GRAPHS pass None and
    seed with torch.manual_seed). eta: DDIM's (ignored by the ancestral chain, as image_sample.py does).
    execution: its sampler mode, precision and memory format run the chain, and its fused switch routes the
    model and the diffusion (ddx.ops); None: EAGER fp32 with both used as routed. NVTX: sample/step_<i>.
    timer: times each batch's chain (ddx.sample.timing; the samples are the same with or without).
    """
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size), ("image_size", image_size)):
        check_positive_int(value, name)
    on = model_device(model)
    if execution is not None:
        check_on_model_device(execution.device, on)
        prepare_model(model, execution)
        set_fused(diffusion, execution.fused)
    loop = IDDPMLoop.DDIM if use_ddim else IDDPMLoop.P_SAMPLE
    sampler = FastIDDPMSampler.from_execution(model, diffusion, (channels, image_size, image_size),
                                              execution or ExecutionOptions(), loop=loop, clip_denoised=clip_denoised,
                                              eta=eta if use_ddim else 0.0)
    images, labels = [], []
    done = 0
    while done < num_samples:
        kwargs = {}
        if num_classes is not None:
            classes = torch.randint(0, num_classes, (batch_size,), device=on, generator=generator)
            kwargs["y"] = classes
            labels.append(classes.cpu().numpy())

        def draw():
            return sampler(batch_size, model_kwargs=kwargs, generator=generator, progress=progress)

        sample = draw() if timer is None else timer.time(draw, batch_size)
        images.append(uint8_nhwc_truncated(sample))
        done += batch_size
    if timer is not None:
        timer.ensure_steady(draw, batch_size, generator)
    arr = np.concatenate(images)[:num_samples]
    return arr, (np.concatenate(labels)[:num_samples] if labels else None)


def save_npz(directory: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """``<directory>/samples_<N>x<H>x<W>x<C>.npz`` with arr_0 (and arr_1 labels), as image_sample.py."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    path = Path(directory) / f"samples_{'x'.join(str(s) for s in images.shape)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if labels is None:
        np.savez(path, images)
    else:
        np.savez(path, images, labels)
    return path


def save_grid(path: str | os.PathLike, images: np.ndarray, max_images: int = 100) -> Path:
    """A PNG grid of the first ``max_images`` uint8 (N, H, W, C) images."""
    from PIL import Image

    shown = torch.from_numpy(images[:max_images]).permute(0, 3, 1, 2).float() / 127.5 - 1
    grid = images_to_uint8_grid(shown)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.numpy()).save(path)
    return path


@dataclasses.dataclass(frozen=True)
class BpdResult:
    """Means over the evaluated images: total_bpd = prior_bpd + vb in bits/dim (vb summed over timesteps);
    mse (of eps) and xstart_mse averaged over timesteps; ``terms``: the per-timestep means (column 0 is
    t = T-1), the arrays image_nll.py saves as <name>_terms.npz."""

    num_images: int
    total_bpd: float
    prior_bpd: float
    vb: float
    mse: float
    xstart_mse: float
    terms: dict[str, list[float]]

    def summary(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("num_images", "total_bpd", "prior_bpd", "vb", "mse", "xstart_mse")}


def evaluate_bpd(diffusion, model, batches: Iterable[Any], num_samples: int, clip_denoised: bool = True,
                 device: torch.device | str = "cpu", class_cond: bool = False,
                 generator: torch.Generator | None = None, log=None) -> BpdResult:
    """calc_bpd_loop over batches of (x (B, C, H, W) in [-1, 1], labels (B,)) until num_samples images."""
    totals: dict[str, list[torch.Tensor]] = {"total_bpd": [], "prior_bpd": [], "vb": [], "mse": [], "xstart_mse": []}
    done = 0
    for batch in batches:
        if done >= num_samples:
            break
        x, labels = batch
        x = x[: num_samples - done].to(device)
        kwargs = {"y": torch.as_tensor(labels)[: x.shape[0]].to(device)} if class_cond else {}
        out = diffusion.calc_bpd_loop(model, x, clip_denoised=clip_denoised, model_kwargs=kwargs, generator=generator)
        for key in totals:
            totals[key].append(out[key].detach().double().cpu())
        done += x.shape[0]
        if log is not None:
            log(f"done {done} samples: bpd={torch.cat(totals['total_bpd']).mean().item():.6f}")
    if done == 0:
        raise ValueError("the dataset gave no images to evaluate")
    cat = {key: torch.cat(values) for key, values in totals.items()}
    per_t = {key: cat[key].mean(dim=0).tolist() for key in ("vb", "mse", "xstart_mse")}
    return BpdResult(done, cat["total_bpd"].mean().item(), cat["prior_bpd"].mean().item(),
                     cat["vb"].sum(dim=1).mean().item(), cat["mse"].mean().item(),
                     cat["xstart_mse"].mean().item(), per_t)
