"""The run directory: resolved config, metrics log, sample grids, checkpoints.

Layout::

    <root>/config.json        resolved configuration (frozen dataclasses -> JSON)
    <root>/metrics.jsonl      one JSON object per log line
    <root>/samples/<name>.png sample grids
    <root>/checkpoints/       ckpt_<step>.pt (see checkpoint.py)

Every method writes only on the main process (``is_main=True``, rank 0); on other ranks it does nothing,
so trainers can call it unconditionally.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ddx.checkpoints.run_config_file import CONFIG_FILE
from ddx.utils.atomic import DiskFullError, atomic_write, atomic_write_text, remove_stale_temporaries
from ddx.utils.errors import UsageError
from ddx.utils.images import images_to_uint8_grid


def to_jsonable(obj: Any) -> Any:
    """Frozen dataclasses (nested), enums (by name), paths, tuples, mappings -> plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: to_jsonable(getattr(obj, field.name)) for field in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON: {obj!r}")


class RunDir:
    """A training run's directory. Construct it on every rank; only ``is_main`` writes."""

    def __init__(self, root: str | os.PathLike, is_main: bool = True):
        self.root = Path(root)
        self.is_main = is_main
        self._replaced_config: str | None = None
        if is_main:
            self._make_dirs()
            # Temporaries of a killed earlier run; a live writer's are kept (see remove_stale_temporaries).
            for directory in (self.root, self.samples_dir, self.checkpoints_dir):
                remove_stale_temporaries(directory)

    def _make_dirs(self) -> None:
        """Create the folders, or a UsageError naming the run directory and why it cannot be one."""
        blocker = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise UsageError(f"the run directory {self.root} cannot be created: {blocker} is a file; "
                             f"give --outdir a folder (new or existing)")
        try:
            for directory in (self.samples_dir, self.checkpoints_dir):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"the run directory {self.root} cannot be created: {err.strerror or err}; "
                             f"give --outdir a folder you can write to") from err
        if not os.access(self.root, os.W_OK) or not os.access(self.checkpoints_dir, os.W_OK):
            raise UsageError(f"the run directory {self.root} is read-only; give --outdir a folder you can write to")

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def write_config(self, config: Any) -> None:
        """Write a dataclass (or a mapping of them) as indented JSON, atomically; :meth:`restore_config`
        puts back the config.json it replaced."""
        if not self.is_main:
            return
        if self._replaced_config is None and self.config_path.is_file():
            self._replaced_config = self.config_path.read_text()
        atomic_write_text(self.config_path, json.dumps(to_jsonable(config), indent=2, sort_keys=False) + "\n")

    def restore_config(self) -> None:
        """Put back the config.json that :meth:`write_config` replaced (a resume that failed its checks
        must leave the run's own config, which sample.py --run_dir reads); nothing when there was none."""
        if self.is_main and self._replaced_config is not None:
            atomic_write_text(self.config_path, self._replaced_config)

    def log_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one JSON object as a line of metrics.jsonl."""
        if not self.is_main:
            return
        line = json.dumps(to_jsonable(record), allow_nan=True)
        try:
            with open(self.metrics_path, "a") as f:
                f.write(line + "\n")
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # A cut last line is skipped by read_metrics; the lines before it stand.
            raise DiskFullError(self.metrics_path, True, "the lines logged before are intact") from err

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl; an incomplete last line (a crash mid-write) is skipped."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records with ``step > after_step`` (logged after the checkpoint a run resumes from)."""
        if not self.is_main or not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics() if int(r.get("step", -1)) <= after_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, allow_nan=True) + "\n" for r in kept))

    def save_images(self, name: str, images: torch.Tensor, nrow: int | None = None) -> Path:
        """Save images (N, C, H, W) in [-1, 1] as the grid ``samples/<name>.png`` (atomically); returns its path."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"sample name must be a plain file stem, got {name!r}")
        path = self.samples_dir / f"{name}.png"
        grid = images_to_uint8_grid(images, nrow)
        if self.is_main:
            from PIL import Image

            image = Image.fromarray(grid.numpy())
            atomic_write(path, lambda f: image.save(f, format="PNG"))
        return path
