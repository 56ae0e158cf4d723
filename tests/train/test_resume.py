"""Exact resume: a run interrupted (SIGKILL, or a crash) and resumed logs bit-identical losses."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _train_toy import SimulatedCrash, ToyTrainer, main, toy_dataset
from ddx.train import CheckpointManager, DistContext, EpochBatches, LoopConfig, RunDir, run
from tests.checkpoint_files import load_latest

SCRIPT = Path(__file__).with_name("_train_toy.py")
# 96 points, batch 8: 12 batches per epoch; 30 steps cross two epoch ends (LR schedule, sample grid).
ARGS = ["--max-steps", "30", "--save-interval", "6", "--keep-last", "2"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    threads = torch.get_num_threads()
    run_dir = tmp_path_factory.mktemp("reference")
    main(["--run-dir", str(run_dir), *ARGS])
    torch.set_num_threads(threads)
    return run_dir


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    got, want = RunDir(run_dir).read_metrics(), RunDir(reference).read_metrics()
    assert [r["step"] for r in got] == list(range(1, 31))
    for g, w in zip(got, want):
        assert (g["step"], g["epoch"], g["loss"], g["sigma"], g["lr"]) == (
            w["step"], w["epoch"], w["loss"], w["sigma"], w["lr"]), f"step {g['step']} differs"
    final = load_latest(run_dir / "checkpoints")["trainer"]
    final_ref = load_latest(reference / "checkpoints")["trainer"]
    for part in ("model", "ema"):
        for key, value in final_ref[part].items():
            assert torch.equal(final[part][key], value), f"{part}.{key} differs"
    assert final["epochs_ended"] == final_ref["epochs_ended"] == [0, 1]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_0.png", "epoch_1.png"]


def _wait_for(condition, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training script exited early:\n{process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("training script did not reach the kill point in time")
        time.sleep(0.05)


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, reference, restore_threads):
    # The script hangs in step 21 (of epoch 1), after the checkpoint of step 18 (mid-epoch 1).
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[2])}
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--run-dir", str(tmp_path), *ARGS,
                                "--hang-at-step", "21"], env=env, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "checkpoints" / "ckpt_000000018.pt"
    _wait_for(lambda: checkpoint.exists() and len(RunDir(tmp_path).read_metrics()) == 21, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert CheckpointManager(tmp_path / "checkpoints", 2).steps() == [12, 18]
    main(["--run-dir", str(tmp_path), *ARGS])  # Resume.AUTO picks up ckpt 18, drops logged steps 19-21
    _assert_same_run(tmp_path, reference)


def test_crash_after_last_batch_before_epoch_hook_then_resume(tmp_path, reference, restore_threads):
    # ckpt 12 is written after epoch 0's last batch, before its on_epoch_end: resume must run the hook.
    with pytest.raises(SimulatedCrash):
        main(["--run-dir", str(tmp_path), *ARGS, "--crash-at-step", "14"])
    loop = load_latest(tmp_path / "checkpoints")["loop"]
    assert (loop["step"], loop["epoch"], loop["batch_index"]) == (12, 0, 12)
    main(["--run-dir", str(tmp_path), *ARGS])
    _assert_same_run(tmp_path, reference)


def test_resume_from_given_path_into_new_directory(tmp_path, reference, restore_threads):
    start = reference / "checkpoints" / "ckpt_000000024.pt"
    torch.set_num_threads(1)
    run_dir = RunDir(tmp_path)
    trainer = ToyTrainer(DistContext(), run_dir=run_dir)
    state = run(trainer, EpochBatches(toy_dataset(), 8, seed=3), run_dir,
                LoopConfig(max_steps=30, log_interval=1, progress=False), resume=start)
    assert (state.step, state.epoch, state.batch_index) == (30, 2, 6)
    got = [r["loss"] for r in RunDir(tmp_path).read_metrics()]
    assert got == [r["loss"] for r in RunDir(reference).read_metrics()][24:]
