"""The generic training loop: epochs of batches, NaN guard, logging, checkpoints, exact resume.

A trainer subclasses :class:`Trainer`; :func:`run` drives it. See ``ddx/train/__init__.py``.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from ddx.profiling import SteadyStateWindow, nvtx_range
from ddx.checkpoints.io import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    CheckpointManager,
    checkpoint_fingerprint,
    load_checkpoint,
    read_checkpoint_bytes,
)
from ddx.train.distributed import (
    DistContext,
    all_gather_object,
    all_reduce_mean,
    broadcast_from_main,
    recv_object,
    send_object,
)
from ddx.train.guard import NonFiniteLossError, check_finite
from ddx.train.resume import Resume, check_same_run_shape, checkpoint_to_load, load_trainer_state, misfit
from ddx.train.rng import capture_rng_state, restore_rng_state
from ddx.train.rundir import RunDir
from ddx.utils.checks import check_positive_int
from ddx.utils.errors import UserError
from ddx.utils.progress import Progress

_T = TypeVar("_T")


class Trainer(abc.ABC):
    """What a trainer implements to be driven by :func:`run`.

    ``state_dict`` must hold only tensors, dicts, lists, tuples, numbers, strings and None
    (model/optimizer/scheduler ``state_dict()``s qualify; convert anything else), because checkpoints
    are loaded with ``weights_only=True``. The loop adds the RNG states and the data position itself.
    """

    @abc.abstractmethod
    def train_step(self, batch: Any, step: int) -> Mapping[str, torch.Tensor]:
        """One optimisation step on ``batch``; ``step`` counts the steps done before it (0-based).

        Returns the loss terms as scalar tensors (not yet ``.item()``-ed); they are checked for
        nan/inf every step and logged (averaged over ranks) every ``log_interval`` steps.
        """

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: models, EMAs, optimizers, schedulers, sampler state.

        Called on rank 0 only (it alone writes checkpoints), so it must not run collectives.
        """

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (tensors arrive on the CPU)."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called on every rank after the last batch of ``epoch`` (0-based): LR schedules, sample grids."""

    def on_save(self, step: int) -> None:
        """Called on every rank after the checkpoint of ``step`` is written (e.g. to export EMA weights)."""

    def extra_metrics(self) -> Mapping[str, float]:
        """Values added to each metrics line, e.g. ``{"lr": ...}``. Called on every rank at each log line,
        so it may run collectives (e.g. all-reduce interval means); rank 0 writes the line."""
        return {}


class BatchSource(Protocol):
    """Epochs of batches that can start mid-epoch; :class:`ddx.train.data.EpochBatches` is one."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Any]: ...


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to log and save.

    The run ends when ``max_steps`` optimiser steps or ``max_epochs`` epochs are done, whichever
    comes first (at least one is required). Checkpoints are written every ``save_interval`` steps,
    every ``save_every_epochs`` epochs (after ``on_epoch_end``), and at the end.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    log_interval: int = 100
    save_interval: int | None = None
    save_every_epochs: int | None = None
    keep_last: int = 3
    progress: bool = True
    profile_start: int | None = None
    profile_steps: int = 0

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_epochs is None:
            raise ValueError("LoopConfig needs max_steps or max_epochs (or both)")
        for name in ("max_steps", "max_epochs", "log_interval", "save_interval", "save_every_epochs", "keep_last"):
            check_positive_int(getattr(self, name), f"LoopConfig.{name}",
                               optional=name not in ("log_interval", "keep_last"))


def check_profile_window(window: Any) -> tuple[int, int] | None:
    """A run configuration's profile_window: None, or (start, count), two non-negative ints; ValueError otherwise."""
    if window is None:
        return None
    window = tuple(window)
    if len(window) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in window):
        raise ValueError(f"profile_window must be two non-negative ints (start, count), got {window!r}")
    return window


def profile_window_kwargs(window: tuple[int, int] | None) -> dict[str, int]:
    """LoopConfig's profiler arguments for a profile_window (none without one)."""
    if window is None:
        return {}
    start, count = window
    return dict(profile_start=start, profile_steps=count)


@dataclasses.dataclass
class LoopState:
    """The position of a run. ``batch_index`` counts the batches of ``epoch`` already used; it equals
    the epoch's length when its batches are done but ``on_epoch_end`` has not run yet."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    batches_per_epoch: int = 0
    elapsed_s: float = 0.0


def _capture(fn: Callable[[], _T]) -> tuple[_T | None, Exception | None]:
    """(fn(), None), or (None, the error it raised)."""
    try:
        return fn(), None
    except Exception as err:
        return None, err


def _main_decides(fn: Callable[[], _T], ctx: DistContext) -> _T:
    """Run ``fn`` on rank 0 and give every rank its result, or make every rank raise its error."""
    # The error is re-raised on every rank below, so no rank waits forever.
    result, error = broadcast_from_main(_capture(fn) if ctx.is_main else (None, None), ctx)
    if error is not None:
        raise error
    return result


def _fingerprint(path: Path) -> tuple[int, int, str]:
    fingerprint = checkpoint_fingerprint(path)
    if fingerprint is None:
        what = "cannot be read" if path.exists() else "not found"
        raise CheckpointError(f"checkpoint file {what}: {path}")
    return fingerprint


def _load_on_every_rank(path: Path, ctx: DistContext) -> Any:
    """Every rank's copy of the checkpoint at ``path``, read from the file where the rank sees the
    same file as rank 0 (one node, shared storage), else sent by rank 0 (only to those ranks).

    Collective. Any rank's failure is raised on every rank, so none is left waiting.
    """
    expected = _main_decides(lambda: _fingerprint(path), ctx)
    same_file = all_gather_object(ctx.is_main or checkpoint_fingerprint(path) == expected, ctx)
    payload, error = None, None
    try:
        if ctx.is_main:
            receivers = [rank for rank, same in enumerate(same_file) if not same]
            if receivers:
                data = _capture(lambda: read_checkpoint_bytes(path))
                for rank in receivers:
                    send_object(data, rank, ctx)
                del data
            payload = load_checkpoint(path)
        elif same_file[ctx.rank]:
            payload = load_checkpoint(path)
        else:
            data, sent_error = recv_object(0, ctx)
            if sent_error is not None:
                raise sent_error
            payload = load_checkpoint(data, name=str(path))
    except Exception as err:  # raised after the others have heard of it
        error = err
    failures = [(rank, message) for rank, message in
                enumerate(all_gather_object(None if error is None else f"{type(error).__name__}: {error}", ctx))
                if message is not None]
    if error is not None:
        raise error
    if failures:
        rank, message = failures[0]
        raise CheckpointError(f"rank {rank} could not load {path}: {message}")
    return payload


def _restore(trainer: Trainer, path: Path, batches: BatchSource, ctx: DistContext) -> LoopState:
    payload = _load_on_every_rank(path, ctx)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint written by ddx.train.run: resume from "
                              f"the checkpoints/ckpt_<step>.pt of a ddx run")
    ours = trainer.state_dict()
    # Most of the trainer's entries absent: another model's checkpoint (one new entry is left to load_state_dict).
    if not isinstance(payload.get("trainer"), Mapping) or len(set(ours) - set(payload["trainer"])) > len(ours) // 2:
        raise CheckpointError(misfit(path, ours, payload.get("trainer") or {}))
    del ours
    check_same_run_shape(path, payload, _batch_size(batches), len(batches), ctx)
    state = LoopState(**payload["loop"])
    load_trainer_state(trainer, payload["trainer"], path)
    restore_rng_state(payload["rng"][ctx.rank])
    return state


class _Run:
    """One call of :func:`run`: the state and the actions the loop body needs."""

    def __init__(self, trainer: Trainer, run_dir: RunDir, config: LoopConfig, ctx: DistContext,
                 manager: CheckpointManager, state: LoopState, batch_size: int | None = None):
        self.trainer, self.run_dir, self.config, self.ctx = trainer, run_dir, config, ctx
        self.manager, self.state, self.batch_size = manager, state, batch_size
        self.saved_at: tuple[int, int, int] | None = None
        self._elapsed_base = state.elapsed_s
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        return self._elapsed_base + time.perf_counter() - self._start

    def position(self) -> tuple[int, int, int]:
        return self.state.step, self.state.epoch, self.state.batch_index

    def finished(self) -> bool:
        config, state = self.config, self.state
        return ((config.max_steps is not None and state.step >= config.max_steps)
                or (config.max_epochs is not None and state.epoch >= config.max_epochs))

    def save(self) -> None:
        """Collective: every rank contributes its RNG state; rank 0 writes."""
        with nvtx_range("train/checkpoint"):
            self._save()

    def _save(self) -> None:
        self.state.elapsed_s = self.elapsed()
        rng_states = all_gather_object(capture_rng_state(), self.ctx)
        if self.ctx.is_main:
            self.manager.save(self.state.step, {
                "format": CHECKPOINT_FORMAT,
                "world_size": self.ctx.world_size,
                "batch_size": self.batch_size,
                "loop": dataclasses.asdict(self.state),
                "rng": rng_states,
                "trainer": self.trainer.state_dict(),
            })
        self.saved_at = self.position()
        self.trainer.on_save(self.state.step)

    def log(self, losses: Mapping[str, float]) -> None:
        """Collective: losses are averaged over ranks."""
        mean = all_reduce_mean(torch.tensor(list(losses.values()), dtype=torch.float64, device=self.ctx.device),
                               self.ctx).tolist()
        record = {"step": self.state.step, "epoch": self.state.epoch, **dict(zip(losses, mean)),
                  **self.trainer.extra_metrics(), "time": round(self.elapsed(), 3)}
        self.run_dir.log_metrics(record)

    def end_epoch(self) -> None:
        self.trainer.on_epoch_end(self.state.epoch)
        self.state.epoch += 1
        self.state.batch_index = 0
        every = self.config.save_every_epochs
        if every is not None and self.state.epoch % every == 0:
            self.save()

    def after_step(self, losses: Mapping[str, float]) -> None:
        self.state.step += 1
        self.state.batch_index += 1
        config = self.config
        if self.state.step % config.log_interval == 0:
            self.log(losses)
        if config.save_interval is not None and self.state.step % config.save_interval == 0:
            self.save()


def _batch_size(batches: BatchSource) -> int | None:
    """The per-rank batch of ``batches`` where it says (EpochBatches does), else None."""
    size = getattr(batches, "batch_size", None)
    return size if isinstance(size, int) else None


def _total_steps(config: LoopConfig, batches_per_epoch: int) -> int:
    by_epochs = None if config.max_epochs is None else config.max_epochs * batches_per_epoch
    return min(v for v in (config.max_steps, by_epochs) if v is not None)


def run(trainer: Trainer, batches: BatchSource, run_dir: RunDir, config: LoopConfig,
        ctx: DistContext | None = None, resume: Resume | str | os.PathLike = Resume.AUTO) -> LoopState:
    """Train until ``config.max_steps`` / ``config.max_epochs``; return the final position.

    ``resume``: a :class:`Resume` mode, or the path of a checkpoint to continue from (new
    checkpoints still go to ``run_dir``). Metrics logged after the resumed step by an interrupted run
    are dropped from metrics.jsonl, so the file reads as one uninterrupted run.
    Raises NonFiniteLossError (from ddx.train.guard) at the first nan/inf loss, before that step
    can be checkpointed; it names the step by its 1-based number, as metrics.jsonl and checkpoints do.
    """
    ctx = ctx if ctx is not None else DistContext()
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must subclass ddx.train.Trainer, got {type(trainer).__name__}")
    batches_per_epoch = len(batches)
    if batches_per_epoch < 1:
        raise ValueError("the batch source yields no batch per epoch")
    manager = CheckpointManager(run_dir.checkpoints_dir, config.keep_last, create=ctx.is_main)
    try:
        path = _main_decides(lambda: checkpoint_to_load(resume, manager), ctx)
        state = LoopState(batches_per_epoch=batches_per_epoch) if path is None else _restore(trainer, path, batches, ctx)
    except UserError:
        run_dir.restore_config()  # the config of a run that did not start must not replace the run's own
        raise
    run_dir.truncate_metrics(after_step=state.step)
    loop = _Run(trainer, run_dir, config, ctx, manager, state, _batch_size(batches))
    if path is not None:
        loop.saved_at = loop.position()
    progress = Progress(_total_steps(config, batches_per_epoch), "step", log_every=config.log_interval,
                        start=state.step, enabled=ctx.is_main and config.progress)
    if path is not None:
        progress.write(f"resumed from {path} at step {state.step} (epoch {state.epoch}, "
                       f"batch {state.batch_index})")
    # The CUDA profiler runs only over the steady-state window (nsys --capture-range=cudaProfilerApi).
    profile_window = SteadyStateWindow(-1 if config.profile_start is None else config.profile_start, config.profile_steps)
    try:
        while True:
            if state.batch_index == batches_per_epoch:
                loop.end_epoch()
            if loop.finished():
                break
            for batch in batches.epoch(state.epoch, state.batch_index):
                profile_window.step(state.step)
                losses = check_finite(trainer.train_step(batch, state.step), state.step, ctx)
                loop.after_step(losses)
                progress.update_to(state.step, losses, state.epoch)
                if loop.finished():
                    break
        profile_window.step(profile_window.stop)
        if loop.saved_at != loop.position():
            loop.save()
    except NonFiniteLossError as err:
        # Every rank raises it at the same step (check_finite all-reduces), so this broadcast meets on all;
        # rank 0's view counts, as ranks without shared storage see no checkpoints.
        err.note_checkpoint(broadcast_from_main(manager.latest() if ctx.is_main else None, ctx))
        raise
    finally:
        progress.close()
    return state
