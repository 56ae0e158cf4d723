"""A shortened learning run (the full one is the digits preset, run by hand): on the 8x8 digits the
loss and its eps-MSE term fall within 60 steps."""

from ddx.data import make_dataset
from ddx.train import EpochBatches, LoopConfig, RunDir, run, seed_everything
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer
from tests.iddpm._tiny import tiny_diffusion, tiny_unet


def test_loss_falls_on_digits(tmp_path):
    seed_everything(0)
    trainer = IddpmTrainer(tiny_unet(), tiny_diffusion(steps=100),
                           IddpmTrainConfig(lr=2e-3, batch_size=16, ema_rates=(0.99,)))
    batches = EpochBatches(make_dataset("digits", image_size=8), 16, seed=0)
    run(trainer, batches, RunDir(tmp_path), LoopConfig(max_steps=60, log_interval=20, save_interval=60,
                                                       progress=False))
    records = RunDir(tmp_path).read_metrics()
    assert [r["step"] for r in records] == [20, 40, 60]
    first, last = records[0], records[-1]
    assert last["mse"] < 0.6 * first["mse"], records
    assert last["loss"] < 0.7 * first["loss"], records
