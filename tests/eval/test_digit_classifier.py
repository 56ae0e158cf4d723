"""ddx's digit classifier: >= 95% held-out accuracy, save/load, cache, and stacked-digit mode counting with it."""

import os

import pytest
import torch

from ddx.data import StackedDigitsDataset
from ddx.eval import get_digit_classifier, load_digit_classifier, stacked_mode_coverage, train_digit_classifier
from ddx.eval.digit_classifier import heldout_accuracy, save_digit_classifier
from ddx.eval.mode_coverage import classify_stacked
from ddx.train import CheckpointError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier") / "digits16.pt"
    model, accuracy = train_digit_classifier(path, verbose=False)
    return path, model, accuracy


def test_heldout_accuracy_at_least_95_percent(trained):
    path, model, accuracy = trained
    assert accuracy >= 0.95
    assert heldout_accuracy(model) == pytest.approx(accuracy)


def test_load_gives_the_same_model_and_accuracy(trained):
    path, model, accuracy = trained
    loaded, stored = load_digit_classifier(path)
    assert stored == pytest.approx(accuracy)
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    assert torch.equal(loaded(x), model(x))


def test_cache_is_used_without_retraining(trained, monkeypatch):
    path, model, _ = trained

    def fail(*args, **kwargs):
        raise AssertionError("retrained although a cached classifier exists")

    monkeypatch.setattr("ddx.eval.digit_classifier.train_digit_classifier", fail)
    cached = get_digit_classifier(path, verbose=False)
    assert torch.equal(cached.head[-1].weight, model.head[-1].weight)
    with pytest.raises(ValueError, match="16px images, not 32px"):
        get_digit_classifier(path, image_size=32, verbose=False)


def test_stacked_digits_modes_recovered(trained):
    _, model, _ = trained
    ds = StackedDigitsDataset(length=400, seed=5)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    predicted = classify_stacked(images, model)
    assert (predicted == ds.modes).double().mean() >= 0.85  # three training digits right at once
    result = stacked_mode_coverage(images, model)
    assert result.modes_covered == len(torch.unique(predicted)) and result.counts.sum() == 400


def test_bad_inputs(trained, tmp_path):
    _, model, _ = trained
    with pytest.raises(ValueError, match="\\(N, 3, 16, 16\\)"):
        stacked_mode_coverage(torch.zeros(2, 3, 8, 8), model)
    with pytest.raises(FileNotFoundError, match="train_digit_classifier"):
        load_digit_classifier(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a ddx digit classifier"):
        load_digit_classifier(tmp_path / "other.pt")


def test_corrupt_cached_classifier_is_reported(trained, tmp_path):
    path, _, _ = trained
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"checkpoint {truncated} is corrupt or truncated.*trains a new one"):
        load_digit_classifier(truncated)
    with pytest.raises(CheckpointError, match="truncated.pt is corrupt"):
        get_digit_classifier(truncated, verbose=False)


def test_saved_file_is_whole_and_readable_by_others(trained, tmp_path):
    _, model, accuracy = trained
    path = tmp_path / "cache" / "ddx" / "c.pt"  # folders created
    previous = os.umask(0o022)
    try:
        save_digit_classifier(model, accuracy, path)
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary left
    assert load_digit_classifier(path)[1] == pytest.approx(accuracy)
