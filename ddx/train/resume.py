"""Resuming a run: which checkpoint to continue from, and whether it fits the run that resumes it.

Exact resume needs the world size, the per-rank batch, the data and the model of the run that wrote the
checkpoint; each difference is a user error that names the value and how to resume or start afresh. A corrupt
newest checkpoint is set aside (renamed ``<name>.corrupt``) for the newest intact one.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ddx.checkpoints.io import CheckpointError, CheckpointManager
from ddx.train.distributed import DistContext
from ddx.utils.errors import UsageError, UserError

CORRUPT_SUFFIX = ".corrupt"
_SHOWN = 3  # differing entries named in a message


class Resume(enum.Enum):
    NEVER = "never"  # start fresh; an error if the run directory already holds checkpoints
    AUTO = "auto"  # continue from the latest checkpoint if there is one, else start fresh
    REQUIRE = "require"  # continue from the latest checkpoint; an error if there is none


def checkpoint_to_load(resume: Resume | str | os.PathLike, manager: CheckpointManager) -> Path | None:
    """The checkpoint to continue from (rank 0 decides): the newest intact one, a corrupt newer one (a full
    disk while it was copied in, a damaged file) renamed to ``<name>.corrupt`` with a warning."""
    if not isinstance(resume, Resume):
        return Path(resume)
    latest = manager.latest()
    if resume is Resume.NEVER and latest is not None:
        raise UsageError(f"the run directory {manager.directory.parent} already holds checkpoints (latest "
                         f"{latest}): resume it to continue, or choose another --outdir for a new run")
    if resume is Resume.REQUIRE and latest is None:
        raise CheckpointError(f"resume required but there is no checkpoint in {manager.directory} (searched for "
                              f"ckpt_<step>.pt): to start a new run, do not resume")
    if resume is Resume.NEVER or latest is None:
        return None
    intact, skipped = manager.newest_intact()
    if intact is None:
        listed = "; ".join(f"{p.name}: {why}" for p, why in skipped)
        raise CheckpointError(f"every checkpoint in {manager.directory} is corrupt ({listed}): move them away to "
                              f"start a new run there, or resume from a copy")
    for path, why in skipped:
        # Renamed, not deleted (it is evidence) nor left: counted by keep_last it would outlive the good ones.
        kept = path.with_name(path.name + CORRUPT_SUFFIX)
        path.replace(kept)
        print(f"warning: skipping the corrupt checkpoint {path} ({why}; renamed to {kept.name}); resuming from "
              f"the newest intact one, {intact.name}", file=sys.stderr, flush=True)
    return intact


def check_same_run_shape(path: Path, payload: Mapping[str, Any], batch_size: int | None,
                          batches_per_epoch: int, ctx: DistContext) -> None:
    """Exact resume needs the world size, the per-rank batch and the data of the run that saved ``path``."""
    if payload["world_size"] != ctx.world_size:
        raise UsageError(f"{path} was written by {payload['world_size']} rank(s) but this run has "
                         f"{ctx.world_size}; exact resume needs the same world size: launch "
                         f"{payload['world_size']} rank(s) (torchrun --nproc_per_node), or start a new --outdir")
    saved_batch = payload.get("batch_size")
    if saved_batch is not None and batch_size is not None and saved_batch != batch_size:
        raise UsageError(f"{path} was written with --batch_size {saved_batch} (per rank) but this run has "
                         f"--batch_size {batch_size}; exact resume needs the same: resume with --batch_size "
                         f"{saved_batch}, or start a new --outdir")
    saved_batches = payload["loop"]["batches_per_epoch"]
    if saved_batches != batches_per_epoch:
        raise UsageError(f"{path} was written with {saved_batches} batches per epoch but the data now gives "
                         f"{batches_per_epoch}; dataset or batch size changed: resume with the data and "
                         f"--batch_size of that run, or start a new --outdir")


def _tensor_shapes(tree: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """The shapes of the tensors in nested mappings, by dotted path."""
    if isinstance(tree, torch.Tensor):
        return {prefix.rstrip("."): tuple(tree.shape)}
    if not isinstance(tree, Mapping):
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for key, value in tree.items():
        shapes.update(_tensor_shapes(value, f"{prefix}{key}."))
    return shapes


def misfit(path: Path, ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """How the trainer state in ``path`` differs from this run's trainer (another model, or other flags)."""
    if len(set(ours) - set(theirs)) > len(ours) // 2:
        return (f"{path} holds the state of another kind of trainer ({', '.join(map(str, theirs))}; this run's has "
                f"{', '.join(map(str, ours))}): it belongs to another model's run; give this model's checkpoint "
                f"or another --outdir")
    mine, saved = _tensor_shapes(ours), _tensor_shapes(theirs)
    differ = [k for k in mine if k in saved and mine[k] != saved[k]]
    missing = [k for k in mine if k not in saved]
    parts = [f"{k} (file {'x'.join(map(str, saved[k]))}, this run {'x'.join(map(str, mine[k]))})" for k in differ[:_SHOWN]]
    parts += [f"{k} missing from the file" for k in missing[:_SHOWN - len(parts)]]
    detail = ", ".join(parts) or "its entries do not match"
    return (f"{path} does not fit the model this run builds: {detail}: resume with the model flags of the run "
            f"that wrote it, or start a new --outdir")


def load_trainer_state(trainer: Any, state: Mapping[str, Any], path: Path) -> None:
    try:
        trainer.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        if isinstance(err, UserError):
            raise
        raise CheckpointError(misfit(path, trainer.state_dict(), state)) from err
