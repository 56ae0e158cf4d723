"""Wiring of `train.py iddpm`: a resolved IddpmRunConfig -> model, diffusion, data, trainer, and ddx.train.run.

The run configuration (ddx.train.iddpm_config) is the one source: config.json records it (ddx.train.run_file,
family "iddpm"), and a run resumed in the same folder must build the same model, diffusion and data.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Sequence
from pathlib import Path


from ddx.checkpoints.iddpm_official import parse_model_step
from ddx.checkpoints.io import CheckpointManager
from ddx.data import build_dataset
from ddx.execution import apply_process_options
from ddx.models.unet import build_unet
from ddx.train import (
    EpochBatches,
    Resume,
    RunDir,
    init_distributed,
    rank_seed,
    run,
    seed_everything,
    shutdown,
)
from ddx.train.distributed import broadcast_from_main, print_main
from ddx.train.iddpm import IddpmTrainer
from ddx.train.iddpm_config import (
    DEFINING_SECTIONS,
    FAMILY,
    IDDPM_DEFAULTS,
    IDDPM_LEGACY,
    UNTIL_KILLED,
    IddpmRunConfig,
)
from ddx.train.loop import LoopState
from ddx.train.run_file import check_resume, read_run, run_config_path, run_record

LOGDIR_ENV = "OPENAI_LOGDIR"  # the official logger's run folder, when set


def default_outdir(config: IddpmRunConfig, now: datetime.datetime | None = None) -> Path:
    """The run folder without --outdir, as the official logger.configure(): $OPENAI_LOGDIR when set, else a
    new folder named after the date and time (ddx: runs/iddpm-<dataset>-<YYYYmmdd-HHMMSS>, -2, -3, ... when
    that exists already, so a second run never resumes the first)."""
    return logger_dir(f"iddpm-{config.data.dataset_name.value}", now)


def logger_dir(prefix: str, now: datetime.datetime | None = None) -> Path:
    """$OPENAI_LOGDIR when set, else a new runs/<prefix>-<YYYYmmdd-HHMMSS> (-2, -3, ... when that exists)."""
    logdir = os.environ.get(LOGDIR_ENV, "").strip()
    if logdir:
        return Path(logdir).expanduser()
    base = Path("runs") / f"{prefix}-{(now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _resume_target(config: IddpmRunConfig) -> tuple[Resume | Path, Path | None]:
    """(what run() resumes from, an official model<N>.pt to start from instead)."""
    path = config.run.resume_checkpoint
    if path is None:
        return Resume.AUTO, None
    if parse_model_step(path) is not None:
        return Resume.NEVER, Path(path)
    return Path(path), None


def _resumed_run(config: IddpmRunConfig, resume: Resume | Path) -> Path | None:
    """The run folder whose config.json the resume continues: this run folder when it holds checkpoints (AUTO),
    or the run of the ddx checkpoint given; None for a fresh start or a checkpoint outside a run."""
    if isinstance(resume, Path):
        folder = resume.parent.parent if resume.parent.name == "checkpoints" else resume.parent
    else:
        folder = Path(config.run.outdir)
        if CheckpointManager(folder / "checkpoints", keep_last=1, create=False).latest() is None:
            return None
    return folder if run_config_path(folder).is_file() and folder.is_dir() else None


def _outdir_chosen(config: IddpmRunConfig, ctx) -> IddpmRunConfig:
    """config with run.outdir set: the flag, else rank 0's default folder (printed), shared by every rank."""
    if config.run.outdir is not None:
        return config
    outdir = broadcast_from_main(str(default_outdir(config)) if ctx.is_main else None, ctx)
    print_main(ctx, f"run directory {outdir} (no --outdir given; give --outdir {outdir} to resume this run)")
    return dataclasses.replace(config, run=dataclasses.replace(config.run, outdir=outdir))


def train_from_config(config: IddpmRunConfig, command: Sequence[str] = ()) -> LoopState:
    """Train as the resolved run configuration says (see ddx.cli.train_iddpm); returns the final loop position.

    command: the argv that made the configuration, recorded in config.json."""
    execution = config.execution
    apply_process_options(execution)
    ctx = init_distributed(execution.device)
    try:
        config = _outdir_chosen(config, ctx)
        resume, official = _resume_target(config)
        resumed = _resumed_run(config, resume)
        if resumed is not None:
            check_resume(read_run(resumed, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY), config, DEFINING_SECTIONS)
        seed_everything(rank_seed(config.run.seed, ctx))
        model = build_unet(config.model).to(ctx.device)
        diffusion = config.diffusion_config().build(fused=execution.fused)
        run_dir = RunDir(config.run.outdir, is_main=ctx.is_main)
        # The trainer routes the model and diffusion by execution.fused and runs the model in its precision.
        trainer = IddpmTrainer(model, diffusion, config.train_config(), ctx, class_cond=config.model.class_cond,
                               export_dir=run_dir.root if config.run.export_official else None, execution=execution)
        if official is not None:
            trainer.load_official(official)
        loop_cfg = config.loop_config(trainer.step_offset)
        run_dir.write_config(run_record(FAMILY, config, command, world_size=ctx.world_size,
                                        num_parameters=sum(p.numel() for p in model.parameters())))
        data_cfg = config.data_config()
        batches = EpochBatches(build_dataset(data_cfg), config.train.batch_size, seed=config.run.seed, ctx=ctx)
        return run(trainer, batches, run_dir, loop_cfg, ctx, resume=resume)
    finally:
        shutdown(ctx)


__all__ = ["LOGDIR_ENV", "UNTIL_KILLED", "default_outdir", "logger_dir", "train_from_config"]
