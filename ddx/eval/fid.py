"""FID with pytorch-fid's InceptionV3, on tensors generated on the fly (no image files).

Images in [-1, 1] are mapped to [0, 1] and, by default, quantised to the 8-bit grid the way
torchvision.utils.save_image writes them (floor(255 x + 0.5)), so the figure equals the one from saved PNGs
without the round trip. Activations: the chosen Inception tap, average-pooled to (N, dims) as pytorch-fid does.
Reference statistics of a dataset are cached as .npz together with a key naming data, count, network and
preprocessing; a cache written under another key is refused, never reused silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_fid.inception import InceptionV3
from scipy import linalg
from torch.utils.data import DataLoader, Dataset, Subset

from ddx.eval.inception import load_inception
from ddx.utils.atomic import atomic_write
from ddx.utils.checks import check_positive_int
from ddx.utils.progress import Progress

Sampler = Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class FIDStatistics:
    """Gaussian fit of Inception activations: mu float64 (D,), sigma float64 (D, D), from num_samples images."""

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int

    @classmethod
    def from_activations(cls, activations: np.ndarray) -> "FIDStatistics":
        """activations (N, D), N >= 2."""
        if activations.ndim != 2 or activations.shape[0] < 2:
            raise ValueError(f"FID statistics need activations of shape (N >= 2, D), got {activations.shape}")
        acts = activations.astype(np.float64)
        return cls(acts.mean(axis=0), np.cov(acts, rowvar=False), acts.shape[0])

    def save(self, path: str | os.PathLike, key: str) -> None:
        """Write mu, sigma, num_samples and `key` to an .npz file, atomically (folders created)."""
        arrays = {"mu": self.mu, "sigma": self.sigma, "num_samples": self.num_samples, "key": np.array(key)}
        atomic_write(path, lambda f: np.savez(f, **arrays), make_parents=True)

    @classmethod
    def load(cls, path: str | os.PathLike, key: str) -> "FIDStatistics":
        """Read statistics written by save; ValueError if they were written under another key."""
        with np.load(os.fspath(path), allow_pickle=False) as f:
            if "key" not in f or "mu" not in f or "sigma" not in f:
                raise ValueError(f"{os.fspath(path)!r} is not a ddx FID statistics file (needs mu, sigma, key)")
            stored = str(f["key"])
            if stored != key:
                raise ValueError(
                    f"FID statistics cache {os.fspath(path)!r} was computed for\n  {stored}\nnot for\n  {key}\n"
                    f"delete it or choose another cache path"
                )
            return cls(f["mu"], f["sigma"], int(f["num_samples"]))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)); mu (D,), sigma (D, D).

    pytorch-fid's calculate_frechet_distance, including its eps * I fallback for a singular product; written
    here because that function passes sqrtm's `disp` argument, which SciPy deprecates and removes in 1.18.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"frechet_distance needs mu1, mu2 of shape (D,) and sigma1, sigma2 of shape (D, D); got "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: sqrt of sigma1 @ sigma2 has an imaginary part {np.abs(covmean.imag).max()}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def check_images(images: torch.Tensor, expected_n: int | None = None) -> torch.Tensor:
    """Validate a batch for FID: float (N, 3, H, W), finite, N == expected_n when given."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"FID needs a float tensor (N, 3, H, W) in [-1, 1], got {type(images).__name__}"
                        f"{'' if not isinstance(images, torch.Tensor) else ' of dtype ' + str(images.dtype)}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"FID needs images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if expected_n is not None and images.shape[0] != expected_n:
        raise ValueError(f"the sampler was asked for {expected_n} images and returned {images.shape[0]}")
    if not torch.isfinite(images).all():
        raise ValueError("FID images contain NaN or inf")
    return images


class FIDEvaluator:
    """Computes Inception activations, statistics and FID for images in [-1, 1].

    inception: pytorch-fid's InceptionV3 (see load_inception / random_inception). inception_id names the
    weights in cache keys. batch_size: images per Inception forward. quantize: round to the 8-bit grid first.
    """

    def __init__(
        self,
        inception: InceptionV3,
        inception_id: str = "custom",
        device: torch.device | str | None = None,
        batch_size: int = 50,
        quantize: bool = True,
        verbose: bool = True,
    ):
        if not isinstance(inception, InceptionV3):
            raise TypeError(f"inception must be a pytorch_fid InceptionV3, got {type(inception).__name__}")
        self.device = torch.device(device) if device is not None else next(inception.parameters()).device
        self.inception = inception.to(self.device).eval()
        self.inception_id = inception_id
        self.batch_size = check_positive_int(batch_size, "FIDEvaluator batch_size")
        self.quantize = quantize
        self.verbose = verbose
        self.dims = {v: k for k, v in InceptionV3.BLOCK_INDEX_BY_DIM.items()}[inception.output_blocks[-1]]

    @classmethod
    def from_weights(cls, weights_path: str | os.PathLike | None = None, dims: int = 2048, **kwargs) -> "FIDEvaluator":
        """With the real FID weights from a local file (default: the torch hub cache); never downloads."""
        inception = load_inception(weights_path, dims)
        return cls(inception, inception_id=f"pt_inception-2015-12-05/dims={dims}", **kwargs)

    def cache_key(self, data_key: str, num_samples: int) -> str:
        return f"{data_key}|num_samples={num_samples}|inception={self.inception_id}|quantize={self.quantize}"

    @torch.no_grad()
    def activations(self, images: torch.Tensor) -> np.ndarray:
        """images float (N, 3, H, W) in [-1, 1] -> activations float32 (N, dims), in slices of batch_size."""
        images = check_images(images)
        out = []
        for chunk in images.split(self.batch_size):
            x = ((chunk.to(self.device, torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0)
            if self.quantize:
                x = torch.floor(x * 255.0 + 0.5) / 255.0
            feats = self.inception(x)[0]
            if feats.shape[2:] != (1, 1):
                feats = F.adaptive_avg_pool2d(feats, output_size=(1, 1))
            out.append(feats.flatten(1).cpu().numpy())
        return np.concatenate(out)

    def _statistics(self, batches: Iterable[torch.Tensor], num_samples: int, desc: str) -> FIDStatistics:
        progress = Progress(num_samples, desc, unit="img", enabled=self.verbose)
        acts = []
        for batch in batches:
            acts.append(self.activations(batch))
            progress.update(batch.shape[0])
        progress.close()
        return FIDStatistics.from_activations(np.concatenate(acts))

    def statistics_from_sampler(self, sampler: Sampler, num_samples: int) -> FIDStatistics:
        """Statistics of num_samples images from sampler(n) -> float (n, 3, H, W) in [-1, 1], n <= batch_size."""
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 for a covariance, got {num_samples}")
        sizes = [min(self.batch_size, num_samples - i) for i in range(0, num_samples, self.batch_size)]
        batches = (check_images(sampler(n), n) for n in sizes)
        return self._statistics(batches, num_samples, "FID activations (samples)")

    def statistics_from_dataset(self, dataset: Dataset, num_samples: int | None = None) -> FIDStatistics:
        """Statistics of the first num_samples items (default: all) of a dataset of (image, label) items."""
        n = len(dataset) if num_samples is None else num_samples
        if not 2 <= n <= len(dataset):
            raise ValueError(f"num_samples must be in [2, {len(dataset)}] for this dataset, got {n}")
        subset = dataset if n == len(dataset) else Subset(dataset, range(n))
        batches = (item[0] for item in DataLoader(subset, batch_size=self.batch_size, shuffle=False))
        return self._statistics(batches, n, "FID activations (reference)")

    def reference_statistics(
        self, dataset: Dataset, cache_path: str | os.PathLike, data_key: str, num_samples: int | None = None
    ) -> FIDStatistics:
        """Dataset statistics, read from cache_path when it was written for the same key, else computed and saved.

        data_key names the data (e.g. DataConfig.key()); the full key adds count, Inception and quantisation.
        """
        n = len(dataset) if num_samples is None else num_samples
        key = self.cache_key(data_key, n)
        if os.path.exists(cache_path):
            return FIDStatistics.load(cache_path, key)
        stats = self.statistics_from_dataset(dataset, n)
        stats.save(cache_path, key)
        return stats

    def fid(self, sampler: Sampler, num_samples: int, reference: FIDStatistics) -> float:
        """FID between num_samples images from sampler and the reference statistics."""
        stats = self.statistics_from_sampler(sampler, num_samples)
        return frechet_distance(stats.mu, stats.sigma, reference.mu, reference.sigma)
