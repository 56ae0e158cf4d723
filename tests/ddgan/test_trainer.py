"""DDGANTrainer step semantics against train_ddgan.py: the same updates, R1 on lazy_reg steps only, D frozen
during the G step, cosine LR per epoch; R1's double backward through the fused ops of Discriminator_small."""

import copy
import math

import pytest
import torch

from ddx.models.discriminator import Discriminator_small
from ddx.execution import ExecutionOptions
from ddx.ops import set_fused
from ddx.train.ddgan import DDGANTrainConfig, DDGANTrainer, r1_penalty
from ddx.train.ema import EMAStart
from tests.nvtx_recording import record_ranges
from tests.tolerances import assert_close
from ddgan_helpers import DIFFUSION, TOY, OfficialEMA, official_step, toy_models

REAL = torch.tensor([[2.0, -2.0], [0.0, 4.0], [-4.0, 2.0], [2.0, 2.0], [0.0, 0.0], [4.0, -4.0]])


def _trainer(lazy_reg=2, use_ema=True, **overrides):
    G, D = toy_models()
    config = DDGANTrainConfig(lr_g=1e-2, lr_d=2e-2, r1_gamma=0.5, lazy_reg=lazy_reg, use_ema=use_ema,
                              ema_decay=0.9, num_epoch=4, **overrides)
    return DDGANTrainer(G, D, DIFFUSION, config, execution=ExecutionOptions(fused=False))


@pytest.mark.parametrize("lazy_reg", [None, 1, 2, 3], ids=["every-step", "lazy1", "lazy2", "lazy3"])
def test_steps_match_the_official_loop(lazy_reg):
    trainer = _trainer(lazy_reg)
    G, D = toy_models()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-2, betas=(0.5, 0.9))
    opt_g = OfficialEMA(torch.optim.Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.9)), ema_decay=0.9)
    for step in range(4):
        torch.manual_seed(100 + step)
        trainer.train_step((REAL, None), step)
        torch.manual_seed(100 + step)
        official_step(G, D, opt_g, opt_d, REAL, step, TOY.nz, 0.5, lazy_reg)
    for ours, theirs in ((trainer.G, G), (trainer.D, D)):
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0, msg=name)
    for (name, _), q in zip(trainer.G.named_parameters(), G.parameters()):
        torch.testing.assert_close(trainer.ema.shadow[name], opt_g.state[q]["ema"], rtol=0, atol=0, msg=name)


def test_r1_applied_exactly_on_lazy_reg_steps(monkeypatch):
    calls = []
    import ddx.train.ddgan as module

    def counting(d_real, x_t, gamma):
        calls.append(gamma)
        return r1_penalty(d_real, x_t, gamma)

    monkeypatch.setattr(module, "r1_penalty", counting)
    trainer = _trainer(lazy_reg=3)
    r1 = [float(trainer.train_step((REAL, None), step)["r1"]) for step in range(7)]
    assert len(calls) == 3
    assert [value > 0 for value in r1] == [True, False, False, True, False, False, True]


def test_discriminator_frozen_during_generator_step():
    trainer = _trainer()
    seen = []
    trainer.D.register_forward_pre_hook(lambda m, inputs: seen.append(all(p.requires_grad for p in m.parameters())))
    trainer.train_step((REAL, None), 0)
    assert seen == [True, True, False]  # real and fake in the D step, fake in the G step
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    grads = [p.grad.clone() for p in trainer.D.parameters()]
    trainer.g_step(REAL)
    for name, value in trainer.D.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    for p, grad in zip(trainer.D.parameters(), grads):
        torch.testing.assert_close(p.grad, grad, rtol=0, atol=0)
    assert all(p.grad is not None for p in trainer.G.parameters())


@pytest.mark.parametrize("no_lr_decay", [False, True], ids=["cosine", "no-decay"])
def test_learning_rate_follows_the_cosine_per_epoch(no_lr_decay):
    trainer = _trainer(no_lr_decay=no_lr_decay)
    for epoch in range(4):
        for step in range(3):
            trainer.train_step((REAL, None), 3 * epoch + step)
        for opt, lr0 in ((trainer.optimizerG, 1e-2), (trainer.optimizerD, 2e-2)):
            expected = lr0 if no_lr_decay else 1e-5 + (lr0 - 1e-5) * (1 + math.cos(math.pi * epoch / 4)) / 2
            assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
        trainer.on_epoch_end(epoch)
    final = trainer.optimizerG.param_groups[0]["lr"]
    assert final == pytest.approx(1e-2 if no_lr_decay else 1e-5, rel=1e-9)


def test_ema_starts_after_the_first_generator_step_and_exports_it():
    trainer = _trainer()
    assert trainer.ema.start is EMAStart.FIRST_STEP and not trainer.ema.initialized
    raw = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    assert all(torch.equal(trainer.generator_state_dict()[k], v) for k, v in raw.items())
    trainer.train_step((REAL, None), 0)
    trainer.train_step((REAL, None), 1)
    exported = trainer.generator_state_dict()
    for name, p in trainer.G.named_parameters():
        torch.testing.assert_close(exported[name], trainer.ema.shadow[name], rtol=0, atol=0)
        assert not torch.equal(exported[name], p.detach())


def test_r1_gradient_fused_equals_eager_through_discriminator_small():
    torch.manual_seed(3)
    D = Discriminator_small(nc=6, ngf=2, t_emb_dim=8)
    for p in D.parameters():  # some layers start at zero (init_scale 0): randomise so every path matters
        p.data.normal_(0, 0.2)
    x_t, x_tp1 = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 1, 2, 3])
    grads = []
    for fused in (True, False):
        model = set_fused(copy.deepcopy(D), fused)
        x = x_t.clone().requires_grad_(True)
        r1_penalty(model(x, t, x_tp1).view(-1), x, 1.0).backward()
        grads.append([p.grad for p in model.parameters()])
    for fused_grad, eager_grad in zip(*grads):
        # Parameters R1 does not reach (the final bias: d/dx of D does not depend on it) have no gradient.
        assert (fused_grad is None) == (eager_grad is None)
        if fused_grad is not None:
            assert_close(fused_grad, eager_grad)
    assert sum(g is not None and float(g.abs().sum()) > 0 for g in grads[0]) > len(grads[0]) // 2


def test_nvtx_ranges_name_the_training_phases():
    from ddx import profiling

    trainer = _trainer(lazy_reg=2)
    profiling.enable(True)
    try:
        with record_ranges() as names:
            trainer.train_step((REAL, None), 0)
            trainer.train_step((REAL, None), 1)
    finally:
        profiling.enable(False)
    phases = ["train/data", "train/d_step", "train/g_step", "train/ema"]
    assert names == phases[:2] + ["train/r1"] + phases[2:] + phases


def test_execution_routes_both_networks_and_the_coefficient_tables():
    for fused in (True, False):
        G, D = toy_models()
        trainer = DDGANTrainer(G, D, DIFFUSION, DDGANTrainConfig(), execution=ExecutionOptions(fused=fused))
        assert trainer.coeff.fused is trainer.pos_coeff.fused is fused
        assert all(m.fused is fused for net in (G, D) for m in net.modules() if hasattr(m, "fused"))
    G, D = toy_models()
    set_fused(G, False)
    assert DDGANTrainer(G, D, DIFFUSION, DDGANTrainConfig()).execution == ExecutionOptions()


@pytest.mark.parametrize("option, match", [({"precision": "bf16"}, "runs in fp32, not precision bf16"),
                                           ({"compile": "default"}, "does not compile"),
                                           ({"memory_format": "channels_last"}, "not channels_last")])
def test_execution_options_the_trainer_lacks_are_refused(option, match):
    G, D = toy_models()
    with pytest.raises(ValueError, match=match):
        DDGANTrainer(G, D, DIFFUSION, DDGANTrainConfig(), execution=ExecutionOptions(**option))
