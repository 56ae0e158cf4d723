"""Crash-safe file writes: a reader sees the old file or the new one, never a partial one.

The bytes go to a uniquely named hidden temporary file in the target's directory (so two processes
writing the same path never share a temporary file), which is flushed and fsynced, then renamed over
the target with ``os.replace`` (atomic on POSIX); the directory is fsynced so the rename itself
survives a power loss. When two processes write the same path, the last rename wins and the file is
complete either way.

A temporary's name, ``.tmp-<target>.p<pid>@<host>.<random>``, says which process writes it, so a later
run can remove those a killed process left (:func:`remove_stale_temporaries`) without touching one that a
live process is still writing. A write that fails because the disk is full raises :class:`DiskFullError`.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ddx.utils.errors import UserError

TMP_PREFIX = ".tmp-"
_OWNER = re.compile(r"\.p(\d+)@([A-Za-z0-9_-]*)\.[^.]+$")
# Below this many free bytes a failed write is taken for a full disk: torch.save reports one only as
# a RuntimeError ("[enforce fail at inline_container.cc] ... unexpected pos"), without an errno.
DISK_FULL_MARGIN = 16 * 2**20
_TORCH_WRITE_FAILURES = ("unexpected pos", "inline_container", "file write failed")
_PROCESS_START = time.time()


class DiskFullError(UserError, OSError):
    """The disk filled up while a file was written; the file is as it was before (errno ENOSPC)."""

    def __init__(self, path: str | os.PathLike, existed: bool, intact: str | None = None):
        intact = intact or ("its previous version is intact" if existed else "no partial file was left")
        message = (f"the disk is full: writing {os.fspath(path)} failed and {intact} (the temporary file was "
                   f"removed); free some space (or choose another --outdir) and run again")
        self.path, self.existed, self.intact = Path(path), existed, intact
        super().__init__(errno.ENOSPC, message, os.fspath(path))

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # OSError's own would call __init__ with (errno, strerror, filename)
        return type(self), (self.path, self.existed, self.intact)


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())


def temporary_prefix(path: Path) -> str:
    """The start of the name of this process's temporaries for ``path``."""
    return f"{TMP_PREFIX}{path.name}.p{os.getpid()}@{_host_tag()}."


def free_bytes(directory: str | os.PathLike) -> int | None:
    """Bytes an unprivileged process may still write under ``directory``, or None where unknown."""
    try:
        stat = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return stat.f_bavail * stat.f_frsize


def _is_disk_full(err: BaseException, directory: Path) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    torch_write_error = isinstance(err, RuntimeError) and any(m in str(err) for m in _TORCH_WRITE_FAILURES)
    if not (isinstance(err, OSError) or torch_write_error):
        return False
    free = free_bytes(directory)
    return free is not None and free < DISK_FULL_MARGIN


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_stale(entry: Path) -> bool:
    """Whether a temporary was left by a process that no longer writes it."""
    owner = _OWNER.search(entry.name)
    if owner is not None and owner.group(2) == _host_tag():
        pid = int(owner.group(1))
        return pid != os.getpid() and not _pid_alive(pid)
    # Another host's temporary, or one named before names held the pid: stale once older than this process.
    try:
        return entry.stat().st_mtime < _PROCESS_START
    except OSError:
        return False


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove the ``.tmp-*`` files in ``directory`` that killed processes left; returns their paths.

    A temporary of a live process (this one included) is kept, so this is safe while others write.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in directory.iterdir():
        if entry.name.startswith(TMP_PREFIX) and entry.is_file() and _is_stale(entry):
            try:
                entry.unlink()
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            removed.append(entry)
    return removed


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
    included) the temporary file is removed and ``path`` is left as it was; a full disk (ENOSPC, or a
    write error with under ``DISK_FULL_MARGIN`` bytes free) raises :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(path), dir=path.parent)
    except OSError as err:
        if _is_disk_full(err, path.parent):
            raise DiskFullError(path, existed) from err
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        # Free space is judged before the temporary is removed, which frees it again.
        disk_full = _is_disk_full(err, path.parent)
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        if disk_full:
            raise DiskFullError(path, existed) from err
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, make_parents: bool = False) -> Path:
    """Atomically make ``path`` hold ``text`` (UTF-8); see :func:`atomic_write`."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data), make_parents)
