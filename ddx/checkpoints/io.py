"""Crash-safe checkpoint files: atomic writes, keep-last-N, loading with ``weights_only=True`` only.

Generic file I/O that every layer may use (train, sample, eval, the format converters beside it): it
imports only torch and ddx.utils.

A checkpoint is written through :func:`ddx.utils.atomic.atomic_write` (a unique hidden temporary
file in the same directory, fsynced, renamed over the final name, directory fsynced). Only names of
the form ``ckpt_<9-digit step>.pt`` count as checkpoints, so a temporary file left by a crash is never
taken for one.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

from ddx.utils.atomic import DiskFullError, atomic_write, remove_stale_temporaries
from ddx.utils.checks import check_positive_int
from ddx.utils.errors import CheckpointError

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "CheckpointManager", "UnsafeCheckpointError", "atomic_save",
           "checkpoint_fingerprint", "checkpoint_name", "checkpoint_problem", "load_checkpoint",
           "read_checkpoint_bytes", "warn_skipped"]

# The format tag of the checkpoints ddx.train.run writes ({"format": ..., "trainer": ..., "loop": ...}); kept
# here, not in train/, so that identifying a file (ddx.checkpoints.identify) does not import the trainers.
CHECKPOINT_FORMAT = "ddx.train/1"

_NAME = re.compile(r"^ckpt_(\d{9})\.pt$")
_ZIP_MAGIC = b"PK\x03\x04"
_FINGERPRINT_TAIL = 64 * 1024
_REDO = "copy it again, or use an earlier checkpoint"


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint of ``step`` completed steps."""
    if not isinstance(step, int) or step < 0 or step >= 10**9:
        raise ValueError(f"checkpoint step must be an int in [0, 1e9), got {step!r}")
    return f"ckpt_{step:09d}.pt"


def atomic_save(state: Any, path: str | os.PathLike, make_parents: bool = False) -> Path:
    """Write ``torch.save(state)`` to ``path`` so that ``path`` holds either the old or the new bytes.

    A crash at any point leaves at most a ``.tmp-*`` file beside it, never a partial ``path``.
    """
    return atomic_write(path, lambda f: torch.save(state, f), make_parents)


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds objects (custom classes, functions) that ``weights_only`` loading refuses."""


def load_checkpoint(source: str | os.PathLike | bytes, name: str | None = None) -> Any:
    """Load a checkpoint with ``torch.load(..., map_location='cpu', weights_only=True)``.

    ``source`` is a path or the file's bytes (``name`` then names it in errors). A path is
    memory-mapped (``mmap=True``): tensors are read from the page cache as they are used instead of
    the file being read into memory first and copied into tensors; where mapping fails it is read
    normally. Raises CheckpointError naming the file when it is missing, truncated/corrupt, or
    (UnsafeCheckpointError) holds objects other than tensors, containers, numbers, strings and None.
    """
    label = name or ("<bytes>" if isinstance(source, bytes) else str(source))
    if isinstance(source, bytes):
        _check_zip_header(source[:len(_ZIP_MAGIC)], len(source), label)
        return _torch_load(io.BytesIO(source), label, mmap=False)
    _check_zip_header(*_read_header(source, label), label)
    try:
        return _torch_load(source, label, mmap=True)
    except UnsafeCheckpointError:
        raise
    except CheckpointError:
        # Mapping is not possible everywhere (some file systems); a corrupt file fails again below.
        return _torch_load(source, label, mmap=False)


def _read_header(path: str | os.PathLike, label: str) -> tuple[bytes, int]:
    """The first bytes of the file and its size, without reading the rest."""
    try:
        with open(path, "rb") as f:
            return f.read(len(_ZIP_MAGIC)), os.fstat(f.fileno()).st_size
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise CheckpointError(f"checkpoint file not found: {label}") from None
    except OSError as err:
        raise CheckpointError(f"checkpoint {label} cannot be read: {err}") from err


def _check_zip_header(head: bytes, size: int, label: str) -> None:
    # torch.save writes zip archives; anything else would reach torch's legacy unpickler, whose
    # errors on garbage read like weights_only refusals (and mmap needs the zip format).
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"checkpoint {label} is corrupt or truncated: not a torch.save zip archive "
                              f"({size} bytes); {_REDO}")


def _torch_load(source: Any, label: str, mmap: bool) -> Any:
    try:
        return torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise CheckpointError(f"checkpoint {label} is corrupt or truncated: {err}; {_REDO}") from err
        raise UnsafeCheckpointError(
            f"checkpoint {label} holds objects that weights_only loading refuses (only tensors, "
            f"dicts, lists, tuples, numbers, strings and None are allowed): {_refusal_reason(err)}"
        ) from err
    except Exception as err:
        # torch's own text goes on for lines about how a file gets corrupted; its first sentence says what failed.
        first = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"checkpoint {label} is corrupt or truncated: {type(err).__name__}: {first}; {_REDO}") from err


def _refusal_reason(err: Exception) -> str:
    """The part of torch's long weights_only message that names the refused object."""
    match = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
    return match.group(1).split(" Please use")[0].strip() if match else str(err).splitlines()[0]


def read_checkpoint_bytes(path: str | os.PathLike) -> bytes:
    """The raw bytes of a checkpoint file (to send to ranks that cannot see the file)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint file not found: {path}") from err


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` cannot be a whole torch.save archive (None when its structure is whole)."""
    try:
        with open(path, "rb") as f:
            head, size = f.read(len(_ZIP_MAGIC)), os.fstat(f.fileno()).st_size
            if head != _ZIP_MAGIC:
                return f"not a torch.save zip archive ({size} bytes)"
            with zipfile.ZipFile(f) as archive:
                names = archive.namelist()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        return f"truncated or corrupt ({type(err).__name__}: {err})"
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return "a zip archive without torch.save's data.pkl"
    return None


def warn_skipped(skipped: list[tuple[Path, str]], using: Path) -> None:
    """Tell, on stderr, which corrupt checkpoints (path, why) were passed over for ``using``."""
    for path, why in skipped:
        print(f"warning: skipping the corrupt checkpoint {path} ({why}); using {using.name}", file=sys.stderr, flush=True)


def checkpoint_fingerprint(path: str | os.PathLike) -> tuple[int, int, str] | None:
    """(size, mtime in ns, SHA-256 of the last 64 KiB) of a file, or None when it cannot be read.

    The tail of a torch.save zip archive is its central directory, which lists every record's name,
    size and CRC-32, so equal fingerprints on two ranks mean the same checkpoint (a same-named file
    of another run, or a copy with another mtime, reads as different) at the cost of one small read.
    """
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            f.seek(max(0, stat.st_size - _FINGERPRINT_TAIL))
            tail = f.read(_FINGERPRINT_TAIL)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns, hashlib.sha256(tail).hexdigest()


class CheckpointManager:
    """Checkpoints ``<directory>/ckpt_<step>.pt``, keeping the ``keep_last`` newest.

    Only the process that saves should construct it with ``create=True`` (rank 0).
    """

    def __init__(self, directory: str | os.PathLike, keep_last: int, create: bool = True):
        self.keep_last = check_positive_int(keep_last, "keep_last")
        self.directory = Path(directory)
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.directory)

    def steps(self) -> list[int]:
        """Steps of the checkpoints present, ascending (temporary files are ignored)."""
        if not self.directory.is_dir():
            return []
        found = (_NAME.match(entry.name) for entry in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def path(self, step: int) -> Path:
        return self.directory / checkpoint_name(step)

    def save(self, step: int, state: Any) -> Path:
        """Atomically write ``state`` as the checkpoint of ``step``, then prune to ``keep_last``.

        A full disk raises DiskFullError naming the file and the previous checkpoint, which is intact.
        """
        previous = self.latest()
        try:
            path = atomic_save(state, self.path(step))
        except DiskFullError as err:
            if previous is None or previous == err.path:
                raise
            raise DiskFullError(err.path, err.existed, f"the previous checkpoint {previous} is intact") from err
        for old in self.steps()[:-self.keep_last]:
            self.path(old).unlink(missing_ok=True)
        return path

    def latest(self) -> Path | None:
        """Path of the newest checkpoint, or None when there is none."""
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def newest_intact(self) -> tuple[Path | None, list[tuple[Path, str]]]:
        """(the newest checkpoint whose zip structure is whole, the newer ones skipped with the reason why).

        The check reads the header and the archive's central directory only, which a zero-byte, cut,
        half-written or overwritten file fails; damage inside a record shows when it is loaded.
        """
        skipped = []
        for step in reversed(self.steps()):
            path = self.path(step)
            problem = checkpoint_problem(path)
            if problem is None:
                return path, skipped
            skipped.append((path, problem))
        return None, skipped
