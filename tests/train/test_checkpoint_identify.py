"""ddx.checkpoints.identify: the family of each kind of checkpoint file, and mismatch messages that name the
parameters and the flags (read from the file's shapes) that differ."""

import pytest
import torch

from ddx.checkpoints.state_dict import add_module_prefix
from ddx.checkpoints.identify import (
    Family,
    identify,
    mismatch_message,
    ncsnpp_flags_of,
    unet_flags_of,
    wrong_family_message,
)
from ddx.cli import train_ddgan
from ddx.models.unet import UNetConfig, build_unet
from ddx.train.ddgan_setup import build_discriminator, build_generator
from ddx.checkpoints.io import CHECKPOINT_FORMAT

NCSNPP = ["--dataset", "digits", "--image_size", "8", "--ch_mult", "1", "2", "--num_channels_dae", "8",
          "--num_res_blocks", "1", "--attn_resolutions", "4", "--z_emb_dim", "8", "--n_mlp", "1", "--t_emb_dim", "8",
          "--ngf", "2", "--batch_size", "4", "--num_timesteps", "2", "--no-fused"]


def _ncsnpp(*flags):
    args = train_ddgan.parse_args(NCSNPP + list(flags))
    return build_generator(args), build_discriminator(args)


def _unet(**kwargs):
    config = dict(image_size=16, num_channels=32, num_res_blocks=2, learn_sigma=True, attention_resolutions=(8,),
                  channel_mult=(1, 2, 2))
    return build_unet(UNetConfig(**{**config, **kwargs}))


def test_every_family_is_told_apart():
    generator, discriminator = _ncsnpp("--nz", "4")
    unet = _unet().state_dict()
    ddx = {"format": CHECKPOINT_FORMAT, "world_size": 1, "loop": {}}
    assert identify({**ddx, "trainer": {"netG": {}, "netD": {}}}) is Family.DDX_DDGAN
    assert identify({**ddx, "trainer": {"model": unet, "ema": {}}}) is Family.DDX_IDDPM
    assert identify(add_module_prefix(generator.state_dict())) is Family.DDGAN_GENERATOR
    assert identify(discriminator.state_dict()) is Family.DDGAN_DISCRIMINATOR
    assert identify(unet) is Family.IDDPM_MODEL and identify(add_module_prefix(unet)) is Family.IDDPM_MODEL
    assert identify({"state": {}, "param_groups": []}) is Family.OPTIMIZER
    assert identify({"a": 1}) is None and identify([torch.zeros(1)]) is None
    toy_args = train_ddgan.parse_args(["--preset", "toy25"])
    assert identify(build_generator(toy_args).state_dict()) is Family.DDGAN_GENERATOR
    assert identify(build_discriminator(toy_args).state_dict()) is Family.DDGAN_DISCRIMINATOR


@pytest.mark.parametrize("family, wanted, expected", [
    (Family.DDX_IDDPM, "ddgan", "x.pt is a ddx IDDPM checkpoint, not weights for sample.py ddgan: use sample.py iddpm"),
    (Family.DDGAN_CONTENT, "iddpm", "x.pt is an official DDGAN content.pth, not weights for sample.py iddpm: "
                                    "use sample.py ddgan --checkpoint x.pt"),
    (Family.DDGAN_DISCRIMINATOR, "ddgan", "give a generator's file"),
    (Family.OPTIMIZER, "iddpm", "give a UNet's file"),
    (Family.DDX_DDGAN, "ddgan", None), (Family.IDDPM_MODEL, "iddpm", None), (None, "iddpm", None),
], ids=lambda v: getattr(v, "name", None) if not isinstance(v, str) else None)
def test_wrong_family_message(family, wanted, expected):
    message = wrong_family_message("x.pt", family, wanted)
    assert message is None if expected is None else expected in message


def test_unet_flags_read_from_the_shapes():
    assert unet_flags_of(_unet().state_dict(), 16) == {
        "num_channels": 32, "learn_sigma": True, "class_cond": False, "num_res_blocks": 2, "channel_mult": "1,2,2",
        "attention_resolutions": "8"}
    other = _unet(num_channels=64, num_res_blocks=1, learn_sigma=False, attention_resolutions=(16,), channel_mult=(1, 3))
    assert unet_flags_of(other.state_dict(), 16) == {
        "num_channels": 64, "learn_sigma": False, "class_cond": False, "num_res_blocks": 1, "channel_mult": "1,3",
        "attention_resolutions": "16"}


def test_unet_mismatch_names_parameters_and_flags():
    model, file = _unet().state_dict(), _unet(num_res_blocks=1, learn_sigma=False).state_dict()
    message = mismatch_message("m.pt", model, file, unet_flags_of(file, 16), unet_flags_of(model, 16), ("image_size",))
    assert message.startswith("the weights in m.pt do not fit the model the flags describe")
    assert "parameter(s) differ in shape: " in message and "missing from the file" in message
    learn_sigma_only = _unet(learn_sigma=False).state_dict()
    assert "2 parameter(s) differ in shape: out.2.weight (file 3x32x3x3, flags 6x32x3x3), out.2.bias (file 3, flags 6)" \
        in mismatch_message("m.pt", model, learn_sigma_only, {}, {}, ("learn_sigma",))
    assert "--learn_sigma False (flags: True)" in message and "--num_res_blocks 1 (flags: 2)" in message
    assert mismatch_message("m.pt", model, model, {}, {}, ()) is None


def test_ncsnpp_mismatch_names_the_latent_flags():
    (model, _), (other, _) = _ncsnpp("--nz", "8"), _ncsnpp("--nz", "4")
    assert ncsnpp_flags_of(other.state_dict()) == {"nz": 4, "z_emb_dim": 8, "n_mlp": 1}
    message = mismatch_message("netG_3.pth", model.state_dict(), other.state_dict(), ncsnpp_flags_of(other.state_dict()),
                               ncsnpp_flags_of(model.state_dict()), ("num_channels_dae", "nz"))
    assert "z_transform.1.weight (file 8x4, flags 8x8)" in message and "--nz 4 (flags: 8)" in message
    (wider, _) = _ncsnpp("--nz", "8", "--num_channels_dae", "16")
    message = mismatch_message("netG_3.pth", model.state_dict(), wider.state_dict(), ncsnpp_flags_of(wider.state_dict()),
                               ncsnpp_flags_of(model.state_dict()), ("num_channels_dae", "ch_mult"))
    assert "differ in shape" in message and "check --num_channels_dae, --ch_mult against the run" in message
