"""Run-time and checkpoint errors of train.py / sample.py, both families: one message naming the problem and
the fix, exit 2 for bad usage and 1 at run time, never a traceback (tests/cli_errors.py).

Two tiny runs (a 2-D DDGAN and an 8x8 IDDPM, 2 steps each) are made once; a case that changes a run works
on a copy of it.
"""

import shutil

import pytest
import torch

from ddx.checkpoints.ddgan_official import save_official_generator
from ddx.train import load_checkpoint
from tests.cli_errors import expect_user_error, run_cli
from tests.iddpm._tiny import TINY_MODEL_FLAGS

TOY = ["--preset", "toy25", "--toy_hidden", "16", "--toy_layers", "1", "--t_emb_dim", "4", "--no-fused"]
DDGAN_TRAIN = TOY + ["--batch_size", "8", "--log_interval", "2"]
IDDPM_FLAGS = ["--dataset", "digits"] + TINY_MODEL_FLAGS + ["--log_interval", "1"]
IDDPM_TRAIN = IDDPM_FLAGS + ["--batch_size", "4"]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")


@pytest.fixture(scope="module", autouse=True)
def _threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ddgan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddgan") / "run"
    assert run_cli("train", ["ddgan", *DDGAN_TRAIN, "--max_steps", "2", "--outdir", root]) == 0
    return root


@pytest.fixture(scope="module")
def iddpm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("iddpm") / "run"
    assert run_cli("train", ["iddpm", *IDDPM_TRAIN, "--max_steps", "2", "--outdir", root]) == 0
    return root


def _copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "copy")


@NO_GPU
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_train_on_a_missing_gpu(device, tmp_path, capsys):
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--max_steps", "1", "--outdir", tmp_path / "ddgan",
                                        "--device", device], 2, f"--device {device}", "available here: cpu")
    # Both families check availability in one place (ddx.train.distributed.resolve_device).
    expect_user_error(capsys, "train", ["iddpm", *IDDPM_TRAIN, "--max_steps", "1", "--outdir", tmp_path / "iddpm",
                                        "--device", device], 2, "--device", device, "available")


@NO_GPU
def test_sample_on_a_missing_gpu(ddgan_run, iddpm_run, tmp_path, capsys):
    expect_user_error(capsys, "sample", ["ddgan", "--run_dir", ddgan_run, "--device", "cuda", "--outdir", tmp_path],
                      2, "--device cuda", "available here: cpu", "--device cpu")
    expect_user_error(capsys, "sample", ["iddpm", "--model_path", iddpm_run, "--device", "cuda", "--num_samples", "1",
                                         "--outdir", tmp_path], 2, "--device", "cuda", "available")


def test_a_device_that_is_no_device(tmp_path, capsys):
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--outdir", tmp_path, "--device", "gpu"], 2,
                      "--device 'gpu' is not a device name")


@pytest.mark.parametrize("model, flags", [("ddgan", DDGAN_TRAIN), ("iddpm", IDDPM_TRAIN)], ids=["ddgan", "iddpm"])
def test_outdir_that_is_a_file_or_read_only(model, flags, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    for outdir in (tmp_path / "file", tmp_path / "file" / "run"):
        expect_user_error(capsys, "train", [model, *flags, "--max_steps", "1", "--outdir", outdir], 2,
                          "is a file", "--outdir")
    import ddx.train.rundir as rundir

    # The tests run as root here, which writes anywhere; the check is os.access's answer.
    monkeypatch.setattr(rundir.os, "access", lambda path, mode: False)
    expect_user_error(capsys, "train", [model, *flags, "--max_steps", "1", "--outdir", tmp_path / "ro"], 2,
                      "is read-only", "--outdir a folder you can write to")


def test_ddgan_resume_with_nothing_to_resume(tmp_path, capsys):
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--max_steps", "1", "--outdir", tmp_path, "--resume"],
                      1, "nothing to resume", "ckpt_<step>.pt", "content.pth", "leave out --resume")


def test_ddgan_reusing_a_run_directory_without_resume(ddgan_run, tmp_path, capsys):
    run = _copy(ddgan_run, tmp_path)
    config = (run / "config.json").read_text()
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--toy_hidden", "32", "--max_steps", "3", "--outdir",
                                        run], 2, "already holds the checkpoints", "add --resume", "another --outdir")
    assert (run / "config.json").read_text() == config  # the run's own, which sample.py --run_dir reads


def test_resume_with_another_batch_size(ddgan_run, iddpm_run, tmp_path, capsys):
    ddgan = shutil.copytree(ddgan_run, tmp_path / "ddgan")
    expect_user_error(capsys, "train", ["ddgan", *TOY, "--batch_size", "16", "--max_steps", "3", "--outdir", ddgan,
                                        "--resume"], 2, "written with --batch_size 8", "this run has --batch_size 16",
                      "resume with --batch_size 8")
    iddpm = shutil.copytree(iddpm_run, tmp_path / "iddpm")
    expect_user_error(capsys, "train", ["iddpm", *IDDPM_FLAGS, "--batch_size", "6", "--max_steps", "3", "--outdir", iddpm], 2,
                      "written with --batch_size 4", "this run has --batch_size 6")
    for run, original in ((ddgan, ddgan_run), (iddpm, iddpm_run)):  # a resume that did not start keeps the config
        assert (run / "config.json").read_text() == (original / "config.json").read_text()


@pytest.mark.parametrize("model", ["ddgan", "iddpm"])
def test_corrupt_newest_checkpoint_is_skipped(model, ddgan_run, iddpm_run, tmp_path, capsys):
    run = _copy(ddgan_run if model == "ddgan" else iddpm_run, tmp_path)
    good = run / "checkpoints" / "ckpt_000000002.pt"
    cut = run / "checkpoints" / "ckpt_000000009.pt"
    cut.write_bytes(good.read_bytes()[:4096])  # a copy cut short (a full disk, a killed transfer)
    flags = [*DDGAN_TRAIN, "--resume"] if model == "ddgan" else IDDPM_TRAIN
    assert run_cli("train", [model, *flags, "--max_steps", "3", "--outdir", run]) == 0
    err = capsys.readouterr().err
    assert "skipping the corrupt checkpoint" in err and str(cut) in err and "ckpt_000000002.pt" in err
    assert f"resumed from {good} at step 2" in err
    assert not cut.exists() and cut.with_name(cut.name + ".corrupt").is_file()
    assert load_checkpoint(run / "checkpoints" / "ckpt_000000003.pt")["loop"]["step"] == 3


def test_every_checkpoint_corrupt_is_an_error(ddgan_run, tmp_path, capsys):
    run = _copy(ddgan_run, tmp_path)
    (run / "checkpoints" / "ckpt_000000002.pt").write_bytes(b"")
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--max_steps", "3", "--outdir", run, "--resume"], 1,
                      "every checkpoint in", "is corrupt", "ckpt_000000002.pt")


def test_sample_ddgan_given_an_iddpm_file(iddpm_run, tmp_path, capsys):
    ckpt = iddpm_run / "checkpoints" / "ckpt_000000002.pt"
    expect_user_error(capsys, "sample", ["ddgan", *TOY, "--checkpoint", ckpt, "--outdir", tmp_path], 1,
                      f"{ckpt} is a ddx IDDPM checkpoint", f"use sample.py iddpm --model_path {ckpt}")
    for name in ("model000002.pt", "ema_0.9999_000002.pt"):
        expect_user_error(capsys, "sample", ["ddgan", *TOY, "--checkpoint", iddpm_run / name, "--outdir", tmp_path],
                          1, "is an IDDPM UNet state_dict", "use sample.py iddpm")
    expect_user_error(capsys, "sample", ["ddgan", *TOY, "--checkpoint", iddpm_run / "opt000002.pt",
                                         "--outdir", tmp_path], 1, "is an optimizer state", "give a generator's file")


def test_sample_iddpm_given_a_ddgan_file(ddgan_run, tmp_path, capsys):
    ckpt = ddgan_run / "checkpoints" / "ckpt_000000002.pt"
    base = ["iddpm", *TINY_MODEL_FLAGS, "--num_samples", "1", "--outdir", tmp_path]
    expect_user_error(capsys, "sample", [*base, "--model_path", ckpt], 2, f"{ckpt} is a ddx DDGAN checkpoint",
                      f"use sample.py ddgan --checkpoint {ckpt}")
    generator = tmp_path / "netG_3.pth"
    save_official_generator(generator, load_checkpoint(ckpt)["trainer"]["netG"])
    expect_user_error(capsys, "sample", [*base, "--model_path", generator], 2, "is a DDGAN generator state_dict",
                      "use sample.py ddgan")


def test_weights_that_do_not_fit_the_flags(ddgan_run, iddpm_run, tmp_path, capsys):
    expect_user_error(capsys, "sample", ["iddpm", "--model_path", iddpm_run, "--num_channels", "64", "--num_samples",
                                         "1", "--outdir", tmp_path], 1, "do not fit the model the flags describe",
                      "time_embed.0.weight (file 128x32, flags 256x64)", "--num_channels 32 (flags: 64)")
    expect_user_error(capsys, "sample", ["iddpm", "--model_path", iddpm_run, "--learn_sigma", "False", "--num_samples",
                                         "1", "--outdir", tmp_path], 1, "--learn_sigma True (flags: False)")
    expect_user_error(capsys, "sample", ["ddgan", "--run_dir", ddgan_run, "--toy_hidden", "32", "--outdir", tmp_path],
                      1, "do not fit the model the flags describe", "net.0.weight (file 16x8, flags 32x8)",
                      "--toy_hidden")


@pytest.mark.parametrize("damage", ["zero-byte", "half", "random", "cut"])
def test_broken_checkpoint_files(damage, ddgan_run, iddpm_run, tmp_path, capsys):
    for model, run in (("ddgan", ddgan_run), ("iddpm", iddpm_run)):
        data = (run / "checkpoints" / "ckpt_000000002.pt").read_bytes()
        broken = tmp_path / f"{model}.pt"
        broken.write_bytes({"zero-byte": b"", "half": data[:len(data) // 2], "random": torch.randint(
            0, 256, (5000,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes(),
                            "cut": data[:-200]}[damage])
        if model == "ddgan":
            argv, code = ["ddgan", *TOY, "--checkpoint", broken, "--outdir", tmp_path], 1
        else:
            argv, code = ["iddpm", *TINY_MODEL_FLAGS, "--model_path", broken, "--outdir", tmp_path], 2
        expect_user_error(capsys, "sample", argv, code, f"checkpoint {broken} is corrupt or truncated",
                          "copy it again")


def test_epoch_id_without_its_file_lists_the_epochs(ddgan_run, tmp_path, capsys):
    run = _copy(ddgan_run, tmp_path)
    expect_user_error(capsys, "sample", ["ddgan", "--run_dir", run, "--epoch_id", "999"], 1,
                      f"no netG_999.pth in {run}", "holds no netG_<epoch>.pth")
    state = load_checkpoint(run / "checkpoints" / "ckpt_000000002.pt")["trainer"]["netG"]
    for epoch in (3, 10):
        save_official_generator(run / f"netG_{epoch}.pth", state)
    expect_user_error(capsys, "sample", ["ddgan", "--run_dir", run, "--epoch_id", "999"], 1,
                      "the epochs saved there are 3, 10", "give --epoch_id one of them")
    shutil.rmtree(run / "checkpoints")
    expect_user_error(capsys, "sample", ["ddgan", "--run_dir", run], 1, "no ddx checkpoint in",
                      "--epoch_id (saved there: 3, 10)")


def test_nan_loss_names_the_last_good_checkpoint(tmp_path, capsys):
    iddpm = tmp_path / "iddpm"
    err = expect_user_error(capsys, "train", ["iddpm", *IDDPM_TRAIN, "--lr", "1e8", "--save_interval", "1",
                                              "--max_steps", "8", "--outdir", iddpm], 1, "loss '", "in step",
                            "the last good checkpoint is", str(iddpm / "checkpoints"), "lower the learning rate")
    step = int(err.split(" in step ")[1].split()[0])
    assert f"ckpt_{step - 1:09d}.pt" in err  # saved every step: the one before the bad step
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--lr_d", "1e30", "--lr_g", "1e30", "--max_steps", "20",
                                        "--outdir", tmp_path / "ddgan"], 1, "loss '", "no checkpoint was written yet")


@pytest.mark.parametrize("model", ["ddgan", "iddpm"])
def test_disk_full_while_saving_a_checkpoint(model, ddgan_run, iddpm_run, tmp_path, capsys, monkeypatch):
    import ddx.utils.atomic as atomic

    run = _copy(ddgan_run if model == "ddgan" else iddpm_run, tmp_path)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 11")

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(atomic, "free_bytes", lambda directory: 0)
    flags = [*DDGAN_TRAIN, "--resume"] if model == "ddgan" else [*IDDPM_TRAIN, "--save_interval", "1"]
    previous = run / "checkpoints" / "ckpt_000000002.pt"
    expect_user_error(capsys, "train", [model, *flags, "--max_steps", "3", "--outdir", run], 1,
                      "the disk is full", "ckpt_000000003.pt", f"the previous checkpoint {previous} is intact")
    monkeypatch.undo()
    assert load_checkpoint(previous)["loop"]["step"] == 2
    assert not [p for p in run.rglob(".tmp-*")]


def test_cpu_out_of_memory_names_the_size(monkeypatch, capsys):
    import ddx.cli.entry as entry

    try:
        torch.empty(2**44, dtype=torch.uint8)  # 16 TiB: torch's CPU allocator refuses it at once
    except RuntimeError as err:
        error = err
    else:
        pytest.skip("this machine allocated 16 TiB")

    class Failing:
        @staticmethod
        def main(flags):
            raise error

    monkeypatch.setattr(entry.importlib, "import_module", lambda name: Failing)
    expect_user_error(capsys, "train", ["ddgan"], 1, "out of memory: tried to allocate 16384.0 GiB",
                      "Use a smaller --batch_size")


def test_resume_with_other_model_flags_or_another_models_run(ddgan_run, iddpm_run, tmp_path, capsys):
    iddpm = shutil.copytree(iddpm_run, tmp_path / "iddpm")
    # The run's config.json names every model / diffusion / data field the command changes, before any weights load.
    expect_user_error(capsys, "train", ["iddpm", *IDDPM_TRAIN, "--num_channels", "64", "--noise_schedule", "linear",
                                        "--max_steps", "3", "--outdir", iddpm], 2,
                      f"the run at {iddpm} was trained with other settings",
                      "--num_channels: recorded 32, this command 64", "--noise_schedule: recorded 'cosine', this "
                      "command 'linear'", "resume with the recorded values", "another --outdir")
    assert (iddpm / "config.json").read_text() == (iddpm_run / "config.json").read_text()
    # Without a config.json the checkpoint's shapes still refuse it.
    no_config = shutil.copytree(iddpm_run, tmp_path / "no_config")
    (no_config / "config.json").unlink()
    expect_user_error(capsys, "train", ["iddpm", *IDDPM_TRAIN, "--num_channels", "64", "--max_steps", "3",
                                        "--outdir", no_config], 1, "does not fit the model this run builds",
                      "model.time_embed.0.weight (file 128x32, this run 256x64)", "resume with the model flags")
    ddgan = shutil.copytree(ddgan_run, tmp_path / "ddgan")
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--toy_hidden", "32", "--t_emb_dim", "8",
                                        "--max_steps", "3", "--outdir", ddgan, "--resume"], 2,
                      f"the run at {ddgan} was trained with other settings", "--toy_hidden: recorded 16, this command 32",
                      "--t_emb_dim: recorded 4, this command 8", "resume with the recorded values", "another --outdir")
    assert (ddgan / "config.json").read_text() == (ddgan_run / "config.json").read_text()
    (ddgan / "config.json").unlink()  # without a config.json the checkpoint's shapes still refuse it
    expect_user_error(capsys, "train", ["ddgan", *DDGAN_TRAIN, "--toy_hidden", "32", "--max_steps", "3",
                                        "--outdir", ddgan, "--resume"], 1, "netG.net.0.weight (file 16x8, this run 32x8)")
    expect_user_error(capsys, "train", ["ddgan", *TOY, "--batch_size", "4", "--max_steps", "3", "--outdir", iddpm,
                                        "--resume"], 1, "records an IDDPM run, not a DDGAN one")
    (iddpm / "config.json").unlink()
    expect_user_error(capsys, "train", ["ddgan", *TOY, "--batch_size", "4", "--max_steps", "3", "--outdir", iddpm,
                                        "--resume"], 1, "holds the state of another kind of trainer", "netG")


def test_sampling_a_run_skips_its_corrupt_newest_checkpoint(ddgan_run, iddpm_run, tmp_path, capsys):
    for model, run in (("ddgan", ddgan_run), ("iddpm", iddpm_run)):
        copy = shutil.copytree(run, tmp_path / model)
        (copy / "checkpoints" / "ckpt_000000007.pt").write_bytes(b"PK\x03\x04 cut short")
        argv = (["ddgan", "--run_dir", copy, "--num_samples", "4", "--no-fused"] if model == "ddgan" else
                ["iddpm", "--model_path", copy, "--num_samples", "1", "--batch_size", "1", "--no-fused"])
        assert run_cli("sample", argv) == 0
        err = capsys.readouterr().err
        assert "skipping the corrupt checkpoint" in err and "ckpt_000000007.pt" in err and "ckpt_000000002.pt" in err


def test_sample_outdir_that_is_a_file(ddgan_run, iddpm_run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for outdir in (tmp_path / "file", tmp_path / "file" / "sub"):
        expect_user_error(capsys, "sample", ["ddgan", "--run_dir", ddgan_run, "--num_samples", "4", "--no-fused",
                                             "--outdir", outdir], 1, str(outdir), "a file stands where a folder is needed")
        expect_user_error(capsys, "sample", ["iddpm", "--model_path", iddpm_run, "--num_samples", "1", "--no-fused",
                                             "--outdir", outdir], 1, str(outdir), "a file stands where a folder is needed")


def test_iddpm_resume_from_a_file_that_is_no_resume_point(iddpm_run, tmp_path, capsys):
    ema = iddpm_run / "ema_0.9999_000002.pt"
    expect_user_error(capsys, "train", ["iddpm", *IDDPM_TRAIN, "--max_steps", "3", "--outdir", tmp_path,
                                        "--resume_checkpoint", ema], 1, f"{ema} is not a ddx.train/1 checkpoint",
                      "checkpoints/ckpt_<step>.pt of a ddx run")


def test_run_directory_with_a_broken_config(ddgan_run, iddpm_run, tmp_path, capsys):
    for model, run in (("ddgan", ddgan_run), ("iddpm", iddpm_run)):
        copy = shutil.copytree(run, tmp_path / model)
        (copy / "config.json").write_text('{"args": {"nz": ')  # cut short
        argv, code = ((["ddgan", "--run_dir", copy], 1) if model == "ddgan" else
                      (["iddpm", "--model_path", copy, "--num_samples", "1"], 2))
        expect_user_error(capsys, "sample", argv, code, f"the run's {copy / 'config.json'} cannot be read",
                          "restore it from a copy")
