"""Evaluation: FID (pytorch-fid's Inception, local weights only), stacked-digits mode coverage with ddx's own
digit classifier, 2-D mixture metrics, and bits/dim aggregation."""

from ddx.eval.bpd import BitsPerDimMeter, mean_bits_per_dim
from ddx.eval.digit_classifier import (
    DigitClassifier,
    default_classifier_path,
    get_digit_classifier,
    load_digit_classifier,
    train_digit_classifier,
)
from ddx.eval.fid import FIDEvaluator, FIDStatistics, frechet_distance
from ddx.eval.inception import (
    InceptionWeightsNotFoundError,
    default_inception_weights_path,
    load_inception,
    random_inception,
)
from ddx.eval.mode_coverage import ModeCoverage, classify_stacked, mode_coverage, stacked_mode_coverage
from ddx.eval.toy2d_metrics import MixtureMetrics, mixture_metrics

__all__ = [
    "BitsPerDimMeter",
    "DigitClassifier",
    "FIDEvaluator",
    "FIDStatistics",
    "InceptionWeightsNotFoundError",
    "MixtureMetrics",
    "ModeCoverage",
    "classify_stacked",
    "default_classifier_path",
    "default_inception_weights_path",
    "frechet_distance",
    "get_digit_classifier",
    "load_digit_classifier",
    "load_inception",
    "mean_bits_per_dim",
    "mixture_metrics",
    "mode_coverage",
    "random_inception",
    "stacked_mode_coverage",
    "train_digit_classifier",
]
