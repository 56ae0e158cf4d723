"""Crash-safe file writes: a reader sees the old file or the new one, never a partial one.

The bytes go to a uniquely named hidden temporary file in the target's directory (so two processes
writing the same path never share a temporary file), which is flushed and fsynced, then renamed over
the target with ``os.replace`` (atomic on POSIX); the directory is fsynced so the rename itself
survives a power loss. When two processes write the same path, the last rename wins and the file is
complete either way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux exposes it (else set and restored)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename into it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[BinaryIO], None], make_parents: bool = False) -> Path:
    """Call ``write_fn(f)`` on a binary file that atomically becomes ``path``; returns ``path``.

    The file gets mode 0o666 minus the umask, like a plain ``open(path, "w")`` (mkstemp alone would
    leave it 0o600). ``make_parents`` creates missing folders first. On any error (KeyboardInterrupt
    included) the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, make_parents: bool = False) -> Path:
    """Atomically make ``path`` hold ``text`` (UTF-8); see :func:`atomic_write`."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data), make_parents)
