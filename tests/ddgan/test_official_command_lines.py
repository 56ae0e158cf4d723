"""train.py ddgan / sample.py ddgan at the edges: the official command lines (test_ddgan.py's --exp and
--epoch_id, train_ddgan.py's --num_process_per_node), presets whose values the user did not give, the
discriminator choice, "no attention", and the sample counts the figures rest on."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ddx.cli import sample_ddgan, train_ddgan
from ddx.data.factory import DatasetName
from ddx.models.discriminator import Discriminator_small
from ddx.train.ddgan_setup import build_discriminator, build_generator
from tests.cli_errors import expect_user_error, run_cli
from tests.ddgan.test_cli import TINY_IMAGES, TINY_TOY, flags

# One epoch of 8 batches of 8 points: --num_epoch 0 runs epoch 0 only, as the official loop.
SHORT_TOY = TINY_TOY + ["--data_length", "64", "--num_epoch", "0"]
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


def test_num_epoch_0_runs_epoch_0_and_its_netG_0_samples(tmp_path, capsys, no_torchrun):
    run_dir = tmp_path / "run"
    assert run_cli("train", ["ddgan", *SHORT_TOY, "--outdir", run_dir]) == 0
    assert (run_dir / "netG_0.pth").is_file() and not (run_dir / "netG_1.pth").exists()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 8  # 64 points in batches of 8: one epoch
    out = tmp_path / "samples"
    assert run_cli("sample", ["ddgan", "--run_dir", run_dir, "--epoch_id", "0", "--outdir", out, "--no-fused"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checkpoint"].endswith("netG_0.pth")
    assert metrics["num_samples"] == sample_ddgan.TOY_SAMPLES == 2000  # the README's toy25 figure basis
    capsys.readouterr()


def test_the_official_test_ddgan_command_line_finds_the_run_by_exp(tmp_path, monkeypatch, capsys, no_torchrun):
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", ["ddgan", *SHORT_TOY, "--exp", "exp1"]) == 0  # outdir saved_info/dd_gan/toy25/exp1
    assert (tmp_path / "saved_info/dd_gan/toy25/exp1/netG_0.pth").is_file()
    argv = ["ddgan", "--exp", "exp1", "--epoch_id", "0", "--dataset", "toy25", "--num_samples", "50",
            "--batch_size", "25", "--no-fused"]
    assert run_cli("sample", argv) == 0
    metrics = json.loads((tmp_path / "generated_samples/toy25/metrics.json").read_text())  # test_ddgan.py's folder
    assert metrics["num_samples"] == 50 and metrics["checkpoint"].endswith("exp1/netG_0.pth")
    capsys.readouterr()
    expect_user_error(capsys, "sample", ["ddgan", "--exp", "exp2", "--epoch_id", "0", "--dataset", "toy25"], 2,
                      "give --checkpoint, or --run_dir", "no folder saved_info/dd_gan/toy25/exp2")


def test_official_dataset_names_are_tried_for_the_run_folder():
    argv = ["--dataset", "lsun", "--exp", "e"]
    folders = [str(p) for p in sample_ddgan.official_run_dirs(DatasetName.LMDB, "e", argv)]
    assert folders == ["saved_info/dd_gan/lsun/e", "saved_info/dd_gan/lmdb/e", "saved_info/dd_gan/celeba_256/e"]


def test_the_readme_sample_command_needs_no_data(tmp_path, capsys):
    checkpoint = tmp_path / "netG_1200.pth"
    checkpoint.write_bytes(b"")
    args = sample_ddgan.parse_args(["--preset", "cifar10", "--checkpoint", str(checkpoint), "--num_samples", "100"])
    assert (args.num_samples, args.config.data.data_root, args.config.generator.ch_mult) == (100, None, (1, 2, 2, 2))
    # Without --num_samples: one batch as test_ddgan.py; the preset's training --batch_size 64 is not the
    # sampler's batch (200 per forward pass).
    args = sample_ddgan.parse_args(["--preset", "cifar10", "--checkpoint", str(checkpoint)])
    assert (args.batch_size, args.num_samples) == (200, 200)
    fid = sample_ddgan.parse_args(["--preset", "cifar10", "--checkpoint", str(checkpoint), "--fid", "--data_root",
                                   str(tmp_path)])
    assert fid.num_samples == 50_000  # test_ddgan.py --compute_fid
    stacked = sample_ddgan.parse_args(["--preset", "stacked_digits", "--checkpoint", str(checkpoint)])
    assert stacked.num_samples == 10_000
    expect_user_error(capsys, "sample", ["ddgan", "--preset", "cifar10", "--checkpoint", checkpoint, "--fid"], 2,
                      "dataset cifar10 reads files: give --data_root")


def test_preset_values_the_user_did_not_give_are_named_as_the_presets(tmp_path, capsys):
    # stacked_digits' --data_length belongs to stacked_digits: another dataset goes back to its own length.
    args = flags(["--preset", "stacked_digits", "--dataset", "image_folder", "--data_root", str(tmp_path),
                  "--discriminator", "small"])
    assert (args.dataset, args.data_length, args.image_size) == (DatasetName.IMAGE_FOLDER, None, 16)
    err = expect_user_error(capsys, "train", ["ddgan", "--preset", "stacked_digits", "--dataset", "image_folder"], 2,
                            "--dataset='image_folder', --data_root=None: dataset image_folder reads files",
                            "--image_size=16 (from --preset stacked_digits)", "or --discriminator small")
    assert "data_length" not in err.strip().splitlines()[-1]  # the message, not the usage lines
    # A value the user gave is named without a source, and still checked.
    expect_user_error(capsys, "train", ["ddgan", "--preset", "stacked_digits", "--dataset", "digits",
                                        "--data_length", "20"], 2, "--data_length=20: dataset digits has a fixed")
    expect_user_error(capsys, "train", ["ddgan", "--preset", "stacked_digits", "--ch_mult", "1", "2", "2", "2", "2",
                                        "2"], 2, "--image_size=16 (from --preset stacked_digits), "
                                                 "--ch_mult=(1, 2, 2, 2, 2, 2): 6 levels")
    # toy25's data_scale is for the 2-D data: on images it is not an error unless given.
    assert flags(["--preset", "toy25", "--dataset", "digits", "--ch_mult", "1", "2"]).data_scale == 1


@pytest.mark.parametrize("words", [["none"], [""], []], ids=["none", "empty-string", "no-value"])
def test_attn_resolutions_none_builds_no_attention_at_any_resolution(words):
    at_4 = train_ddgan.parse_args(TINY_IMAGES)
    without = train_ddgan.parse_args(TINY_IMAGES + ["--attn_resolutions", *words])
    assert (at_4.generator.attn_resolutions, without.generator.attn_resolutions) == ((4,), ())

    def attention_blocks(args):
        return sum("Attn" in type(m).__name__ for m in build_generator(args).modules())

    assert attention_blocks(without) == attention_blocks(at_4) - 2 == 1  # NCSN++'s middle block keeps one


def test_discriminator_flag_overrides_the_official_choice(tmp_path, capsys):
    folder = ["--dataset", "image_folder", "--data_root", str(tmp_path), "--image_size", "16", "--ch_mult", "1", "2",
              "--attn_resolutions"]
    expect_user_error(capsys, "train", ["ddgan", *folder], 2,
                      "Discriminator_large halves the image 6 times: image_size must be divisible by 64 "
                      "(or --discriminator small, which needs a multiple of 8)")
    command = train_ddgan.parse_command(folder + ["--discriminator", "small", "--ngf", "4"])
    netD = build_discriminator(command.config)
    assert isinstance(netD, Discriminator_small)
    assert train_ddgan.resolved_config(command)["discriminator_kind"] == "small"
    x = torch.zeros(4, 3, 16, 16)
    assert netD(x, torch.zeros(4, dtype=torch.long), x).shape == (4, 1)
    expect_user_error(capsys, "train", ["ddgan", *TINY_IMAGES, "--image_size", "16", "--discriminator", "large"], 2,
                      "--image_size=16, --discriminator='large': Discriminator_large halves the image 6 times")
    expect_user_error(capsys, "train", ["ddgan", "--preset", "toy25", "--discriminator", "small"], 2,
                      "the 2-D datasets train with the MLP discriminator")
    expect_user_error(capsys, "train", ["ddgan", "--preset", "toy25", "--discriminator", "medium"], 2,
                      "argument --discriminator: expected small or large")


def test_num_process_per_node_stands_for_torchrun(monkeypatch, capsys, no_torchrun):
    argv = ["--preset", "toy25", "--num_process_per_node", "4", "--lr_g", "1e-3"]
    launch = train_ddgan.parse_command(argv).launch
    assert train_ddgan.torchrun_command(launch, argv) == [
        "torchrun", "--nproc_per_node", "4", "--standalone", "train.py", "ddgan", "--preset", "toy25", "--lr_g", "1e-3"]
    launch = argv + ["--local-rank=0"]  # as torch.distributed.launch passes it
    command = train_ddgan.torchrun_command(train_ddgan.parse_command(launch).launch, launch)
    assert command[4:] == ["train.py", "ddgan", "--preset", "toy25", "--lr_g", "1e-3"]
    nodes = argv + ["--num_proc_node=2", "--node_rank", "1", "--master_address", "10.0.0.1"]
    assert train_ddgan.torchrun_command(train_ddgan.parse_command(nodes).launch, nodes)[:11] == [
        "torchrun", "--nproc_per_node", "4", "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.1",
        "--master_port", "6020"]
    launched = []
    monkeypatch.setattr(train_ddgan.subprocess, "run",
                        lambda command, check: launched.append(command) or subprocess.CompletedProcess(command, 3))
    assert run_cli("train", ["ddgan", *argv]) == 3  # torchrun's exit status
    assert launched[0][:5] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "4"]
    assert launched[0][6:] == [str(train_ddgan.TRAIN_SCRIPT), "ddgan", "--preset", "toy25", "--lr_g", "1e-3"]
    assert "torchrun --nproc_per_node 4 --standalone train.py ddgan --preset toy25" in capsys.readouterr().out
    expect_user_error(capsys, "train", ["ddgan", *argv, "--num_proc_node", "2", "--node_rank", "2"], 2,
                      "--node_rank counts the nodes from 0")


def test_launcher_flags_under_torchrun_must_match_its_processes(monkeypatch, capsys):
    for name, value in zip(TORCHRUN_VARS, ("0", "2", "0", "127.0.0.1", "29500")):
        monkeypatch.setenv(name, value)
    expect_user_error(capsys, "train", ["ddgan", "--preset", "toy25", "--num_process_per_node", "4"], 2,
                      "= 4 processes, but torchrun started 2")


def test_num_process_per_node_2_trains_on_two_ranks(tmp_path, no_torchrun):
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env["PYTHONPATH"] = str(train_ddgan.TRAIN_SCRIPT.parent)
    result = subprocess.run([sys.executable, str(train_ddgan.TRAIN_SCRIPT), "ddgan", *SHORT_TOY,
                             "--num_process_per_node", "2", "--outdir", str(tmp_path / "run")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torchrun --nproc_per_node 2 --standalone train.py ddgan" in result.stdout
    # Each of the two ranks takes half of the 64 points: 4 steps of 8 per rank make the epoch.
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and (tmp_path / "run" / "netG_0.pth").is_file()


def test_real_img_dir_is_the_fid_reference_folder(tmp_path, capsys):
    checkpoint, real = tmp_path / "netG_1200.pth", tmp_path / "real"
    checkpoint.write_bytes(b"")
    real.mkdir()
    base = ["--preset", "cifar10", "--checkpoint", str(checkpoint), "--compute_fid", "--outdir", str(tmp_path / "o")]
    args = sample_ddgan.parse_args(base + ["--real_img_dir", str(real)])  # no --data_root needed
    config, stats = sample_ddgan.fid_reference(args)
    assert (config.name, config.root, config.image_size, stats) == (
        DatasetName.IMAGE_FOLDER, str(real), 32, tmp_path / "o" / "fid_reference.npz")
    data = sample_ddgan.parse_args(base + ["--data_root", str(real), "--fid_stats", str(tmp_path / "s.npz")])
    config, stats = sample_ddgan.fid_reference(data)
    assert (config.name, config.root, stats) == (DatasetName.CIFAR10, str(real), tmp_path / "s.npz")
    expect_user_error(capsys, "sample", ["ddgan", *base, "--real_img_dir", checkpoint], 2,
                      "argument --real_img_dir: not a directory")
