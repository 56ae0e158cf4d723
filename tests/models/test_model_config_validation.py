"""Configs and constructors refuse values that cannot take effect or build a degenerate network."""

import pytest
import torch

from ddx.models.discriminator import Discriminator_large, Discriminator_small
from ddx.models.ncsnpp import NCSNpp
from ddx.models.ncsnpp_config import EmbeddingType, NCSNppConfig, Progressive, ResblockType
from ddx.models.toy import ToyConfig

SMALL = dict(image_size=16, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), nz=4,
             z_emb_dim=8, n_mlp=1)


@pytest.mark.parametrize("attn, valid", [
    pytest.param((7,), "[32, 16, 8, 4]", id="not-a-power-of-two-step"),
    pytest.param((64,), "[32, 16, 8, 4]", id="above-image-size"),
    pytest.param((2,), "[32, 16, 8, 4]", id="below-the-last-level"),
    pytest.param((16, 3), "[32, 16, 8, 4]", id="one-stray"),
])
def test_attn_resolutions_must_be_resolutions_of_the_network(attn, valid):
    with pytest.raises(ValueError, match="attn_resolutions") as info:
        NCSNppConfig(attn_resolutions=attn)
    assert valid in str(info.value)


def test_every_resolution_and_none_are_accepted():
    for attn in ((32,), (16,), (8,), (4,), (32, 16, 8, 4), ()):
        assert NCSNppConfig(attn_resolutions=attn).attn_resolutions == attn
    assert NCSNppConfig(image_size=12, ch_mult=(1, 1, 2), attn_resolutions=(3,)).resolutions() == (12, 6, 3)


@pytest.mark.parametrize("fields, match", [
    pytest.param(dict(attn_resolutions=(16.5,)), "attn_resolutions must hold ints", id="attn-float"),
    pytest.param(dict(ch_mult=(1, 2.5)), "ch_mult must hold ints", id="ch-mult-float"),
    pytest.param(dict(ch_mult=(1, True)), "ch_mult must hold ints", id="ch-mult-bool"),
    pytest.param(dict(fir_kernel=()), "fir_kernel", id="fir-empty"),
    pytest.param(dict(fir_kernel=(1, -1)), "sums to 0", id="fir-zero-sum"),
    pytest.param(dict(fir_kernel=(1, float("nan"))), "finite", id="fir-nan"),
    pytest.param(dict(fourier_scale=float("inf")), "fourier_scale", id="fourier-inf"),
    pytest.param(dict(init_scale=float("nan")), "init_scale", id="init-nan"),
])
def test_fields_that_cannot_take_effect_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        NCSNppConfig(**fields)


@pytest.mark.parametrize("nf", [9, 13, 36])
def test_widths_that_group_norm_cannot_split_name_the_fields(nf):
    # 9 and 13: the level widths; 36: only a decoder concatenation (72 + 72 = 144 channels, 32 groups)
    config = NCSNppConfig(image_size=16, num_channels_dae=nf, ch_mult=(1, 2, 2), num_res_blocks=1,
                          attn_resolutions=(), nz=4, z_emb_dim=8)
    with pytest.raises(ValueError, match=rf"num_channels_dae={nf} .* groups do not divide.*multiple of 32"):
        NCSNpp(config)


def test_a_valid_small_network_still_builds_and_runs():
    model = NCSNpp(NCSNppConfig(**SMALL))
    assert model(torch.randn(2, 3, 16, 16), torch.zeros(2, dtype=torch.long), torch.randn(2, 4)).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("cls", [Discriminator_small, Discriminator_large])
@pytest.mark.parametrize("fields, match", [
    pytest.param(dict(ngf=0), "ngf must be an int >= 1", id="ngf-zero"),
    pytest.param(dict(ngf=2.5), "ngf must be an int", id="ngf-float"),
    pytest.param(dict(ngf=True), "ngf must be an int", id="ngf-bool"),
    pytest.param(dict(nc=0), "nc must be an int >= 2", id="nc-zero"),
    pytest.param(dict(nc=3), "nc=3 is odd", id="nc-odd"),
    pytest.param(dict(t_emb_dim=3), "t_emb_dim must be an int >= 4", id="t-emb-too-small"),
])
def test_discriminators_refuse_degenerate_widths(cls, fields, match):
    with pytest.raises(ValueError, match=match):
        cls(**{"nc": 2, "ngf": 1, "t_emb_dim": 8, **fields})


def test_default_discriminators_read_rgb_pairs():
    assert Discriminator_small(ngf=1, t_emb_dim=8).nc == 6 and Discriminator_large(ngf=1, t_emb_dim=8).nc == 6


@pytest.mark.parametrize("fields", [dict(hidden=0), dict(hidden=2.5), dict(num_layers=True), dict(nz=0)])
def test_toy_config_refuses_non_int_or_zero_widths(fields):
    with pytest.raises(ValueError, match=f"ToyConfig.{next(iter(fields))} must be an int >= 1"):
        ToyConfig(**fields)


def test_model_config_errors_are_usage_errors():
    from ddx.utils.errors import UsageError

    with pytest.raises(UsageError):
        NCSNppConfig(attn_resolutions=(7,))
    with pytest.raises(UsageError):
        Discriminator_small(ngf=0)
    with pytest.raises(UsageError, match="unknown resblock_type 'unet'; expected one of 'biggan', 'ddpm', 'biggan_oneadagn'$"):
        NCSNppConfig(resblock_type="unet")


def test_enum_fields_take_members_values_and_names():
    config = NCSNppConfig(resblock_type="DDPM", progressive="output-skip", embedding_type=EmbeddingType.FOURIER)
    assert (config.resblock_type, config.progressive, config.embedding_type) == (
        ResblockType.DDPM, Progressive.OUTPUT_SKIP, EmbeddingType.FOURIER)


CLI = ["--dataset", "digits", "--image_size", 16, "--ch_mult", 1, 2, "--attn_resolutions", 8, "--nz", 4,
       "--z_emb_dim", 8, "--num_res_blocks", 1, "--num_epoch", 1, "--max_steps", 1]


@pytest.mark.parametrize("flags, fragments", [
    pytest.param(["--num_channels_dae", 13], ["num_channels_dae=13", "groups do not divide", "multiple of 32"], id="nf"),
    pytest.param(["--num_channels_dae", 8, "--t_emb_dim", 2], ["t_emb_dim must be an int >= 4"], id="t-emb-dim"),
])
def test_train_ddgan_prints_model_config_errors_without_a_traceback(capsys, tmp_path, flags, fragments):
    from tests.cli_errors import expect_user_error

    expect_user_error(capsys, "train", ["ddgan", *CLI, *flags, "--outdir", tmp_path / "run"], 2, *fragments)
