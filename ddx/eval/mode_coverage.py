"""Mode coverage on stacked digits, as reported in the DDGAN paper (after PacGAN / VEEGAN).

Each channel of a sample is classified by ddx's digit classifier; the triple (R, G, B) is the mode
100 a + 10 b + c. Reported: the number of the 1,000 modes hit at least once, and KL(p || uniform) =
sum_k p_k log(p_k / (1/1000)) in nats, where p is the empirical histogram of the samples' modes (0 log 0 = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ddx.data.stacked_digits import NUM_STACKED_MODES, stacked_mode
from ddx.eval.digit_classifier import DigitClassifier


@dataclass(frozen=True)
class ModeCoverage:
    """modes_covered of num_modes, kl = KL(histogram || uniform) in nats, counts int64 (num_modes,)."""

    modes_covered: int
    kl: float
    counts: np.ndarray
    num_modes: int


def mode_coverage(modes: torch.Tensor | np.ndarray, num_modes: int = NUM_STACKED_MODES) -> ModeCoverage:
    """Coverage and KL of a 1-D array of mode indices in [0, num_modes)."""
    modes = torch.as_tensor(modes)
    if modes.ndim != 1 or modes.numel() == 0 or modes.is_floating_point():
        raise ValueError(f"modes must be a non-empty 1-D integer array, got shape {tuple(modes.shape)} dtype {modes.dtype}")
    if modes.min() < 0 or modes.max() >= num_modes:
        raise ValueError(f"mode indices must lie in [0, {num_modes}), got [{int(modes.min())}, {int(modes.max())}]")
    counts = torch.bincount(modes.to(torch.int64), minlength=num_modes).numpy()
    p = counts[counts > 0] / counts.sum()
    kl = float(np.sum(p * (np.log(p) + math.log(num_modes))))
    return ModeCoverage(int((counts > 0).sum()), kl, counts, num_modes)


def classify_stacked(samples: torch.Tensor, classifier: DigitClassifier, batch_size: int = 1000) -> torch.Tensor:
    """samples float (N, 3, S, S) in [-1, 1] -> mode index int64 (N,), one classification per channel."""
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
        raise TypeError("samples must be a float tensor (N, 3, S, S) in [-1, 1]")
    s = classifier.image_size
    if samples.ndim != 4 or samples.shape[1:] != (3, s, s):
        raise ValueError(f"samples must have shape (N, 3, {s}, {s}) for this classifier, got {tuple(samples.shape)}")
    n = samples.shape[0]
    digits = classifier.predict(samples.reshape(n * 3, 1, s, s), batch_size)
    return stacked_mode(digits.reshape(n, 3))


def stacked_mode_coverage(samples: torch.Tensor, classifier: DigitClassifier) -> ModeCoverage:
    """Modes covered out of 1,000 and KL(histogram || uniform) of generated stacked digits (N, 3, S, S)."""
    return mode_coverage(classify_stacked(samples, classifier))
