"""DDGANRunConfig as the one source of a DDGAN run: every generator field is a flag, a preset key, a config.json
key, a --resume check and what sample.py rebuilds (the one-edit property, on the real NCSNppConfig); presets are
checked when defined; config.json files of the layout before this one still sample."""

import dataclasses
import json

import pytest

from ddx.cli import sample_ddgan, train_ddgan
from ddx.models.ncsnpp_config import NCSNppConfig
from ddx.presets import Preset
from ddx.presets.ddgan import PRESETS
from ddx.train.ddgan_config import DEFAULTS, DEFINING_SECTIONS, LEGACY_LAYOUT, read_ddgan_run
from ddx.train.run_file import check_resume, read_run, run_record
from ddx.utils.config_io import flat_values, to_plain
from ddx.utils.errors import UsageError
from tests.cli_errors import run_cli
from tests.ddgan.test_cli import TINY_IMAGES, TINY_TOY

# A value other than the default for every NCSNppConfig field, valid together with TINY_IMAGES' network.
OTHER = {"image_size": 16, "num_channels": 3, "centered": False, "num_channels_dae": 12, "n_mlp": 2,
         "ch_mult": (1, 2, 2), "num_res_blocks": 3, "attn_resolutions": (8,), "dropout": 0.1,
         "resamp_with_conv": False, "conditional": False, "fir": False, "fir_kernel": (1, 1),
         "skip_rescale": False, "resblock_type": "ddpm", "progressive": "output_skip",
         "progressive_input": "input_skip", "progressive_combine": "cat", "embedding_type": "fourier",
         "fourier_scale": 8.0, "not_use_tanh": True, "nz": 6, "z_emb_dim": 10, "init_scale": 0.5}


def as_flags(values):
    """Command-line words for flat values (train_ddgan.py's forms: a store_false flag switches its default off)."""
    words = []
    for name, value in values.items():
        default = getattr(DEFAULTS.generator, name)
        if isinstance(value, bool):
            words += [f"--{name}"] if value != default else []
        elif isinstance(value, tuple):
            words += [f"--{name}", *map(str, value)]
        else:
            words += [f"--{name}", str(value)]
    return words


def test_every_generator_field_is_a_flag_a_config_key_a_resume_check_and_sampled(tmp_path):
    assert set(OTHER) == {f.name for f in dataclasses.fields(NCSNppConfig)}  # a new field must be added here
    expected = NCSNppConfig(**OTHER)
    assert [k for k in OTHER if getattr(expected, k) == getattr(DEFAULTS.generator, k)] == ["num_channels"]  # 3 only
    config = train_ddgan.parse_args(TINY_IMAGES + as_flags(OTHER))
    assert config.generator == expected
    # config.json holds it, and reads it back typed
    (tmp_path / "config.json").write_text(json.dumps(run_record("ddgan", config, [])))
    recorded = read_ddgan_run(tmp_path)
    assert recorded.config == config
    # sample.py --run_dir rebuilds it with no flag repeated
    assert sample_ddgan.parse_args(["--run_dir", str(tmp_path), "--checkpoint", __file__]).config.generator == expected
    # and --resume names each field a command changes
    with pytest.raises(UsageError) as err:
        check_resume(recorded, train_ddgan.parse_args(TINY_IMAGES), DEFINING_SECTIONS)
    assert all(f"--{name}: recorded" in str(err.value) for name in OTHER if name != "num_channels")
    # a preset may set it
    assert Preset("p", "every field", OTHER, base=DEFAULTS).config().generator == expected


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_checked_partial_config(name):
    preset = PRESETS[name]
    config = preset.config()
    assert {k: v for k, v in flat_values(config).items() if k in preset.defaults} == dict(preset.defaults)


@pytest.mark.parametrize("values, words", [
    ({"ch_multt": (1, 2)}, "preset bad: unknown field ch_multt"),
    ({"image_size": 0}, "image_size must be a positive int"),
    ({"resblock_type": "unet"}, "'unet'"),
    ({"lr_g": "fast"}, "lr_g: expected float"),
], ids=["unknown-key", "bad-size", "bad-enum", "bad-type"])
def test_a_bad_preset_fails_when_defined(values, words):
    with pytest.raises(ValueError, match=words):
        Preset("bad", "a typo", values, base=DEFAULTS)


def old_layout(config, **flags):
    """config.json as train.py ddgan wrote it before DDGANRunConfig: every flag under "args" (enums by value,
    ch_mult None for 2-D data), beside typed copies (discriminator by name)."""
    args = {**to_plain(flat_values(config)), "preset": "toy25", "resume": False, "num_proc_node": 1,
            "num_process_per_node": 1, "node_rank": 0, "local_rank": 0, "master_address": "127.0.0.1", **flags}
    for gone in ("init_scale", "precision", "memory_format", "compile", "sampler", "threads"):  # not flags then
        args.pop(gone)
    return {"model": "ddgan", "args": args, "generator": {"data_dim": 2, "nz": 2}, "discriminator": "TOY",
            "diffusion": to_plain(config.diffusion), "train": {**to_plain(config.train), "fused": False}}


def test_a_run_written_before_samples_with_no_flag_repeated(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_cli("train", ["ddgan", *TINY_TOY, "--max_steps", "2", "--outdir", run_dir]) == 0
    config = read_ddgan_run(run_dir).config
    (run_dir / "config.json").write_text(json.dumps(old_layout(config, ch_mult=None)))
    old = read_run(run_dir, "ddgan", DEFAULTS, LEGACY_LAYOUT)
    assert old.legacy and old.config.toy == config.toy and old.config.discriminator == config.discriminator
    out = tmp_path / "samples"
    assert run_cli("sample", ["ddgan", "--run_dir", run_dir, "--num_samples", "8", "--outdir", out]) == 0
    assert json.loads((out / "metrics.json").read_text())["num_samples"] == 8
    capsys.readouterr()


def test_mode_is_the_samplers_execution_option(tmp_path):
    base = ["--preset", "toy25", "--checkpoint", __file__]
    assert sample_ddgan.parse_args(base).config.execution.sampler.value == "eager"
    assert sample_ddgan.parse_args(base + ["--mode", "compiled"]).config.execution.sampler.value == "compiled"
