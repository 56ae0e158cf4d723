"""ddx.train.ddgan_weights.generator_weights: G's weights from a ddx checkpoint, an official content.pth and a
bare netG state_dict, the EMA average unless raw, and a clear error for a file of another family."""

import argparse

import pytest
import torch

from ddx.checkpoints.io import CHECKPOINT_FORMAT, CheckpointError
from ddx.checkpoints.state_dict import add_module_prefix
from ddx.execution import ExecutionOptions
from ddx.train.ddgan import DDGANTrainConfig, DDGANTrainer
from ddx.train.ddgan_official_state import content_from_trainer_state
from ddx.train.ddgan_weights import generator_weights
from ddgan_helpers import DIFFUSION, toy_models

EAGER = ExecutionOptions(fused=False)
REAL = torch.tensor([[2.0, -2.0], [0.0, 4.0], [-4.0, 2.0], [2.0, 2.0]])


def _trained(steps=2):
    G, D = toy_models(seed=0)
    config = DDGANTrainConfig(lr_g=1e-2, lr_d=1e-2, use_ema=True, ema_decay=0.5, num_epoch=1)
    trainer = DDGANTrainer(G, D, DIFFUSION, config, execution=EAGER)
    for step in range(steps):
        trainer.train_step((REAL, None), step)
    return trainer


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_ddx_checkpoint_gives_the_average_or_the_trained_weights():
    trainer = _trained()
    payload = {"format": CHECKPOINT_FORMAT, "trainer": trainer.state_dict(), "loop": {}}
    assert _equal(generator_weights(payload, trainer.G, raw=False, name="ckpt"), trainer.generator_state_dict())
    assert _equal(generator_weights(payload, trainer.G, raw=True, name="ckpt"), trainer.G.state_dict())
    assert not _equal(trainer.generator_state_dict(), trainer.G.state_dict())


def test_a_ddx_checkpoint_before_the_first_step_gives_the_trained_weights():
    trainer = _trained(steps=0)
    payload = {"format": CHECKPOINT_FORMAT, "trainer": trainer.state_dict(), "loop": {}}
    assert _equal(generator_weights(payload, trainer.G, raw=False, name="ckpt"), trainer.G.state_dict())


def test_an_official_content_file_gives_the_optimizer_ema_or_the_trained_weights():
    trainer = _trained()
    content = content_from_trainer_state(trainer.state_dict(), trainer.G, 1, argparse.Namespace())
    assert _equal(generator_weights(content, trainer.G, raw=False, name="content.pth"), trainer.generator_state_dict())
    assert _equal(generator_weights(content, trainer.G, raw=True, name="content.pth"), trainer.G.state_dict())


def test_a_bare_generator_state_dict_with_or_without_the_ddp_prefix():
    trainer = _trained()
    state = trainer.generator_state_dict()
    for payload in (state, add_module_prefix(state)):
        assert _equal(generator_weights(payload, trainer.G, raw=False, name="netG_1.pth"), state)


def test_a_file_of_another_family_names_what_it_is():
    trainer = _trained()
    with pytest.raises(CheckpointError, match="netD.pth is a DDGAN discriminator state_dict"):
        generator_weights(trainer.D.state_dict(), trainer.G, raw=False, name="netD.pth")
    with pytest.raises(CheckpointError, match="opt.pt is an optimizer state"):
        generator_weights(trainer.optimizerG.state_dict(), trainer.G, raw=False, name="opt.pt")
    with pytest.raises(CheckpointError, match="neither a ddx checkpoint"):
        generator_weights({"something": 1}, trainer.G, raw=False, name="x.pt")
