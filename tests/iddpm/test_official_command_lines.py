"""train.py iddpm / sample.py iddpm at the edges: image_train.py's flags without --outdir (a run folder as the
official logger makes one), --attention_resolutions '' (no attention), and messages that say why a width is
refused and which values came from the preset or the run."""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddx.cli import train_iddpm
from ddx.models.unet import build_unet
from ddx.train.iddpm_run import LOGDIR_ENV, default_outdir
from tests.cli_errors import expect_user_error, run_cli
from tests.iddpm._tiny import TINY_FLAGS

NOW = datetime.datetime(2026, 12, 3, 14, 5, 9)


def _attention_blocks(config):
    return sum(type(m).__name__ == "AttentionBlock" for m in build_unet(config.model).modules())


@pytest.mark.parametrize("text", ["", "none", "None"])
def test_attention_resolutions_empty_means_no_attention(text):
    at_4 = train_iddpm.parse_args(TINY_FLAGS)
    without = train_iddpm.parse_args(TINY_FLAGS + ["--attention_resolutions", text])
    assert (at_4.model.attention_resolutions, without.model.attention_resolutions) == ((4,), ())
    # At 4x4: one block in the encoder, two in the decoder; the middle block keeps its own, as the official UNet.
    assert _attention_blocks(without) == _attention_blocks(at_4) - 3 == 1


def test_a_width_that_32_groups_cannot_split_says_why(capsys):
    expect_user_error(capsys, "train", ["iddpm", "--preset", "digits", "--num_channels", "8"], 2,
                      "--num_channels=8, --channel_mult=(1, 2, 2) (from --preset digits): the UNet normalises with "
                      "32-group GroupNorm", "(8, 16) must be multiples of 32: e.g. --num_channels 32")
    expect_user_error(capsys, "train", ["iddpm", "--dataset", "digits", "--image_size", "16", "--num_channels", "80",
                                        "--channel_mult", "1,2"], 2, "--num_channels=80, --channel_mult=(1, 2): ",
                      "e.g. --num_channels 96")


def test_default_outdir_is_openai_logdir_else_a_new_dated_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOGDIR_ENV, raising=False)
    args = train_iddpm.parse_args(["--preset", "digits"])
    assert args.run.outdir is None
    assert str(default_outdir(args, NOW)) == "runs/iddpm-digits-20261203-140509"
    (tmp_path / "runs/iddpm-digits-20261203-140509").mkdir(parents=True)
    assert str(default_outdir(args, NOW)) == "runs/iddpm-digits-20261203-140509-2"  # never resumes another run
    folder = train_iddpm.parse_args(["--data_dir", str(tmp_path)])
    assert default_outdir(folder, NOW).name == "iddpm-image_folder-20261203-140509"
    monkeypatch.setenv(LOGDIR_ENV, str(tmp_path / "logs"))
    assert default_outdir(args, NOW) == tmp_path / "logs"


def test_image_train_flags_without_outdir_train_into_the_printed_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOGDIR_ENV, raising=False)
    assert run_cli("train", ["iddpm", *TINY_FLAGS, "--batch_size", "4", "--max_steps", "1"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("iddpm-digits-")
    assert f"run directory runs/{run.name}" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["run"]["outdir"] == f"runs/{run.name}" and (run / "checkpoints").is_dir()
    # The run's flags are the sampler's defaults, and errors say so.
    expect_user_error(capsys, "sample", ["iddpm", "--model_path", run, "--num_channels", "40"], 2,
                      f"--num_channels=40, --channel_mult=(1, 2) (from the run at {run}): the UNet normalises")
    monkeypatch.setenv(LOGDIR_ENV, str(tmp_path / "logdir"))
    assert run_cli("train", ["iddpm", *TINY_FLAGS, "--batch_size", "4", "--max_steps", "1"]) == 0
    assert (tmp_path / "logdir" / "config.json").is_file()
    capsys.readouterr()


def test_image_sample_flags_without_outdir_write_to_the_logger_folder(tmp_path, monkeypatch, capsys):
    from ddx.checkpoints.iddpm_official import export_official

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOGDIR_ENV, raising=False)
    config = train_iddpm.parse_args(TINY_FLAGS)
    export_official(tmp_path, 0, build_unet(config.model).state_dict(), {}, None)
    sample = ["iddpm", "--model_path", tmp_path / "model000000.pt", *TINY_FLAGS[2:], "--num_samples", "2",
              "--batch_size", "2", "--timestep_respacing", "2"]
    assert run_cli("sample", sample) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("iddpm-samples-") and (folder / "samples_2x8x8x3.npz").is_file()
    assert f"writing to runs/{folder.name}" in capsys.readouterr().err
    monkeypatch.setenv(LOGDIR_ENV, str(tmp_path / "logdir"))
    assert run_cli("sample", sample) == 0
    assert (tmp_path / "logdir" / "samples_2x8x8x3.npz").is_file()
    capsys.readouterr()


def test_two_ranks_without_outdir_share_rank_0s_run_folder(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", LOGDIR_ENV)}
    env["PYTHONPATH"] = str(root)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
         str(root / "train.py"), "iddpm", *TINY_FLAGS, "--batch_size", "2", "--max_steps", "2", "--save_interval", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "runs").iterdir()  # one folder, though the ranks need not start in the same second
    assert result.stderr.count("run directory runs/iddpm-digits-") == 1  # printed by rank 0
    assert torch.load(run / "checkpoints" / "ckpt_000000002.pt", weights_only=False)["world_size"] == 2


@pytest.mark.parametrize("text", ["", "none"])
def test_create_model_takes_no_attention_where_script_util_fails(text):
    from ddx.models.unet import create_model
    from ddx.models.unet_config import parse_attention_resolutions

    assert parse_attention_resolutions(text) == ()
    model = create_model(16, 32, 1, False, False, False, text, 4, -1, True, 0.0, channel_mult=(1, 2))
    assert sum(type(m).__name__ == "AttentionBlock" for m in model.modules()) == 1  # the middle block's
