"""train.py iddpm / sample.py iddpm: flag validation, presets, and a tiny end-to-end run."""

import json

import numpy as np
import torch
import pytest

from ddx.cli import sample_iddpm, train_iddpm
from ddx.cli.entry import dispatch
from ddx.diffusion import BetaSchedule, ScheduleSamplerName
from ddx.checkpoints.io import CheckpointError
from tests.iddpm._tiny import TINY_FLAGS, TINY_MODEL_FLAGS


def _error(main, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "argument --lr: expected a positive number"),
    (["--learn_sigma", "maybe"], "argument --learn_sigma: expected a boolean"),
    (["--ema_rate", "0.9,1.2"], "argument --ema_rate: EMA rates must lie in [0, 1)"),
    (["--ema_rate", "0.9,0.9"], "distinct"),
    (["--microbatch", "0"], "argument --microbatch: expected -1"),
    (["--schedule_sampler", "importance"], "invalid ScheduleSamplerName 'importance'"),
    (["--noise_schedule", "quadratic"], "invalid BetaSchedule 'quadratic'"),
    (["--timestep_respacing", "ddimx"], "argument --timestep_respacing"),
    (["--timestep_respacing", "30"], "cannot divide section of 20 steps into 30"),
    (["--attention_resolutions", "3"], "--attention_resolutions"),
    (["--num_channels", "48"], "must be multiples of 32: e.g. --num_channels 64"),
    (["--image_size", "24"], "unsupported image size 24"),
    (["--microbatch", "16"], "--microbatch must not exceed --batch_size"),
    (["--use_fp16", "True", "--amp", "bf16"], "--use_fp16 True means --amp fp16"),
    (["--dropout", "1.5"], "argument --dropout"),
    (["--preset", "mnist"], "--preset"),
    (["--resume_checkpoint", "/no/such/model000001.pt"], "file not found"),
], ids=lambda v: "_".join(v).lstrip("-") if isinstance(v, list) else "")
def test_train_flags_are_validated(argv, message, capsys, tmp_path):
    base = TINY_FLAGS + ["--batch_size", "8", "--outdir", str(tmp_path)]
    if argv[0] == "--image_size":
        base = [a for a in base if a != "--channel_mult" and a != "1,2"]
    err = _error(train_iddpm.main, base + argv, capsys)
    assert message in err


def test_train_needs_data_not_an_outdir(capsys):
    err = _error(train_iddpm.main, ["--image_size", "32"], capsys)
    assert "give --data_dir" in err and "outdir" not in err.strip().splitlines()[-1]


def test_official_defaults_and_presets():
    config = train_iddpm.parse_args(["--data_dir", "x", "--outdir", "y"])
    model, diffusion, train, run = config.model, config.diffusion, config.train, config.run
    assert (model.image_size, model.num_channels, model.attention_resolutions, diffusion.rescale_timesteps,
            diffusion.rescale_learned_sigmas, train.ema_rate, train.batch_size, train.lr, train.microbatch,
            run.log_interval, run.save_interval, diffusion.noise_schedule) == (
        64, 128, (16, 8), True, True, (0.9999,), 1, 1e-4, -1, 10, 10000, BetaSchedule.LINEAR)
    cifar = train_iddpm.parse_args(["--preset", "cifar10", "--data_dir", "x", "--outdir", "y", "--lr", "3e-4"])
    assert (cifar.model.image_size, cifar.model.num_channels, cifar.model.num_res_blocks, cifar.model.learn_sigma,
            cifar.model.dropout, cifar.diffusion.diffusion_steps, cifar.diffusion.noise_schedule,
            cifar.train.batch_size, cifar.train.lr) == (32, 128, 3, True, 0.3, 4000, BetaSchedule.COSINE, 128, 3e-4)
    digits = train_iddpm.parse_args(["--preset", "digits", "--outdir", "y"])
    m, d, t = digits.model, digits.diffusion, digits.train
    assert (m.image_size, m.num_channels, m.channel_mult, m.num_res_blocks, m.attention_resolutions, m.num_heads,
            m.dropout, m.learn_sigma, d.diffusion_steps, d.noise_schedule, d.rescale_learned_sigmas,
            d.rescale_timesteps, t.schedule_sampler, t.lr, t.weight_decay, t.batch_size, t.ema_rate) == (
        16, 32, (1, 2, 2), 2, (8,), 4, 0.0, True, 1000, BetaSchedule.COSINE, True, True,
        ScheduleSamplerName.UNIFORM, 2e-4, 0.0, 64, (0.999,))
    assert digits.diffusion_config().learn_sigma  # one learn_sigma, the model's, feeds the diffusion
    from ddx.models.unet import build_unet

    model = build_unet(digits.model)
    assert model.out[-1].out_channels == 6


def test_amp_and_use_fp16_are_the_execution_precision():
    from ddx.execution import Precision

    base = TINY_FLAGS + ["--outdir", "y"]
    assert train_iddpm.parse_args(base + ["--amp", "bf16"]).execution.precision is Precision.BF16
    assert train_iddpm.parse_args(base + ["--precision", "bf16"]).execution.precision is Precision.BF16
    assert train_iddpm.parse_args(base + ["--use_fp16", "True"]).execution.precision is Precision.FP16
    assert train_iddpm.parse_args(base + ["--amp", "none"]).execution.precision is Precision.FP32
    assert train_iddpm.parse_args(base + ["--num_threads", "3"]).execution.threads == 3


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    argv = TINY_FLAGS + ["--batch_size", "8", "--max_steps", "3", "--log_interval", "1", "--save_interval", "2",
                         "--ema_rate", "0.9,0.99", "--outdir", str(root)]
    assert dispatch("train", ["iddpm"] + argv) == 0
    return root


def test_train_writes_config_metrics_checkpoints_and_exports(tiny_run):
    record = json.loads((tiny_run / "config.json").read_text())
    assert (record["format"], record["family"]) == ("ddx-run/2", "iddpm")
    assert record["command"][:2] == ["train.py", "iddpm"] and "--ema_rate" in record["command"]
    config = record["config"]
    assert config["train"]["ema_rate"] == [0.9, 0.99] and config["model"]["image_size"] == 8
    assert config["diffusion"]["noise_schedule"] == "cosine" and config["train"]["lr"] == 1e-4
    assert config["execution"]["fused"] is False and config["run"]["outdir"] == str(tiny_run)
    assert record["world_size"] == 1 and record["num_parameters"] > 0
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == ["ckpt_000000002.pt", "ckpt_000000003.pt"]
    for name in ("model000003.pt", "ema_0.9_000003.pt", "ema_0.99_000003.pt", "opt000003.pt"):
        assert (tiny_run / name).is_file()


def test_sample_writes_the_official_npz_and_a_grid(tiny_run, tmp_path):
    argv = ["iddpm", "--model_path", str(tiny_run), "--num_samples", "5", "--batch_size", "3",
            "--timestep_respacing", "4", "--no-fused", "--outdir", str(tmp_path), "--seed", "1"]
    assert dispatch("sample", argv) == 0
    with np.load(tmp_path / "samples_5x8x8x3.npz") as f:
        assert f.files == ["arr_0"]
        arr = f["arr_0"]
    assert arr.dtype == np.uint8 and arr.shape == (5, 8, 8, 3)
    assert (tmp_path / "samples_5x8x8x3.png").is_file()
    # DDIM from the official model file (flags given explicitly) is deterministic given the seed.
    official = ["--model_path", str(tiny_run / "ema_0.99_000003.pt")] + TINY_MODEL_FLAGS + [
        "--num_samples", "2", "--batch_size", "2", "--use_ddim", "True", "--timestep_respacing", "ddim5"]
    for out in ("a", "b"):
        assert sample_iddpm.main(official + ["--outdir", str(tmp_path / out)]) == 0
    a, b = (np.load(tmp_path / out / "samples_2x8x8x3.npz")["arr_0"] for out in ("a", "b"))
    assert np.array_equal(a, b)


def test_class_conditional_samples_carry_labels(tmp_path):
    from ddx.checkpoints.iddpm_official import export_official
    from ddx.models.unet import build_unet

    config = train_iddpm.parse_args(TINY_FLAGS + ["--class_cond", "True", "--outdir", str(tmp_path)])
    export_official(tmp_path, 0, build_unet(config.model).state_dict(), {}, None)
    argv = ["--model_path", str(tmp_path / "model000000.pt"), "--class_cond", "True", "--num_samples", "3",
            "--batch_size", "2", "--timestep_respacing", "2", "--outdir", str(tmp_path)] + TINY_MODEL_FLAGS
    assert sample_iddpm.main(argv) == 0
    with np.load(tmp_path / "samples_3x8x8x3.npz") as f:
        assert f.files == ["arr_0", "arr_1"] and f["arr_1"].shape == (3,) and f["arr_0"].dtype == np.uint8


def test_nll_reports_bits_per_dim(tiny_run, tmp_path, capsys):
    argv = ["iddpm", "nll", "--model_path", str(tiny_run), "--num_samples", "5", "--batch_size", "4",
            "--no-fused", "--outdir", str(tmp_path)]
    assert dispatch("sample", argv) == 0
    result = json.loads((tmp_path / "nll.json").read_text())
    assert result["num_images"] == 5 and result["timesteps"] == 20
    assert result["total_bpd"] == pytest.approx(result["prior_bpd"] + result["vb"], rel=1e-6)
    assert result["total_bpd"] > 0 and result["mse"] > 0
    assert np.load(tmp_path / "vb_terms.npz")["arr_0"].shape == (20,)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["total_bpd"] == result["total_bpd"]


@pytest.mark.parametrize("argv, message", [
    (["--model_path", "/no/such/file.pt"], "not found"),
    (["--num_samples", "0"], "argument --num_samples"),
    (["--weights", "best"], "argument --weights"),
    (["--ema_rate", "fast"], "argument --ema_rate: expected a number"),
    (["--ema_rate", "0.5"], "holds EMA rates 0.9, 0.99, not 0.5"),
], ids=["missing-model", "num_samples", "weights", "ema_rate-text", "ema_rate-absent"])
def test_sample_flags_are_validated(argv, message, tiny_run, capsys):
    base = [] if argv[0] == "--model_path" else ["--model_path", str(tiny_run)]
    assert message in _error(sample_iddpm.main, base + argv, capsys)


def test_sample_from_an_official_file_needs_matching_flags(tiny_run, capsys):
    with pytest.raises(CheckpointError, match="do not fit the model.*the file was built with --num_channels 32"):
        sample_iddpm.main(["--model_path", str(tiny_run / "model000003.pt"), "--outdir", "/tmp/x"])


def test_sample_mode_runs_the_fast_sampler(tiny_run, tmp_path, capsys):
    base = ["iddpm", "--model_path", str(tiny_run), "--num_samples", "2", "--batch_size", "2",
            "--timestep_respacing", "3", "--no-fused", "--seed", "4"]
    for out, mode in (("default", []), ("eager", ["--mode", "eager"])):
        assert dispatch("sample", base + mode + ["--outdir", str(tmp_path / out)]) == 0
    a, b = (np.load(tmp_path / out / "samples_2x8x8x3.npz")["arr_0"] for out in ("default", "eager"))
    assert np.array_equal(a, b)  # EAGER is the default: the same draws
    with pytest.raises(SystemExit):
        sample_iddpm.parse_args(base[1:] + ["--mode", "fast"])
    assert "argument --sampler/--mode: invalid SamplerMode 'fast'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert dispatch("sample", base + ["--mode", "graphs", "--outdir", str(tmp_path / "g")]) == 2
        assert "--mode graphs needs a CUDA device" in capsys.readouterr().err


TIMING_KEYS = {"mode", "dtype", "channels_last", "device", "batch_size", "images_per_s", "batch_latency_ms",
               "steady_batches", "warmup_s", "sampling_s", "timing_batch_extra"}


@pytest.mark.parametrize("extra, dtype, channels_last", [
    ([], "fp32", False),
    (["--dtype", "bf16", "--channels_last"], "bf16", True),
    (["--dtype", "fp16"], "fp16", False),  # fp16 autocast runs on the CPU: not refused
], ids=["fp32", "bf16-channels-last", "fp16"])
def test_sample_dtype_layout_and_metrics(tiny_run, tmp_path, capsys, extra, dtype, channels_last):
    argv = ["iddpm", "--model_path", str(tiny_run), "--num_samples", "4", "--batch_size", "2",
            "--timestep_respacing", "3", "--no-fused", "--seed", "4", "--outdir", str(tmp_path)] + extra
    assert dispatch("sample", argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())  # beside the npz
    assert TIMING_KEYS <= set(metrics) and (metrics["num_samples"], metrics["timesteps"]) == (4, 3)
    assert (metrics["mode"], metrics["dtype"], metrics["channels_last"], metrics["batch_size"]) == (
        "eager", dtype, channels_last, 2)
    assert metrics["steady_batches"] == 1 and not metrics["timing_batch_extra"]
    assert metrics["images_per_s"] > 0 and metrics["batch_latency_ms"] > 0 and metrics["warmup_s"] > 0
    layout = "channels_last" if channels_last else "NCHW"
    assert f"sampling (eager {dtype} {layout} on cpu): " in capsys.readouterr().out
    assert (tmp_path / "samples_4x8x8x3.npz").is_file()


def test_sampling_precision_spellings_and_nll_has_no_sampling_flags(tiny_run, capsys):
    from ddx.execution import MemoryFormat, Precision

    base = ["--model_path", str(tiny_run)]
    for flag in ("--dtype", "--amp", "--precision"):
        assert sample_iddpm.parse_args(base + [flag, "bf16"])[0].execution.precision is Precision.BF16
    assert sample_iddpm.parse_args(base + ["--channels_last"])[0].execution.memory_format is MemoryFormat.CHANNELS_LAST
    assert sample_iddpm.parse_args(base)[0].execution.memory_format is MemoryFormat.CONTIGUOUS
    for flag in (["--dtype", "bf16"], ["--channels_last"]):
        with pytest.raises(SystemExit):
            sample_iddpm.parse_args(["nll"] + base + flag)
        assert "unrecognized arguments" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            train_iddpm.parse_args(TINY_FLAGS + ["--outdir", "y"] + flag)  # training implements neither yet
        assert "unrecognized arguments" in capsys.readouterr().err
