"""IddpmTrainer: microbatch equivalence, EMA rates, lr annealing, mixed precision, quartile log."""

import math

import pytest
import torch

from ddx.execution import ExecutionOptions, Precision
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer
from ddx.train.iddpm_logging import QuartileLossLog
from tests.iddpm._tiny import digits_batch, seed_all, tiny_diffusion, tiny_trainer, tiny_unet
from tests.nvtx_recording import record_ranges


def _grads(trainer, batch):
    seed_all(3)
    trainer.opt.zero_grad(set_to_none=True)
    means = trainer.forward_backward(*trainer._batch(batch))
    return [p.grad.clone() for p in trainer.params], means


@pytest.mark.parametrize("microbatch", [1, 2, 4], ids=lambda m: f"micro{m}")
@pytest.mark.parametrize("sampler", ["uniform", "loss-second-moment"])
def test_microbatches_give_the_full_batch_gradient(microbatch, sampler):
    batch = digits_batch(6)
    full_grads, full_means = _grads(tiny_trainer(schedule_sampler=sampler), batch)
    micro_grads, micro_means = _grads(tiny_trainer(schedule_sampler=sampler, microbatch=microbatch), batch)
    assert any(g.abs().max() > 0 for g in full_grads)
    for full, micro in zip(full_grads, micro_grads):
        torch.testing.assert_close(micro, full, rtol=1e-4, atol=1e-6)
    for key in full_means:
        torch.testing.assert_close(micro_means[key], full_means[key], rtol=1e-5, atol=1e-7)


def test_every_ema_rate_starts_from_the_initial_weights_and_averages():
    trainer = tiny_trainer(ema_rates=(0.9, 0.5))
    name, param = next(iter(trainer.module.named_parameters()))
    expected = {rate: param.detach().clone() for rate in (0.9, 0.5)}
    for step in range(2):
        seed_all(step)
        trainer.train_step(digits_batch(6, seed=step), step)
        for rate in expected:
            expected[rate] = rate * expected[rate] + (1 - rate) * param.detach()
    for rate, value in expected.items():
        torch.testing.assert_close(trainer.emas[rate].shadow[name], value, rtol=1e-6, atol=1e-7)
    assert not torch.equal(trainer.emas[0.9].shadow[name], trainer.emas[0.5].shadow[name])


def test_lr_anneals_linearly_to_zero():
    trainer = tiny_trainer(lr=1e-3, lr_anneal_steps=4)
    lrs = []
    for step in range(3):
        seed_all(step)
        trainer.train_step(digits_batch(6), step)
        lrs.append(trainer.opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3, 7.5e-4, 5e-4])


@pytest.mark.parametrize("precision", [Precision.BF16, Precision.FP16], ids=lambda p: p.value)
def test_autocast_trains_on_the_cpu(precision):
    trainer = tiny_trainer(execution=ExecutionOptions(fused=False, precision=precision))
    before = [p.detach().clone() for p in trainer.params]
    # fp16 starts at the official loss scale 2**20: steps whose gradients overflow are skipped (weights
    # and EMA untouched) while the scale halves, until one fits.
    for step in range(12):
        seed_all(step)
        means = trainer.train_step(digits_batch(6), step)
        assert all(math.isfinite(v.item()) for v in means.values())
        changed = any(not torch.equal(b, p) for b, p in zip(before, trainer.params))
        ema_changed = any(not torch.equal(b, s) for b, s in zip(before, trainer.emas[0.9999].shadow.values()))
        assert changed == ema_changed
        if changed:
            break
    assert changed
    assert all(p.dtype == torch.float32 for p in trainer.params)
    metrics = trainer.extra_metrics()
    assert math.isfinite(metrics["grad_norm"]) and metrics["grad_norm"] > 0
    assert ("lg_loss_scale" in metrics) == (precision is Precision.FP16)


def test_execution_routes_the_model_and_the_diffusion():
    for fused in (True, False):
        model, diffusion = tiny_unet(), tiny_diffusion()
        trainer = IddpmTrainer(model, diffusion, IddpmTrainConfig(), execution=ExecutionOptions(fused=fused))
        assert diffusion.fused is fused and all(m.fused is fused for m in model.modules() if hasattr(m, "fused"))
        assert trainer.execution.fused is fused
    model, diffusion = tiny_unet(), tiny_diffusion()  # eager, as tests/iddpm/_tiny.py sets them
    IddpmTrainer(model, diffusion, IddpmTrainConfig())
    assert diffusion.fused is False, "without execution the routing stays as the caller set it"


def test_execution_options_the_trainer_lacks_are_refused():
    with pytest.raises(ValueError, match="does not compile"):
        IddpmTrainer(tiny_unet(), tiny_diffusion(), IddpmTrainConfig(), execution=ExecutionOptions(compile="default"))


def test_quartile_log_means_per_quartile_and_skips_empty_quartiles():
    log = QuartileLossLog(num_timesteps=8, keys=("loss", "mse"))
    # quartiles of t = 0,1 -> q0; 2,3 -> q1; 6,7 -> q3; none in q2
    log.add(torch.tensor([0, 1, 3]), {"loss": torch.tensor([1.0, 3.0, 5.0]), "mse": torch.tensor([0.0, 1.0, 2.0])})
    log.add(torch.tensor([7]), {"loss": torch.tensor([8.0]), "mse": torch.tensor([4.0])})
    log.add_grad_norm(torch.tensor(2.0))
    log.add_grad_norm(torch.tensor(4.0))
    out = log.reduce()
    assert out == pytest.approx({"loss": 17 / 4, "loss_q0": 2.0, "loss_q1": 5.0, "loss_q3": 8.0,
                                 "mse": 7 / 4, "mse_q0": 0.5, "mse_q1": 2.0, "mse_q3": 4.0, "grad_norm": 3.0})
    assert "loss_q2" not in out
    assert log.reduce() == {}  # reset after each log line


@pytest.mark.parametrize("kwargs, match", [
    (dict(microbatch=0), "microbatch"),
    (dict(ema_rates=(0.9, 0.9)), "distinct"),
    (dict(ema_rates=(1.0,)), "ema_rates"),
    (dict(lr=0.0), "lr"),
    (dict(schedule_sampler="nope"), "schedule_sampler"),
], ids=["microbatch0", "ema-dup", "ema-1", "lr0", "sampler"])
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IddpmTrainConfig(**kwargs)


def test_nvtx_ranges_name_the_training_phases(tmp_path):
    from ddx import profiling

    trainer = tiny_trainer()
    trainer.export_dir = tmp_path
    profiling.enable(True)
    try:
        with record_ranges() as names:
            seed_all(0)
            trainer.train_step(digits_batch(6), 0)
            trainer.on_save(1)
    finally:
        profiling.enable(False)
    assert names == ["train/data", "train/step", "train/ema", "train/checkpoint"]
    assert (tmp_path / "model000001.pt").is_file()


def test_a_trainer_state_built_the_old_way_loads():
    # The layout checkpoints had before issue #12, built by hand as train/iddpm.py did: the EMA states and the
    # loss-second-moment sampler's arrays (its private _loss_history / _loss_counts) as tensors.
    trainer = tiny_trainer(schedule_sampler="loss-second-moment", ema_rates=(0.9,))
    for step in range(2):
        seed_all(step)
        trainer.train_step(digits_batch(6), step)
    sampler = trainer.schedule_sampler
    ema = trainer.emas[0.9]
    old = {**trainer.state_dict(),
           "ema": {"0.9": {"decay": 0.9, "start": "initial", "initialized": True, "num_updates": ema.num_updates,
                           "shadow": {k: v.clone() for k, v in ema.shadow.items()}}},
           "schedule_sampler": {"loss_history": torch.from_numpy(sampler._loss_history.copy()),
                                "loss_counts": torch.from_numpy(sampler._loss_counts.copy())}}
    fresh = tiny_trainer(seed=1, schedule_sampler="loss-second-moment", ema_rates=(0.9,),
                         execution=ExecutionOptions(fused=False))
    fresh.load_state_dict(old)
    assert all(torch.equal(a, b) for a, b in zip(fresh.schedule_sampler.state_dict().values(),
                                                 sampler.state_dict().values()))
    assert all(torch.equal(fresh.emas[0.9].shadow[k], v) for k, v in ema.shadow.items())
    uniform = tiny_trainer(ema_rates=(0.9,))
    with pytest.raises(ValueError, match="UniformSampler keeps none"):
        uniform.load_state_dict(old)
