"""FID: closed-form Frechet distance, the activation pipeline on a random Inception, caching, weight loading."""

import os
import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from ddx.data import DataConfig, build_dataset
from ddx.eval import (
    FIDEvaluator,
    FIDStatistics,
    InceptionWeightsNotFoundError,
    frechet_distance,
    load_inception,
)
from ddx.eval.inception import INCEPTION_WEIGHTS_FILENAME, _fid_backbone, random_inception


@pytest.mark.parametrize("dim", [1, 5, 64], ids=lambda d: f"D{d}")
def test_frechet_distance_closed_form_for_diagonal_covariances(dim):
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    s1, s2 = rng.uniform(0.1, 3.0, dim), rng.uniform(0.1, 3.0, dim)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_frechet_distance_matches_pytorch_fid_on_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 12)), rng.normal(size=(40, 12)) * 1.5 + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pytorch-fid passes SciPy's deprecated `disp`
        reference = calculate_frechet_distance(a.mean(0), s1, b.mean(0), s2)
    assert frechet_distance(a.mean(0), s1, b.mean(0), s2) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(a.mean(0), s1, a.mean(0), s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def random_evaluator(dims=2048, seed=0, **kwargs):
    """An evaluator over a randomly initialised Inception: runs the pipeline, measures nothing meaningful."""
    return FIDEvaluator(random_inception(dims, seed), inception_id=f"random(seed={seed})/dims={dims}", **kwargs)


@pytest.fixture(scope="module")
def evaluator():
    # dims=64 (pytorch-fid's first tap) keeps the random-Inception pipeline fast on a CPU.
    return random_evaluator(dims=64, seed=0, batch_size=3, verbose=False)


def _images(n, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_activations_shape_and_batch_invariance(evaluator):
    x = _images(7)
    acts = evaluator.activations(x)
    assert acts.shape == (7, 64) and acts.dtype == np.float32 and np.isfinite(acts).all()
    np.testing.assert_allclose(evaluator.activations(x[4:]), acts[4:], rtol=1e-5, atol=1e-6)


def test_quantisation_to_the_8bit_grid(evaluator):
    x = torch.round((_images(2) + 1) * 127.5) / 127.5 - 1
    nudged = x + 0.3 / 127.5  # less than half a step of the 8-bit grid
    np.testing.assert_array_equal(evaluator.activations(x), evaluator.activations(nudged))


def test_sampler_and_dataset_statistics_agree_end_to_end(evaluator, tmp_path):
    cfg = DataConfig("digits", split="heldout")
    dataset = build_dataset(cfg)
    images = torch.stack([dataset[i][0] for i in range(8)])
    calls = []

    def sampler(n):
        start = sum(calls)
        calls.append(n)
        return images[start:start + n]

    from_sampler = evaluator.statistics_from_sampler(sampler, 8)
    assert calls == [3, 3, 2]
    from_dataset = evaluator.statistics_from_dataset(dataset, num_samples=8)
    np.testing.assert_allclose(from_sampler.mu, from_dataset.mu, rtol=1e-6)
    np.testing.assert_allclose(from_sampler.sigma, from_dataset.sigma, rtol=1e-5, atol=1e-12)
    assert from_sampler.mu.shape == (64,) and from_sampler.sigma.shape == (64, 64) and from_sampler.num_samples == 8

    reference = evaluator.reference_statistics(dataset, tmp_path / "ref.npz", cfg.key(), num_samples=8)
    noise_fid = evaluator.fid(lambda n: _images(n, seed=n), 8, reference)
    assert np.isfinite(noise_fid) and noise_fid > 0
    calls.clear()
    assert abs(evaluator.fid(sampler, 8, reference)) < 1e-6 * noise_fid


def test_reference_statistics_cache_is_keyed(evaluator, tmp_path, monkeypatch):
    cfg = DataConfig("digits", split="heldout")
    dataset = build_dataset(cfg)
    path = tmp_path / "stats" / "digits_heldout.npz"
    first = evaluator.reference_statistics(dataset, path, cfg.key(), num_samples=4)
    assert path.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("statistics were recomputed instead of read from the cache")

    monkeypatch.setattr(evaluator, "statistics_from_dataset", fail)
    again = evaluator.reference_statistics(dataset, path, cfg.key(), num_samples=4)
    np.testing.assert_array_equal(first.mu, again.mu)
    np.testing.assert_array_equal(first.sigma, again.sigma)
    for other_key, n in ((DataConfig("digits", image_size=32, split="heldout").key(), 4), (cfg.key(), 5)):
        with pytest.raises(ValueError, match="was computed for"):
            evaluator.reference_statistics(dataset, path, other_key, num_samples=n)


def test_statistics_file_round_trip(tmp_path):
    stats = FIDStatistics.from_activations(np.random.default_rng(0).normal(size=(10, 4)))
    stats.save(tmp_path / "stats" / "s.npz", "k")  # folders created
    assert [p.name for p in (tmp_path / "stats").iterdir()] == ["s.npz"]  # written in place of a temporary
    loaded = FIDStatistics.load(tmp_path / "stats" / "s.npz", "k")
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.num_samples == 10


@pytest.mark.parametrize(
    "bad,error,message",
    [
        (lambda n: _images(n)[:, :1], ValueError, "shape \\(N, 3, H, W\\)"),
        (lambda n: _images(n + 1), ValueError, "asked for"),
        (lambda n: (_images(n) * 127).to(torch.uint8), TypeError, "float tensor"),
        (lambda n: _images(n) * float("nan"), ValueError, "NaN"),
    ],
    ids=["one-channel", "wrong-count", "uint8", "nan"],
)
def test_bad_sampler_output(evaluator, bad, error, message):
    with pytest.raises(error, match=message):
        evaluator.statistics_from_sampler(bad, 4)


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-5, ValueError), (2.5, TypeError), (None, TypeError)],
                         ids=["zero", "negative", "float", "none"])
def test_bad_batch_size(evaluator, batch_size, error):
    with pytest.raises(error, match="FIDEvaluator batch_size must be a positive int"):
        FIDEvaluator(evaluator.inception, batch_size=batch_size)


def test_too_few_samples(evaluator):
    with pytest.raises(ValueError, match=">= 2"):
        evaluator.statistics_from_sampler(_images, 1)


@pytest.fixture
def hub_dir(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


def test_missing_weights_error_says_which_file_where(hub_dir, tmp_path):
    expected = os.path.join(str(hub_dir), "checkpoints", INCEPTION_WEIGHTS_FILENAME)
    with pytest.raises(InceptionWeightsNotFoundError, match=INCEPTION_WEIGHTS_FILENAME) as info:
        FIDEvaluator.from_weights()
    assert expected in str(info.value) and "never downloads" in str(info.value)
    with pytest.raises(InceptionWeightsNotFoundError, match="given weights_path"):
        load_inception(tmp_path / "nowhere.pth")


def test_weights_load_from_hub_cache_and_from_path(hub_dir, tmp_path):
    torch.manual_seed(3)
    state = _fid_backbone().state_dict()
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(state, hub_dir / "checkpoints" / INCEPTION_WEIGHTS_FILENAME)
    torch.save(state, tmp_path / "elsewhere.pth")
    x = _images(2)
    from_hub = FIDEvaluator.from_weights(dims=64, verbose=False).activations(x)
    from_path = FIDEvaluator.from_weights(tmp_path / "elsewhere.pth", dims=64, verbose=False).activations(x)
    np.testing.assert_array_equal(from_hub, from_path)
    other = random_evaluator(dims=64, seed=1, verbose=False).activations(x)
    assert not np.allclose(from_hub, other)


def test_bad_dims():
    with pytest.raises(ValueError, match="dims must be one of"):
        random_evaluator(dims=100)


def test_default_2048_features_on_a_tiny_batch():
    acts = random_evaluator(seed=0, verbose=False).activations(_images(2, size=8))
    assert acts.shape == (2, 2048) and np.isfinite(acts).all()
