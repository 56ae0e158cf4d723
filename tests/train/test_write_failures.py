"""Writes that fail or are cut short: a full disk (DiskFullError, the old file intact) and the temporaries a
killed process leaves (removed by the next run, never a live writer's)."""

import errno
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ddx.utils.atomic as atomic
from ddx.train import CheckpointManager, RunDir, load_checkpoint
from ddx.utils.atomic import DiskFullError, atomic_write, remove_stale_temporaries, temporary_prefix
from ddx.utils.errors import UserError


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _failing(error):
    def write(f):
        f.write(b"partial")
        raise error
    return write


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   OSError(errno.EDQUOT, "Disk quota exceeded")], ids=["enospc", "quota"])
def test_no_space_is_a_disk_full_error_and_the_old_file_stays(tmp_path, error):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(DiskFullError) as info:
        atomic_write(path, _failing(error))
    err = info.value
    assert isinstance(err, UserError) and isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert err.filename == str(path) and "the disk is full" in str(err) and "previous version is intact" in str(err)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]
    copy = pickle.loads(pickle.dumps(err))  # errors travel between ranks pickled
    assert (str(copy), copy.filename, copy.errno) == (str(err), err.filename, errno.ENOSPC)
    with pytest.raises(DiskFullError, match="no partial file was left"):
        atomic_write(tmp_path / "new.bin", _failing(error))
    assert not (tmp_path / "new.bin").exists()


def test_torch_write_error_counts_as_disk_full_only_when_space_is_short(tmp_path, monkeypatch):
    torch_error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 64")
    monkeypatch.setattr(atomic, "free_bytes", lambda directory: 10 * 2**30)
    with pytest.raises(RuntimeError, match="unexpected pos") as info:
        atomic_write(tmp_path / "a.pt", _failing(torch_error))
    assert not isinstance(info.value, DiskFullError)  # plenty of space: some other failure, shown as it is
    monkeypatch.setattr(atomic, "free_bytes", lambda directory: 4096)
    with pytest.raises(DiskFullError):
        atomic_write(tmp_path / "a.pt", _failing(torch_error))
    with pytest.raises(ValueError, match="a bug"):  # not a write failure, whatever the free space
        atomic_write(tmp_path / "a.pt", _failing(ValueError("a bug")))
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_manager_names_the_intact_previous_checkpoint(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save(1, {"w": torch.ones(2)})
    monkeypatch.setattr(torch, "save", lambda obj, f: _failing(OSError(errno.ENOSPC, "No space left"))(f))
    with pytest.raises(DiskFullError, match=f"the previous checkpoint {tmp_path / 'ckpt_000000001.pt'} is intact"):
        manager.save(2, {"w": torch.zeros(2)})
    monkeypatch.undo()
    assert manager.steps() == [1] and torch.equal(load_checkpoint(manager.path(1))["w"], torch.ones(2))


def test_temporaries_name_their_writer(tmp_path):
    seen = []
    atomic_write(tmp_path / "x.json", lambda f: seen.extend(p.name for p in tmp_path.iterdir()))
    assert len(seen) == 1 and seen[0].startswith(temporary_prefix(tmp_path / "x.json"))
    assert f".p{os.getpid()}@" in seen[0]


def test_stale_temporaries_are_removed_live_ones_kept(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    host = temporary_prefix(run / "x").split("@")[1].rstrip(".")
    dead, live = _dead_pid(), os.getppid()
    stale = [run / f".tmp-config.json.p{dead}@{host}.ab12cd", run / "checkpoints" / f".tmp-ckpt_000000004.pt.p{dead}@{host}.zz9"]
    legacy = run / "checkpoints" / ".tmp-opt000002.pt.k3j2x1"  # named before the pid was in the name
    kept = [run / f".tmp-metrics.jsonl.p{live}@{host}.qq1", run / f".tmp-samples.pt.p{os.getpid()}@{host}.me1",
            run / "checkpoints" / ".tmp-ckpt_000000005.pt.new_one"]
    for path in stale + [legacy] + kept:
        path.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    os.utime(kept[-1], (time.time() + 60, time.time() + 60))  # written since this process started
    RunDir(run)
    assert not any(p.exists() for p in stale + [legacy])
    assert all(p.exists() for p in kept)


def test_checkpoint_manager_cleans_its_folder(tmp_path):
    host = temporary_prefix(tmp_path / "x").split("@")[1].rstrip(".")
    left = tmp_path / f".tmp-ckpt_000000001.pt.p{_dead_pid()}@{host}.r4nd"
    left.write_bytes(b"PK")
    CheckpointManager(tmp_path, keep_last=1, create=False)
    assert left.exists()  # only the rank that writes removes anything
    CheckpointManager(tmp_path, keep_last=1)
    assert not left.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_metrics_line_on_a_full_disk(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.log_metrics({"step": 1, "loss": 0.5})
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        if "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(DiskFullError, match=f"writing {run.metrics_path} failed and the lines logged before are intact"):
        run.log_metrics({"step": 2, "loss": 0.4})
    monkeypatch.undo()
    assert run.read_metrics() == [{"step": 1, "loss": 0.5}]


def test_nan_on_two_ranks_names_rank_zeros_last_checkpoint(tmp_path):
    script = Path(__file__).with_name("_train_toy.py")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(script.parents[2])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(script),
         "--run-dir", str(tmp_path), "--batch-size", "4", "--max-steps", "12", "--save-interval", "5",
         "--nan-at-step", "7"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    # Both ranks stop at step 8 and name the checkpoint rank 0 wrote, none of them waiting forever.
    assert result.stderr.count(f"the last good checkpoint is {tmp_path / 'checkpoints' / 'ckpt_000000005.pt'}") == 2
