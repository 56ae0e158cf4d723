"""Exact resume through ddx.train.run, and the official-layout files both ways."""

import math

import pytest
import torch

from ddx.checkpoints.iddpm_official import (
    ema_filename,
    load_official_state_dict,
    model_filename,
    opt_filename,
    parse_model_step,
)
from ddx.data import make_dataset
from ddx.train import EpochBatches, LoopConfig, RunDir, run, seed_everything
from ddx.checkpoints.io import CheckpointError
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer
from ddx.train.iddpm_weights import Weights, load_unet_weights
from tests.iddpm._tiny import tiny_diffusion, tiny_unet

RATES = (0.9, 0.5)


def _trainer(root, sampler="loss-second-moment"):
    seed_everything(0)
    config = IddpmTrainConfig(lr=1e-3, batch_size=6, microbatch=4, ema_rates=RATES, schedule_sampler=sampler)
    return IddpmTrainer(tiny_unet(), tiny_diffusion(), config, export_dir=root)


def _run(root, max_steps):
    trainer = _trainer(root)
    batches = EpochBatches(make_dataset("digits", image_size=8), 6, seed=0)
    run(trainer, batches, RunDir(root), LoopConfig(max_steps=max_steps, log_interval=1, save_interval=2,
                                                   progress=False))
    return trainer


def _flat(state, prefix=""):
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            out.update(_flat(value, f"{prefix}{key}/"))
        return out
    return {prefix: state}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    straight_dir, resumed_dir = tmp_path_factory.mktemp("straight"), tmp_path_factory.mktemp("resumed")
    straight = _run(straight_dir, 5)
    _run(resumed_dir, 2)
    resumed = _run(resumed_dir, 5)
    return straight, straight_dir, resumed, resumed_dir


def test_resume_continues_bit_exactly(runs):
    straight, straight_dir, resumed, resumed_dir = runs
    a, b = _flat(straight.state_dict()), _flat(resumed.state_dict())
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    assert straight.schedule_sampler._loss_counts.sum() == 5 * 6
    metrics_a = [{k: v for k, v in r.items() if k != "time"} for r in RunDir(straight_dir).read_metrics()]
    metrics_b = [{k: v for k, v in r.items() if k != "time"} for r in RunDir(resumed_dir).read_metrics()]
    assert [r["step"] for r in metrics_a] == [1, 2, 3, 4, 5]
    assert metrics_a == metrics_b


def test_metrics_hold_quartile_terms(runs):
    records = RunDir(runs[1]).read_metrics()
    keys = set().union(*records)
    assert {"loss", "mse", "vb", "grad_norm", "lr", "samples"} <= keys
    assert any(k.startswith("loss_q") for k in keys) and any(k.startswith("vb_q") for k in keys)
    assert all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))
    assert records[-1]["samples"] == 5 * 6


def test_official_files_are_written_at_each_save(runs):
    straight, root = runs[0], runs[1]
    for step in (2, 4, 5):
        assert (root / model_filename(step)).is_file() and (root / opt_filename(step)).is_file()
        for rate in RATES:
            assert (root / ema_filename(rate, step)).is_file()
    assert ema_filename(0.9999, 200000) == "ema_0.9999_200000.pt"
    model = load_official_state_dict(root / model_filename(5))
    assert model.keys() == straight.module.state_dict().keys()
    for name, value in straight.module.state_dict().items():
        assert torch.equal(model[name], value)
    ema = load_official_state_dict(root / ema_filename(0.5, 5))
    for name, value in straight.emas[0.5].shadow.items():
        assert torch.equal(ema[name], value)


def test_official_files_load_back_into_a_trainer(runs, tmp_path):
    straight, root = runs[0], runs[1]
    fresh = _trainer(None)
    assert fresh.load_official(root / model_filename(5)) == 5
    assert fresh.step_offset == 5
    for name, value in straight.module.state_dict().items():
        assert torch.equal(fresh.module.state_dict()[name], value)
    for rate in RATES:
        for name, value in straight.emas[rate].shadow.items():
            assert torch.equal(fresh.emas[rate].shadow[name], value)
    a, b = _flat(straight.opt.state_dict()), _flat(fresh.opt.state_dict())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_sampling_weights_from_runs_and_official_files(runs):
    straight, root = runs[0], runs[1]
    ema = load_unet_weights(root, Weights.EMA, 0.5)
    assert "EMA 0.5" in ema.source
    for name, value in straight.emas[0.5].shadow.items():
        assert torch.equal(ema.state_dict[name], value)
    trained = load_unet_weights(root / "checkpoints" / "ckpt_000000005.pt", Weights.MODEL)
    official = load_unet_weights(root / model_filename(5))
    assert official.source.endswith("(state_dict)")
    for name, value in straight.module.state_dict().items():
        assert torch.equal(trained.state_dict[name], value) and torch.equal(official.state_dict[name], value)
    with pytest.raises(ValueError, match="EMA rates"):
        load_unet_weights(root, Weights.EMA, 0.7)
    assert load_unet_weights(root, "model").source.endswith("trained weights")


def test_bad_official_files_are_reported(tmp_path):
    torch.save({"not": "a state dict"}, tmp_path / "model000001.pt")
    with pytest.raises(CheckpointError, match="not a model state_dict"):
        load_official_state_dict(tmp_path / "model000001.pt")
    (tmp_path / "model000002.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_official_state_dict(tmp_path / "model000002.pt")
    assert parse_model_step("a/model012345.pt") == 12345 and parse_model_step("ema_0.9_000001.pt") is None
