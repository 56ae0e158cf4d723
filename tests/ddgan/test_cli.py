"""train.py ddgan / sample.py ddgan: flag validation messages, presets under explicit flags, and tiny end-to-end
runs (2-D and images) whose outputs sample.py writes in the documented formats."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ddx.checkpoints.ddgan_official import save_official_generator
from ddx.train.ddgan_official_state import save_official_content
from ddx.cli import sample_ddgan, train_ddgan
from ddx.data import NUM_STACKED_MODES
from ddx.data.factory import DatasetName, build_dataset
from ddx.diffusion.ddgan import DDGANDiffusionConfig
from ddx.execution import ExecutionOptions
from ddx.ops import set_fused
from ddx.sample.ddgan import generate
from ddx.train.ddgan_setup import build_generator, data_config
from ddx.utils.config_io import flat_values
from tests.tolerances import assert_close

TINY_TOY = ["--preset", "toy25", "--toy_hidden", "16", "--toy_layers", "1", "--t_emb_dim", "4", "--batch_size", "8",
            "--log_interval", "2", "--no-fused"]
TINY_IMAGES = ["--dataset", "digits", "--image_size", "8", "--ch_mult", "1", "2", "--num_channels_dae", "8",
               "--num_res_blocks", "1", "--attn_resolutions", "4", "--nz", "4", "--z_emb_dim", "8", "--n_mlp", "1",
               "--t_emb_dim", "8", "--ngf", "2", "--batch_size", "4", "--num_timesteps", "2", "--no-fused"]


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--preset", "imagenet"], "unknown ddgan preset 'imagenet'"),
    (["--preset", "toy25", "--batch_size", "0"], "expected a positive integer, got 0"),
    (["--preset", "toy25", "--ema_decay", "1"], "expected a number in [0, 1)"),
    (["--preset", "toy25", "--beta_min", "5", "--beta_max", "1"], "need beta_min <= beta_max"),
    (["--preset", "toy25", "--use_geometric", "--beta_max", "2"], "negative alpha_bars"),
    (["--dataset", "cifar10", "--ch_mult", "1", "2"], "give --data_root"),
    (["--dataset", "cifar10", "--data_root", "/no/such/dir", "--ch_mult", "1", "2"], "directory not found"),
    (["--dataset", "digits"], "image data needs --ch_mult"),
    (["--dataset", "digits", "--image_size", "12", "--ch_mult", "1", "2", "--attn_resolutions"],
     "image_size must be divisible by 8"),
    (["--dataset", "digits", "--image_size", "16", "--ch_mult", "1", "2", "2", "2", "2", "2", "--attn_resolutions"],
     "divisible by 32"),
    (["--dataset", "digits", "--image_size", "16", "--ch_mult", "1", "2", "--attn_resolutions", "4"],
     "attention at [4]"),
    (["--dataset", "digits", "--image_size", "16", "--ch_mult", "1", "2", "--batch_size", "6"], "multiple of 4"),
    (["--dataset", "digits", "--ch_mult", "1", "2", "--data_scale", "4"], "--data_scale applies to the 2-D"),
    (["--dataset", "toy25", "--data_root", "."], "takes no --data_root"),
    (["--dataset", "digits", "--ch_mult", "1", "2", "--data_length", "100"], "takes no --data_length"),
    (["--resblock_type", "unet"], "invalid ResblockType 'unet'"),
], ids=["dataset", "preset", "batch", "ema-decay", "beta-order", "geometric", "no-root", "missing-root",
        "no-ch-mult", "small-d-size", "ch-mult-size", "attn", "stddev-group", "scale-images", "toy-root", "digits-length",
    "resblock"])
def test_bad_flags_exit_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_ddgan.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def flags(argv):
    """The resolved run configuration's fields by their flat (flag) names."""
    return SimpleNamespace(**flat_values(train_ddgan.parse_args(argv)))


def test_preset_defaults_under_explicit_flags():
    args = flags(["--preset", "toy25", "--lr_g", "1e-3", "--nz", "5"])
    assert (args.lr_g, args.nz, args.dataset, args.use_ema) == (1e-3, 5, DatasetName.TOY25, True)
    cifar = flags(["--preset", "cifar10", "--data_root", "."])
    assert (cifar.ch_mult, cifar.n_mlp, cifar.lazy_reg, cifar.r1_gamma, cifar.lr_d, cifar.lr_g, cifar.num_epoch,
            cifar.batch_size, cifar.ema_decay) == ((1, 2, 2, 2), 4, 15, 0.02, 1.25e-4, 1.6e-4, 1800, 64, 0.9999)
    celeba = flags(["--preset", "celeba_256", "--data_root", "."])
    assert (celeba.num_timesteps, celeba.image_size, celeba.ema_decay, celeba.r1_gamma) == (2, 256, 0.9999, 2.0)
    official = flags(["--dataset", "stackmnist", "--ch_mult", "1", "2", "2"])
    assert (official.dataset, official.seed, official.lazy_reg, official.centered) == (
        DatasetName.STACKED_DIGITS, 1024, None, True)
    assert flags(["--preset", "toy25", "--centered"]).centered is False  # official store_false


def test_stacked_preset_epoch_holds_every_mode():
    args = train_ddgan.parse_args(["--preset", "stacked_digits"])
    dataset = build_dataset(data_config(args))
    assert len(dataset) == args.data.data_length == 20 * 1437
    assert dataset.modes.unique().numel() == NUM_STACKED_MODES
    default = build_dataset(data_config(train_ddgan.parse_args(["--preset", "stacked_digits", "--data_length", "2874"])))
    assert default.modes.unique().numel() < NUM_STACKED_MODES  # why the preset draws 10x the default


def test_toy_train_then_sample_end_to_end(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train_ddgan.main(TINY_TOY + ["--max_steps", "4", "--outdir", str(run_dir)]) == 0
    record = json.loads((run_dir / "config.json").read_text())
    assert (record["format"], record["family"], record["command"][:4]) == ("ddx-run/2", "ddgan", ["train.py", "ddgan", "--preset", "toy25"])
    config = record["config"]
    assert config["toy"]["toy_hidden"] == 16 and config["data"]["dataset"] == "toy25"  # enums by value
    assert config["train"]["use_ema"] is True and record["discriminator_kind"] == "toy"
    assert config["execution"]["threads"] == 1  # the 2-D MLPs on the CPU: one thread, recorded
    assert record["num_parameters"]["generator"] == sum(p.numel() for p in build_generator(
        train_ddgan.parse_args(TINY_TOY)).parameters())
    assert [m["step"] for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())] == [2, 4]
    out = tmp_path / "samples"
    assert sample_ddgan.main(["--run_dir", str(run_dir), "--num_samples", "30", "--batch_size", "7",
                              "--outdir", str(out), "--no-fused"]) == 0
    points = np.load(out / "samples.npz")["arr_0"]
    assert points.shape == (30, 2) and points.dtype == np.float32
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_modes"] == 25 and 0 <= metrics["modes_covered"] <= 25 and metrics["num_samples"] == 30
    assert Image.open(out / "scatter.png").size == (512, 512)
    assert '"modes_covered"' in capsys.readouterr().out


def test_resume_from_an_official_content_file(tmp_path):
    first = tmp_path / "first"
    train_ddgan.main(TINY_TOY + ["--max_steps", "3", "--outdir", str(first)])
    payload = torch.load(first / "checkpoints" / "ckpt_000000003.pt", weights_only=True)
    command = train_ddgan.parse_command(TINY_TOY)
    second = tmp_path / "second"
    second.mkdir()
    save_official_content(second / "content.pth", payload["trainer"], build_generator(command.config), 0,
                          train_ddgan.official_namespace(command))
    assert train_ddgan.main(TINY_TOY + ["--max_steps", "5", "--outdir", str(second), "--resume"]) == 0
    steps = [m["step"] for m in map(json.loads, (second / "metrics.jsonl").read_text().splitlines())]
    assert steps == [4]
    resumed = torch.load(second / "checkpoints" / "ckpt_000000005.pt", weights_only=True)
    assert resumed["trainer"]["global_step"] == 5


def test_image_train_then_sample_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    assert train_ddgan.main(TINY_IMAGES + ["--max_steps", "1", "--outdir", str(run_dir), "--use_ema"]) == 0
    out = tmp_path / "samples"
    assert sample_ddgan.main(["--run_dir", str(run_dir), "--num_samples", "5", "--batch_size", "2",
                              "--outdir", str(out), "--no-fused"]) == 0
    pixels = np.load(out / "samples.npz")["arr_0"]
    assert pixels.shape == (5, 8, 8, 3) and pixels.dtype == np.uint8
    files = sorted(p.name for p in (out / "images").iterdir())
    assert files == [f"{i:06d}.png" for i in range(5)]
    assert np.array_equal(np.asarray(Image.open(out / "images" / "000003.png")), pixels[3])  # lossless
    assert (out / "grid.png").is_file()


def test_sample_from_an_official_generator_file(tmp_path):
    args = train_ddgan.parse_args(TINY_IMAGES)
    torch.manual_seed(4)
    generator = set_fused(build_generator(args), False)
    for p in generator.parameters():
        p.data.normal_(0, 0.1)
    save_official_generator(tmp_path / "netG_7.pth", generator.state_dict())
    out = tmp_path / "samples"
    ngf = TINY_IMAGES.index("--ngf")
    flags = TINY_IMAGES[:ngf] + TINY_IMAGES[ngf + 2:]  # sampling needs no discriminator flags
    assert sample_ddgan.main(flags + ["--checkpoint", str(tmp_path / "netG_7.pth"), "--num_samples", "3",
                                      "--seed", "9", "--outdir", str(out)]) == 0
    expected = generate(generator, DDGANDiffusionConfig(num_timesteps=2), 4, 3, 200, (3, 8, 8), 9,
                        ExecutionOptions(fused=False))
    pixels = np.load(out / "samples.npz")["arr_0"]
    assert np.array_equal(pixels, ((expected.clamp(-1, 1) + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8)
                          .permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("argv, message", [
    (["--preset", "toy25"], "give --checkpoint, or --run_dir"),
    (["--preset", "toy25", "--checkpoint", "/no/such/file.pth"], "file not found"),
    (["--preset", "toy25", "--fid", "--checkpoint", __file__], "FID applies to image datasets"),
    (["--preset", "toy25", "--epoch_id", "3", "--checkpoint", __file__], "only one of --checkpoint, --epoch_id"),
], ids=["no-source", "missing-file", "fid-toy", "two-sources"])
def test_sample_flag_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        sample_ddgan.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.fixture
def official_generator(tmp_path):
    """(netG_7.pth of a tiny random NCSN++, the sampling flags that rebuild it)."""
    args = train_ddgan.parse_args(TINY_IMAGES)
    torch.manual_seed(4)
    generator = build_generator(args)
    for p in generator.parameters():
        p.data.normal_(0, 0.1)
    save_official_generator(tmp_path / "netG_7.pth", generator.state_dict())
    ngf = TINY_IMAGES.index("--ngf")
    return tmp_path / "netG_7.pth", TINY_IMAGES[:ngf] + TINY_IMAGES[ngf + 2:]


TIMING_KEYS = {"mode", "dtype", "channels_last", "device", "batch_size", "images_per_s", "batch_latency_ms",
               "steady_batches", "warmup_s", "sampling_s", "timing_batch_extra"}


@pytest.mark.parametrize("extra, dtype, channels_last", [
    (["--dtype", "bf16", "--channels_last"], "bf16", True),
    (["--dtype", "fp16"], "fp16", False),  # fp16 autocast runs on the CPU (torch >= 2.x): not refused
], ids=["bf16-channels-last", "fp16"])
def test_sample_dtype_and_layout_flags_and_timing(official_generator, tmp_path, capsys, extra, dtype, channels_last):
    path, flags = official_generator
    base = flags + ["--checkpoint", str(path), "--num_samples", "5", "--batch_size", "2", "--seed", "9"]
    assert sample_ddgan.main(base + ["--outdir", str(tmp_path / "fp32")]) == 0
    assert sample_ddgan.main(base + extra + ["--outdir", str(tmp_path / "other")]) == 0
    out = capsys.readouterr().out
    assert f"sampling (eager {dtype} {'channels_last' if channels_last else 'NCHW'} on cpu): " in out
    metrics = json.loads((tmp_path / "other" / "metrics.json").read_text())
    assert TIMING_KEYS <= set(metrics) and metrics["num_samples"] == 5
    assert (metrics["mode"], metrics["dtype"], metrics["channels_last"], metrics["batch_size"]) == (
        "eager", dtype, channels_last, 2)
    assert metrics["steady_batches"] == 1 and not metrics["timing_batch_extra"]  # batches 2, 2, 1: the second
    assert metrics["images_per_s"] > 0 and metrics["batch_latency_ms"] > 0 and metrics["warmup_s"] > 0
    fp32, other = (np.load(tmp_path / name / "samples.npz")["arr_0"].astype(int) for name in ("fp32", "other"))
    assert np.abs(fp32 - other).max() <= 2  # uint8 levels: autocast rounding (tests/sample/test_sampling_options.py)


def test_sample_flags_of_the_sampler_only(official_generator, capsys):
    path, flags = official_generator
    base = flags + ["--checkpoint", str(path), "--num_samples", "2"]
    command = sample_ddgan.parse_args(base + ["--dtype", "bf16", "--channels_last", "--mode", "compiled"])
    assert command.config.execution.to_dict() | {"device": None} == ExecutionOptions(
        fused=False, precision="bf16", memory_format="channels_last", sampler="compiled").to_dict()
    with pytest.raises(SystemExit):
        sample_ddgan.parse_args(base + ["--dtype", "fp8"])
    assert "argument --dtype: invalid Precision 'fp8'; choose from: fp32, bf16, fp16" in capsys.readouterr().err
    for flag in (["--dtype", "bf16"], ["--channels_last"]):  # training implements neither yet: no such flag
        with pytest.raises(SystemExit):
            train_ddgan.parse_args(TINY_TOY + flag)
        assert f"unrecognized arguments: {' '.join(flag)}" in capsys.readouterr().err


def test_sample_compiled_gives_the_eager_points(tmp_path):
    run_dir = tmp_path / "run"
    assert train_ddgan.main(TINY_TOY + ["--max_steps", "2", "--outdir", str(run_dir)]) == 0
    base = ["--run_dir", str(run_dir), "--num_samples", "30", "--batch_size", "10", "--seed", "3", "--no-fused"]
    for mode in ("eager", "compiled"):  # Inductor on the CPU: about 5 s for the 2-D MLP
        assert sample_ddgan.main(base + ["--mode", mode, "--outdir", str(tmp_path / mode)]) == 0
    eager, compiled = (torch.from_numpy(np.load(tmp_path / mode / "samples.npz")["arr_0"]) for mode in ("eager", "compiled"))
    assert_close(compiled, eager)
    metrics = json.loads((tmp_path / "compiled" / "metrics.json").read_text())
    assert metrics["mode"] == "compiled" and metrics["steady_batches"] == 2  # the first batch compiled


def test_sample_graphs_on_the_cpu_is_refused(official_generator, capsys):
    from ddx.cli.entry import dispatch

    path, flags = official_generator
    # --device cpu: the refusal is the CPU's, so the test holds on a machine with a GPU too
    argv = ["ddgan"] + flags + ["--checkpoint", str(path), "--mode", "graphs", "--device", "cpu"]
    assert dispatch("sample", argv) == 2
    assert "GRAPHS needs a CUDA device" in capsys.readouterr().err
