"""ddx.utils.atomic: unique temporaries, fsync of file and folder, umask-honouring mode, clean failure."""

import os

import pytest

from ddx.utils.atomic import atomic_write, atomic_write_text, current_umask


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_writes_bytes_with_the_umask_mode(tmp_path, umask_027):
    assert current_umask() == 0o027
    path = atomic_write(tmp_path / "a.bin", lambda f: f.write(b"abc"))
    assert path.read_bytes() == b"abc"
    assert os.stat(path).st_mode & 0o777 == 0o640  # as open() would create it, not mkstemp's 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_concurrent_writers_use_distinct_temporaries(tmp_path):
    path = tmp_path / "cache.pt"
    during = []

    def inner(g):
        g.write(b"inner")
        during.extend(sorted(p.name for p in tmp_path.iterdir()))

    def outer(f):
        f.write(b"outer")
        # A second writer of the same path while the first is mid-write (two processes racing).
        atomic_write(path, inner)
        assert path.read_bytes() == b"inner"

    atomic_write(path, outer)
    assert len(during) == 2 and all(name.startswith(".tmp-cache.pt.") for name in during)
    assert path.read_bytes() == b"outer"  # the last rename wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.pt"]


def test_file_and_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def record(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    atomic_write_text(tmp_path / "t.json", "{}\n")
    assert len(synced) == 2
    if synced[0] is not None:
        assert synced == [False, True]  # the file's bytes first, then the rename in its folder


@pytest.mark.parametrize("error", [ValueError("bad state"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    path = atomic_write_text(tmp_path / "config.json", "old")

    def fail(f):
        f.write(b"partial")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_make_parents(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b" / "c.txt", "x", make_parents=True)
    assert path.read_text() == "x"
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "c.txt", "x")
