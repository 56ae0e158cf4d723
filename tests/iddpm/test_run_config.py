"""IDDPM's run configuration is the one source of a run: every UNetConfig field is a flag and a config.json key,
a field added to the UNet's config reaches sample.py's rebuilt config with no other edit, presets are typed,
and config.json files written before the ddx-run/2 layout still load (sample.py needs no training flag)."""

import argparse
import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest

from ddx.cli import sample_iddpm, train_iddpm
from ddx.cli.config_flags import add_config_flags, resolve, typed_values
from ddx.cli.iddpm_flags import forms, section_values
from ddx.diffusion import BetaSchedule, ScheduleSamplerName
from ddx.execution import Precision
from ddx.models.unet_config import UNetConfig
from ddx.presets import Preset
from ddx.presets.iddpm import PRESETS
from ddx.train.iddpm_config import FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY, IddpmRunConfig
from ddx.train.run_file import read_run, run_record
from ddx.utils.config_io import field_types, from_plain, to_plain
from tests.cli_errors import run_cli
from tests.iddpm._tiny import TINY_FLAGS


def _flags(parser):
    return {a.dest for a in parser._actions}


def test_every_unet_field_is_a_flag_of_train_and_sample():
    fields = set(field_types(UNetConfig))
    assert fields <= _flags(train_iddpm.build_parser())
    assert fields <= _flags(sample_iddpm.build_parser(nll=False)) and fields <= _flags(sample_iddpm.build_parser(nll=True))


def test_the_resolved_config_round_trips_through_config_json(tmp_path):
    config = train_iddpm.parse_args(TINY_FLAGS + ["--class_cond", "True", "--amp", "bf16", "--ema_rate", "0.9,0.5",
                                                  "--profile_window", "2", "3", "--outdir", str(tmp_path)])
    (tmp_path / "config.json").write_text(json.dumps(run_record(FAMILY, config, ["train.py", "iddpm"])))
    back = read_run(tmp_path, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY)
    assert back.config == config and not back.legacy
    assert from_plain(IddpmRunConfig, to_plain(config)) == config


def test_a_field_added_to_the_unet_config_reaches_flags_config_json_and_the_sampler():
    @dataclasses.dataclass(frozen=True)
    class WiderUNet(UNetConfig):
        extra_width: int = 1  # the one edit

    @dataclasses.dataclass(frozen=True)
    class WiderRun(IddpmRunConfig):
        model: WiderUNet = WiderUNet()

    parser = argparse.ArgumentParser()
    add_config_flags(parser, WiderRun(), forms())
    typed = typed_values(parser.parse_args(["--extra_width", "5", "--image_size", "32"]), WiderRun)
    config, _ = resolve(WiderRun(), [("from --preset p", {"extra_width": 3}), ("", typed)])
    recorded = from_plain(WiderRun, json.loads(json.dumps(to_plain(config))))  # config.json and back
    assert recorded.model.extra_width == 5
    # sample.py lays the run's model section under its own flags: the new field comes with it.
    inherited = section_values(recorded, ("model", "diffusion"))
    assert inherited["extra_width"] == 5
    again, sources = resolve(WiderRun(), [("from the run at R", inherited), ("", {})])
    assert again.model == recorded.model and sources["extra_width"] == "from the run at R"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_typed_partial_run_config(name):
    values = PRESETS[name].defaults
    config, _ = resolve(IDDPM_DEFAULTS, [("", values)])
    assert all(getattr(getattr(config, s), k) == v for k, v in values.items()
               for s in ("data", "model", "diffusion", "train", "run") if k in field_types(type(getattr(config, s))))
    assert values["noise_schedule"] is BetaSchedule.COSINE and values["learn_sigma"] is True


def test_a_bad_preset_fails_when_it_is_defined():
    with pytest.raises(ValueError, match="preset x: unknown field num_chanels"):
        Preset("x", "", {"num_chanels": 64}, base=IDDPM_DEFAULTS)
    with pytest.raises(ValueError, match="noise_schedule"):
        Preset("x", "", {"noise_schedule": "quadratic"}, base=IDDPM_DEFAULTS)


def test_preset_numbers_are_unchanged():
    assert dict(PRESETS["digits"].defaults) == {
        "dataset": "digits", "image_size": 16, "num_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 2,
        "attention_resolutions": (8,), "num_heads": 4, "use_scale_shift_norm": True, "dropout": 0.0,
        "learn_sigma": True, "diffusion_steps": 1000, "noise_schedule": BetaSchedule.COSINE, "use_kl": False,
        "rescale_learned_sigmas": True, "schedule_sampler": ScheduleSamplerName.UNIFORM, "rescale_timesteps": True, "lr": 2e-4,
        "weight_decay": 0.0, "batch_size": 64, "ema_rate": (0.999,), "max_steps": 3000, "log_interval": 50,
        "save_interval": 1000}
    assert PRESETS["cifar10"].defaults["max_steps"] == 500_000 and PRESETS["cifar10"].defaults["dropout"] == 0.3
    assert PRESETS["imagenet64"].defaults["max_steps"] == 1_500_000


def _old_layout(config: IddpmRunConfig) -> dict:
    """config.json as ddx.train.iddpm_run wrote it before ddx-run/2: the argparse namespace under "flags" (enums
    by name), the library configs beside it."""
    m, d, t, r, e = config.model, config.diffusion, config.train, config.run, config.execution
    flags = {
        "image_size": m.image_size, "num_channels": m.num_channels, "num_res_blocks": m.num_res_blocks,
        "num_heads": m.num_heads, "num_heads_upsample": m.num_heads_upsample,
        "attention_resolutions": list(m.attention_resolutions), "dropout": m.dropout, "learn_sigma": m.learn_sigma,
        "sigma_small": d.sigma_small, "class_cond": m.class_cond, "diffusion_steps": d.diffusion_steps,
        "noise_schedule": d.noise_schedule.name, "timestep_respacing": d.timestep_respacing, "use_kl": d.use_kl,
        "predict_xstart": d.predict_xstart, "rescale_timesteps": d.rescale_timesteps,
        "rescale_learned_sigmas": d.rescale_learned_sigmas, "use_checkpoint": m.use_checkpoint,
        "use_scale_shift_norm": m.use_scale_shift_norm, "channel_mult": list(m.channel_mult),
        "data_dir": "", "schedule_sampler": t.schedule_sampler.name, "lr": t.lr, "weight_decay": t.weight_decay,
        "lr_anneal_steps": 0, "batch_size": t.batch_size, "microbatch": -1, "ema_rate": list(t.ema_rate),
        "log_interval": r.log_interval, "save_interval": r.save_interval, "resume_checkpoint": None,
        "use_fp16": False, "fp16_scale_growth": 1e-3, "dataset": "DIGITS", "outdir": r.outdir, "max_steps": 2,
        "export_official": True, "preset": None, "device": None, "amp": "BF16", "nvtx": False, "fused": False,
        "seed": 0, "num_threads": 1, "profile_window": None,
    }
    return {"flags": flags, "model": to_plain(m), "diffusion": {"steps": d.diffusion_steps}, "world_size": 1}


def test_an_old_config_json_loads(tmp_path):
    config = train_iddpm.parse_args(TINY_FLAGS + ["--amp", "bf16", "--max_steps", "2", "--outdir", str(tmp_path)])
    (tmp_path / "config.json").write_text(json.dumps(_old_layout(config)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every old flag is known
        back = read_run(tmp_path, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY)
    assert back.legacy and back.config == config
    assert back.config.execution.precision is Precision.BF16 and back.config.execution.threads == 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    assert run_cli("train", ["iddpm", *TINY_FLAGS, "--batch_size", "4", "--max_steps", "1", "--outdir", root]) == 0
    return root


@pytest.mark.parametrize("layout", ["new", "old"])
def test_sample_from_a_run_needs_no_training_flag(layout, tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    if layout == "old":
        config = read_run(run, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY).config
        (run / "config.json").write_text(json.dumps(_old_layout(config)))
    argv = ["iddpm", "--model_path", run, "--num_samples", "2", "--batch_size", "2", "--timestep_respacing", "3",
            "--no-fused"]  # an execution flag: how this command runs, not what the run trained
    assert run_cli("sample", argv) == 0
    assert np.load(run / "samples" / "samples_2x8x8x3.npz")["arr_0"].shape == (2, 8, 8, 3)
    parsed, _, folder, _ = sample_iddpm.parse_args([str(a) for a in argv[1:]])
    assert folder == run and parsed.model == read_run(run, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY).config.model
    assert parsed.diffusion.timestep_respacing == "3"  # sampling's own, not the run's


def test_resume_may_change_loop_and_execution_fields(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    argv = ["iddpm", *TINY_FLAGS, "--batch_size", "4", "--max_steps", "2", "--log_interval", "7", "--outdir", run]
    assert run_cli("train", argv) == 0
    assert read_run(run, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY).config.run.log_interval == 7
