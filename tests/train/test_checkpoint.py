"""Atomic checkpoints, keep-last-N, weights_only loading, clear errors, RNG state round trips."""

import os
import random

import numpy as np
import pytest
import torch

from ddx.train import CheckpointError, CheckpointManager, atomic_save, capture_rng_state, load_checkpoint
from ddx.train import UnsafeCheckpointError, restore_rng_state
from tests.checkpoint_files import load_latest


class NotAllowed:
    """An arbitrary class: weights_only loading must refuse to build it."""


def _state(value: float) -> dict:
    return {"w": torch.full((3, 2), value), "meta": {"step": int(value), "name": "x", "none": None},
            "pairs": [(1, 2.5), ("a", torch.arange(3))]}


def test_round_trip_keeps_nested_state(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save(7, _state(7.0))
    loaded = load_latest(manager.directory)
    assert torch.equal(loaded["w"], torch.full((3, 2), 7.0))
    assert loaded["meta"] == {"step": 7, "name": "x", "none": None}
    assert loaded["pairs"][0] == (1, 2.5) and torch.equal(loaded["pairs"][1][1], torch.arange(3))


def test_keep_last_prunes_oldest(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (5, 10, 15, 20):
        manager.save(step, _state(float(step)))
    assert manager.steps() == [15, 20]
    assert manager.latest() == tmp_path / "ckpt_000000020.pt"
    assert load_latest(manager.directory)["meta"]["step"] == 20


def test_crash_between_write_and_rename_keeps_previous(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, _state(1.0))

    def crash(src, dst):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        manager.save(2, _state(2.0))
    monkeypatch.undo()
    assert manager.steps() == [1]
    assert load_latest(manager.directory)["meta"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000000001.pt"]


def test_leftover_partial_temp_file_is_ignored(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, _state(1.0))
    full = (tmp_path / "ckpt_000000001.pt").read_bytes()
    # What a SIGKILL during torch.save leaves behind: a truncated hidden temporary file.
    (tmp_path / ".tmp-ckpt_000000002.pt.k3j2").write_bytes(full[: len(full) // 2])
    (tmp_path / "ckpt_000000003.pt.partial").write_bytes(full[:10])
    assert manager.steps() == [1]
    assert load_latest(manager.directory)["meta"]["step"] == 1


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "ckpt_000000001.pt"
    torch.save({"w": torch.ones(2), "evil": NotAllowed()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"ckpt_000000001\.pt holds objects that weights_only") as info:
        load_latest(tmp_path)
    assert "NotAllowed" in str(info.value)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=f"checkpoint file not found: {path}"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_names_the_path(tmp_path, damage):
    path = tmp_path / "ckpt_000000004.pt"
    atomic_save(_state(4.0), path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"not a checkpoint" * 8, "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt or truncated"):
        load_checkpoint(path)


def test_a_path_is_memory_mapped_not_read_into_memory(tmp_path, monkeypatch):
    path = atomic_save(_state(3.0), tmp_path / "ckpt_000000003.pt")
    calls = []
    real_load = torch.load

    def spy(source, **kwargs):
        calls.append((type(source).__name__, kwargs.get("mmap")))
        return real_load(source, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("the whole file was read into memory"))
    assert load_checkpoint(path)["meta"]["step"] == 3
    assert calls == [("PosixPath", True)]


def test_falls_back_to_a_plain_read_where_mapping_fails(tmp_path, monkeypatch):
    path = atomic_save(_state(2.0), tmp_path / "ckpt_000000002.pt")
    real_load = torch.load

    def no_mmap(source, **kwargs):
        if kwargs.get("mmap"):
            raise RuntimeError("mmap not supported on this file system")
        return real_load(source, **kwargs)

    monkeypatch.setattr(torch, "load", no_mmap)
    assert torch.equal(load_checkpoint(path)["w"], torch.full((3, 2), 2.0))


def test_bytes_load_like_the_file(tmp_path):
    path = atomic_save(_state(6.0), tmp_path / "c.pt")
    assert load_checkpoint(path.read_bytes(), name="sent")["meta"] == load_checkpoint(path)["meta"]
    with pytest.raises(CheckpointError, match="checkpoint sent is corrupt or truncated"):
        load_checkpoint(path.read_bytes()[:100], name="sent")


@pytest.mark.parametrize("keep_last, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)],
                         ids=["zero", "negative", "float", "bool"])
def test_keep_last_must_be_positive_int(tmp_path, keep_last, error):
    with pytest.raises(error, match="keep_last must be a positive int"):
        CheckpointManager(tmp_path, keep_last=keep_last)


def _draws() -> tuple:
    return torch.rand(3), np.random.rand(3), random.random(), random.gauss(0, 1), np.random.normal()


def test_rng_state_survives_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.normal()  # and one in numpy's
    state = capture_rng_state()
    expected = _draws()
    atomic_save({"rng": state}, tmp_path / "rng.pt")
    _draws()
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = _draws()
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2:] == expected[2:]


def test_restore_rejects_bad_state():
    with pytest.raises(ValueError, match="RNG state must be a dict with keys"):
        restore_rng_state({"torch_cpu": torch.get_rng_state()})
