"""IDDPM sampling and likelihood evaluation (image_sample.py and image_nll.py of improved-diffusion).

- :func:`load_iddpm_weights`: a UNet state_dict from a ddx run (directory or ``ckpt_<step>.pt``; the
  trained weights or one EMA) or from an official ``.pt`` file (a plain state_dict).
- :func:`generate_samples`: images by the ancestral chain (``p_sample_loop``) or DDIM, of the diffusion
  given (respace it for fewer steps), as the official uint8 NHWC array, with labels when class-conditional.
- :func:`save_npz` / :func:`save_grid`: the official ``samples_<shape>.npz`` (arr_0, arr_1) and a PNG grid.
- :func:`evaluate_bpd`: calc_bpd_loop over a dataset: mean total_bpd, prior_bpd, vb, mse, xstart_mse.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddx.checkpoints.iddpm_official import load_official_state_dict
from ddx.profiling import nvtx_range
from ddx.train.checkpoint import CheckpointError, CheckpointManager, load_checkpoint
from ddx.train.rundir import read_run_config
from ddx.utils.images import images_to_uint8_grid, uint8_nhwc_truncated


class Weights(enum.Enum):
    """Which weights of a ddx run to sample from."""

    EMA = "ema"
    MODEL = "model"


@dataclasses.dataclass(frozen=True)
class LoadedWeights:
    """state_dict: the UNet's; run_flags: the resolved flags of the ddx run (None for an official file);
    source: a description such as 'ckpt_000003000.pt, EMA 0.999'."""

    state_dict: dict[str, torch.Tensor]
    run_flags: dict[str, Any] | None
    source: str


def _run_checkpoint(path: Path) -> Path | None:
    """The ddx checkpoint a path names: a run directory (its latest), a checkpoints/ dir, or ckpt_*.pt."""
    if path.is_dir():
        for directory in (path / "checkpoints", path):
            latest = CheckpointManager(directory, keep_last=1, create=False).latest()
            if latest is not None:
                return latest
        raise CheckpointError(f"no ddx checkpoint (checkpoints/ckpt_<step>.pt) under {path}")
    return path if path.name.startswith("ckpt_") else None


def _run_flags(checkpoint: Path) -> dict[str, Any] | None:
    for config in (checkpoint.parent.parent / "config.json", checkpoint.parent / "config.json"):
        if config.is_file():
            return read_run_config(config).get("flags")
    return None


def load_iddpm_weights(path: str | os.PathLike, weights: Weights = Weights.EMA, ema_rate: float | None = None
                       ) -> LoadedWeights:
    """The UNet weights at ``path``: a ddx run directory or ``ckpt_<step>.pt``, or an official state_dict file.

    weights / ema_rate choose among a ddx run's trained weights and its EMAs (default: the first rate).
    An official file is one state_dict whatever they say. Raises CheckpointError / ValueError with the reason.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file or run directory not found: {path}")
    checkpoint = _run_checkpoint(path)
    if checkpoint is None:
        return LoadedWeights(load_official_state_dict(path), None, f"{path.name} (state_dict)")
    payload = load_checkpoint(checkpoint)
    if not isinstance(payload, dict) or "trainer" not in payload or "model" not in payload["trainer"]:
        raise CheckpointError(f"{checkpoint} is not a ddx IDDPM run checkpoint")
    trainer = payload["trainer"]
    flags = _run_flags(checkpoint)
    if weights is Weights.MODEL:
        return LoadedWeights(dict(trainer["model"]), flags, f"{checkpoint.name}, trained weights")
    emas = trainer["ema"]
    key = next(iter(emas)) if ema_rate is None else str(float(ema_rate))
    if key not in emas:
        raise ValueError(f"{checkpoint} holds EMA rates {', '.join(emas)}, not {ema_rate}")
    state = dict(trainer["model"])
    state.update(emas[key]["shadow"])
    return LoadedWeights(state, flags, f"{checkpoint.name}, EMA {key}")


def generate_samples(diffusion, model, num_samples: int, batch_size: int, image_size: int, *, channels: int = 3,
                     clip_denoised: bool = True, use_ddim: bool = False, eta: float = 0.0,
                     num_classes: int | None = None, device: torch.device | str = "cpu",
                     generator: torch.Generator | None = None, progress: bool = False
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """num_samples images (uint8 (N, H, W, C)) and, with num_classes, their labels int64 (N,).

    Batches of batch_size; the last batch is cut to num_samples as the official script does. generator:
    draws the initial noise, every step's noise and the labels (on ``device``). NVTX: sample/step_<i>.
    """
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size), ("image_size", image_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    images, labels = [], []
    done = 0
    while done < num_samples:
        kwargs = {}
        if num_classes is not None:
            classes = torch.randint(0, num_classes, (batch_size,), device=device, generator=generator)
            kwargs["y"] = classes
            labels.append(classes.cpu().numpy())
        shape = (batch_size, channels, image_size, image_size)
        common = dict(clip_denoised=clip_denoised, model_kwargs=kwargs, device=device, progress=progress,
                      generator=generator)
        if use_ddim:
            steps = diffusion.ddim_sample_loop_progressive(model, shape, eta=eta, **common)
        else:
            steps = diffusion.p_sample_loop_progressive(model, shape, **common)
        for i in reversed(range(diffusion.num_timesteps)):
            with nvtx_range(f"sample/step_{i}"):
                sample = next(steps)["sample"]
        images.append(uint8_nhwc_truncated(sample))
        done += batch_size
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
