"""Exact resume of a DDGAN run through the shared loop: interrupted mid-epoch and continued, the run ends
bit-identical to an uninterrupted one, epoch outputs (sample grids, netG files, LR steps) included."""

import argparse

import torch

from ddx.data.toy2d import Toy2DDataset, mixture_spec
from ddx.execution import ExecutionOptions
from ddx.train import EpochBatches, LoopConfig, Resume, RunDir, run, seed_everything
from ddx.train.ddgan import DDGANTrainConfig, DDGANTrainer
from ddx.train.ddgan_outputs import EpochOutputs
from ddgan_helpers import DIFFUSION, toy_models

FULL = dict(max_epochs=3, log_interval=1, save_interval=4, keep_last=5, progress=False)


def _run(root, resume=Resume.AUTO, **loop):
    seed_everything(5)
    G, D = toy_models(seed=11)
    config = DDGANTrainConfig(lr_g=5e-3, lr_d=5e-3, lazy_reg=2, use_ema=True, ema_decay=0.9, num_epoch=3)
    run_dir = RunDir(root)
    outputs = EpochOutputs(run_dir, argparse.Namespace(dataset="toy25"), save_content=True, save_content_every=1,
                           save_ckpt_every=1, means=mixture_spec("grid25").means)
    trainer = DDGANTrainer(G, D, DIFFUSION, config, on_epoch=outputs, execution=ExecutionOptions(fused=False))
    batches = EpochBatches(Toy2DDataset(length=48, seed=3), 16, seed=4)
    run(trainer, batches, run_dir, LoopConfig(**{**FULL, **loop}), resume=resume)
    return trainer


def test_interrupted_run_resumes_bit_identically(tmp_path):
    straight = _run(tmp_path / "straight")
    _run(tmp_path / "resumed", max_steps=4)  # stops mid-epoch 1 (3 batches per epoch)
    resumed = _run(tmp_path / "resumed", resume=Resume.REQUIRE)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a["global_step"] == b["global_step"] == 9
    for key in ("netG", "netD"):
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, rtol=0, atol=0, msg=f"{key}.{name}")
    for name, value in a["ema"]["shadow"].items():
        torch.testing.assert_close(b["ema"]["shadow"][name], value, rtol=0, atol=0)
    assert a["schedulerG"]["last_epoch"] == b["schedulerG"]["last_epoch"] == 3
    for root in ("straight", "resumed"):
        files = {p.name for p in (tmp_path / root).iterdir()} | {p.name for p in (tmp_path / root / "samples").iterdir()}
        assert {"content.pth", "netG_0.pth", "netG_2.pth", "xpos_epoch_0.png", "sample_discrete_epoch_2.png"} <= files
    metrics = RunDir(tmp_path / "resumed").read_metrics()
    assert [m["step"] for m in metrics] == list(range(1, 10))
