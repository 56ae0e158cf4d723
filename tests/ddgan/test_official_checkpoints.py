"""Official-layout files both ways: ddx writes content.pth / netG_<epoch>.pth that the official code loads and
continues from; ddx loads files written the official way (DDP 'module.' keys, EMA inside optimizerG) and
continues identically. Loading allows argparse.Namespace and nothing else beyond tensors and containers."""

import argparse
import collections

import pytest
import torch

from ddx.checkpoints.ddgan_official import load_official_content, load_official_generator, save_official_generator
from ddx.train.ddgan_official_state import save_official_content, trainer_state_from_content
from ddx.execution import ExecutionOptions
from ddx.train import CheckpointError
from ddx.train.ddgan import DDGANTrainConfig, DDGANTrainer
from ddgan_helpers import DIFFUSION, TOY, DDPLike, OfficialEMA, official_step, toy_models

REAL = torch.tensor([[2.0, -2.0], [0.0, 4.0], [-4.0, 2.0], [2.0, 2.0]])
LR_G, LR_D, DECAY, GAMMA, LAZY = 1e-2, 2e-2, 0.9, 0.5, 2
ARGS = argparse.Namespace(dataset="toy25", nz=TOY.nz, use_ema=True, ch_mult=[1, 2], lazy_reg=LAZY)


def _ddx_trainer():
    G, D = toy_models()
    config = DDGANTrainConfig(lr_g=LR_G, lr_d=LR_D, r1_gamma=GAMMA, lazy_reg=LAZY, use_ema=True,
                              ema_decay=DECAY, num_epoch=5)
    return DDGANTrainer(G, D, DIFFUSION, config, execution=ExecutionOptions(fused=False))


def _official_objects():
    G, D = toy_models(seed=7)  # other initial weights: everything must come from the file
    netG, netD = DDPLike(G), DDPLike(D)
    optD = torch.optim.Adam(netD.parameters(), lr=LR_D, betas=(0.5, 0.9))
    optG = OfficialEMA(torch.optim.Adam(netG.parameters(), lr=LR_G, betas=(0.5, 0.9)), ema_decay=DECAY)
    schedG = torch.optim.lr_scheduler.CosineAnnealingLR(optG, 5, eta_min=1e-5)
    schedD = torch.optim.lr_scheduler.CosineAnnealingLR(optD, 5, eta_min=1e-5)
    return netG, netD, optG, optD, schedG, schedD


def _step_both(trainer, official, step, seed):
    netG, netD, optG, optD, _, _ = official
    torch.manual_seed(seed)
    trainer.train_step((REAL, None), step)
    torch.manual_seed(seed)
    official_step(netG.module, netD.module, optG, optD, REAL, step, TOY.nz, GAMMA, LAZY)


def _assert_same(trainer, official):
    netG, netD, optG, _, _, _ = official
    for ours, theirs in ((trainer.G, netG.module), (trainer.D, netD.module)):
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0, msg=name)
    for (name, _), q in zip(trainer.G.named_parameters(), netG.parameters()):
        torch.testing.assert_close(trainer.ema.shadow[name], optG.state[q]["ema"], rtol=0, atol=0, msg=name)


def test_ddx_files_load_in_the_official_code_and_continue_identically(tmp_path):
    trainer = _ddx_trainer()
    for step in range(3):
        trainer.train_step((REAL, None), step)
    trainer.on_epoch_end(0)
    save_official_content(tmp_path / "content.pth", trainer.state_dict(), trainer.G, 1, ARGS)
    exported = trainer.generator_state_dict()
    save_official_generator(tmp_path / "netG_0.pth", exported)

    content = torch.load(tmp_path / "content.pth", map_location="cpu", weights_only=False)  # as train_ddgan.py
    assert set(content) == {"epoch", "global_step", "args", "netG_dict", "optimizerG", "schedulerG", "netD_dict",
                            "optimizerD", "schedulerD"}
    assert (content["epoch"], content["global_step"], content["args"]) == (1, 3, ARGS)
    assert all(key.startswith("module.") for key in content["netG_dict"]) and all("ema" in s for s in content["optimizerG"]["state"].values())
    official = _official_objects()
    netG, netD, optG, optD, schedG, schedD = official
    netG.load_state_dict(content["netG_dict"])
    optG.load_state_dict(content["optimizerG"])
    schedG.load_state_dict(content["schedulerG"])
    netD.load_state_dict(content["netD_dict"])
    optD.load_state_dict(content["optimizerD"])
    schedD.load_state_dict(content["schedulerD"])
    _assert_same(trainer, official)
    assert optG.param_groups[0]["lr"] == trainer.optimizerG.param_groups[0]["lr"] < LR_G
    for step in (3, 4):
        _step_both(trainer, official, step, seed=50 + step)
    _assert_same(trainer, official)

    ckpt = torch.load(tmp_path / "netG_0.pth", map_location="cpu", weights_only=False)  # as test_ddgan.py
    for key in list(ckpt.keys()):
        ckpt[key[7:]] = ckpt.pop(key)
    generator = toy_models(seed=9)[0]
    generator.load_state_dict(ckpt)
    for name, value in generator.state_dict().items():
        torch.testing.assert_close(value, exported[name], rtol=0, atol=0)


def test_official_files_load_in_ddx_and_continue_identically(tmp_path):
    official = _official_objects()
    netG, netD, optG, optD, schedG, schedD = official
    for step in range(3):
        torch.manual_seed(10 + step)
        official_step(netG.module, netD.module, optG, optD, REAL, step, TOY.nz, GAMMA, LAZY)
    schedG.step()
    schedD.step()
    content = {"epoch": 1, "global_step": 3, "args": ARGS, "netG_dict": netG.state_dict(),
               "optimizerG": optG.state_dict(), "schedulerG": schedG.state_dict(), "netD_dict": netD.state_dict(),
               "optimizerD": optD.state_dict(), "schedulerD": schedD.state_dict()}
    torch.save(content, tmp_path / "content.pth")
    optG.swap_parameters_with_ema()
    torch.save(netG.state_dict(), tmp_path / "netG_0.pth")
    ema_weights = {k[len("module."):]: v.clone() for k, v in netG.state_dict().items()}
    optG.swap_parameters_with_ema()

    trainer = _ddx_trainer()
    loaded = load_official_content(tmp_path / "content.pth")
    assert loaded["args"] == ARGS
    trainer.load_state_dict(trainer_state_from_content(loaded, trainer.G, use_ema=True, ema_decay=DECAY))
    _assert_same(trainer, official)
    assert trainer.global_step == 3 and trainer.schedulerG.last_epoch == 1
    for step in (3, 4):
        _step_both(trainer, official, step, seed=60 + step)
    _assert_same(trainer, official)

    weights = load_official_generator(tmp_path / "netG_0.pth")
    assert set(weights) == set(ema_weights)
    for name, value in ema_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0)


def test_content_without_ema_restarts_the_average(tmp_path):
    official = _official_objects()
    netG, netD, _, optD, schedG, schedD = official
    plain_opt = torch.optim.Adam(netG.parameters(), lr=LR_G)
    content = {"epoch": 0, "global_step": 0, "args": ARGS, "netG_dict": netG.state_dict(),
               "optimizerG": plain_opt.state_dict(), "schedulerG": schedG.state_dict(), "netD_dict": netD.state_dict(),
               "optimizerD": optD.state_dict(), "schedulerD": schedD.state_dict()}
    state = trainer_state_from_content(content, netG.module, use_ema=True, ema_decay=DECAY)
    assert state["ema"]["initialized"] is False


class NotAllowed:
    pass


@pytest.mark.parametrize("payload", [
    {"epoch": 1, "args": NotAllowed()},
    {"epoch": 1, "args": collections.OrderedDict(a=argparse.Namespace(x=NotAllowed()))},
], ids=["custom-class", "custom-class-inside-namespace"])
def test_other_classes_are_refused(tmp_path, payload):
    path = tmp_path / "content.pth"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_official_content(path)


def test_incomplete_content_is_refused(tmp_path):
    torch.save({"epoch": 1, "args": ARGS}, tmp_path / "content.pth")
    with pytest.raises(CheckpointError, match="missing global_step"):
        load_official_content(tmp_path / "content.pth")
