"""Wiring of `train.py iddpm`: resolved flags -> configs, model, data, trainer, and ddx.train.run."""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

import torch

from ddx.cli.profile_window import profile_window_kwargs
from ddx import profiling
from ddx.checkpoints.iddpm_official import parse_model_step
from ddx.data import DataConfig, DatasetName, Split, build_dataset
from ddx.diffusion import DiffusionConfig
from ddx.models.unet import UNetConfig, build_unet
from ddx.nn.fused import set_fused
from ddx.train import (
    EpochBatches,
    LoopConfig,
    Resume,
    RunDir,
    init_distributed,
    rank_seed,
    run,
    seed_everything,
    shutdown,
)
from ddx.train.distributed import broadcast_from_main, print_main
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer
from ddx.train.loop import LoopState

UNTIL_KILLED = 999_999_999  # the official loop runs until killed when lr_anneal_steps is 0
LOGDIR_ENV = "OPENAI_LOGDIR"  # the official logger's run folder, when set


def default_outdir(args: argparse.Namespace, now: datetime.datetime | None = None) -> Path:
    """The run folder without --outdir, as the official logger.configure(): $OPENAI_LOGDIR when set, else a
    new folder named after the date and time (ddx: runs/iddpm-<dataset>-<YYYYmmdd-HHMMSS>, -2, -3, ... when
    that exists already, so a second run never resumes the first)."""
    name = args.dataset.value if args.dataset is not None else DatasetName.IMAGE_FOLDER.value
    return logger_dir(f"iddpm-{name}", now)


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


def unet_config(args: argparse.Namespace) -> UNetConfig:
    return UNetConfig(
        image_size=args.image_size, num_channels=args.num_channels, num_res_blocks=args.num_res_blocks,
        learn_sigma=args.learn_sigma, class_cond=args.class_cond, use_checkpoint=args.use_checkpoint,
        attention_resolutions=tuple(args.attention_resolutions), num_heads=args.num_heads,
        num_heads_upsample=args.num_heads_upsample, use_scale_shift_norm=args.use_scale_shift_norm,
        dropout=args.dropout, channel_mult=None if args.channel_mult is None else tuple(args.channel_mult),
    )


def diffusion_config(args: argparse.Namespace) -> DiffusionConfig:
    return DiffusionConfig(
        steps=args.diffusion_steps, learn_sigma=args.learn_sigma, sigma_small=args.sigma_small,
        noise_schedule=args.noise_schedule, use_kl=args.use_kl, predict_xstart=args.predict_xstart,
        rescale_timesteps=args.rescale_timesteps, rescale_learned_sigmas=args.rescale_learned_sigmas,
        timestep_respacing=args.timestep_respacing,
    )


def data_config(args: argparse.Namespace, split: Split = Split.TRAIN) -> DataConfig:
    name = args.dataset if args.dataset is not None else DatasetName.IMAGE_FOLDER
    return DataConfig(name, root=args.data_dir or None, image_size=args.image_size, split=split)


def train_config(args: argparse.Namespace) -> IddpmTrainConfig:
    return IddpmTrainConfig(
        lr=args.lr, weight_decay=args.weight_decay, lr_anneal_steps=args.lr_anneal_steps, batch_size=args.batch_size,
        microbatch=args.microbatch, ema_rates=tuple(args.ema_rate), schedule_sampler=args.schedule_sampler,
        amp=args.amp, fp16_scale_growth=args.fp16_scale_growth,
    )


def loop_config(args: argparse.Namespace, step_offset: int = 0) -> LoopConfig:
    """max_steps: the flag, else up to lr_anneal_steps (counting an official resume's steps), else until killed."""
    if args.max_steps is not None:
        max_steps = args.max_steps
    elif args.lr_anneal_steps:
        max_steps = max(1, args.lr_anneal_steps - step_offset)
    else:
        max_steps = UNTIL_KILLED
    return LoopConfig(max_steps=max_steps, log_interval=args.log_interval, save_interval=args.save_interval,
                      **profile_window_kwargs(args))


def _resume_target(args: argparse.Namespace) -> tuple[Resume | Path, Path | None]:
    """(what run() resumes from, an official model<N>.pt to start from instead)."""
    path = args.resume_checkpoint
    if path is None:
        return Resume.AUTO, None
    if parse_model_step(path) is not None:
        return Resume.NEVER, Path(path)
    return Path(path), None


def train_from_args(args: argparse.Namespace) -> LoopState:
    """Train as the validated flags say (see ddx.cli.train_iddpm); returns the final loop position."""
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    profiling.enable(args.nvtx)
    ctx = init_distributed(args.device)
    try:
        if args.outdir is None:
            args.outdir = broadcast_from_main(str(default_outdir(args)) if ctx.is_main else None, ctx)
            print_main(ctx, f"run directory {args.outdir} (no --outdir given; give --outdir {args.outdir} "
                            f"to resume this run)")
        seed_everything(rank_seed(args.seed, ctx))
        model_cfg, diffusion_cfg = unet_config(args), diffusion_config(args)
        data_cfg, train_cfg = data_config(args), train_config(args)
        model = set_fused(build_unet(model_cfg), args.fused).to(ctx.device)
        diffusion = diffusion_cfg.build(fused=args.fused)
        run_dir = RunDir(args.outdir, is_main=ctx.is_main)
        trainer = IddpmTrainer(model, diffusion, train_cfg, ctx, class_cond=args.class_cond,
                               export_dir=run_dir.root if args.export_official else None)
        resume, official = _resume_target(args)
        if official is not None:
            trainer.load_official(official)
        loop_cfg = loop_config(args, trainer.step_offset)
        run_dir.write_config({
            "flags": dict(vars(args)), "model": model_cfg, "diffusion": diffusion_cfg,
            "train": train_cfg, "data": data_cfg, "loop": loop_cfg, "world_size": ctx.world_size,
            "num_parameters": sum(p.numel() for p in model.parameters()),
        })
        batches = EpochBatches(build_dataset(data_cfg), args.batch_size, seed=args.seed, ctx=ctx)
        return run(trainer, batches, run_dir, loop_cfg, ctx, resume=resume)
    finally:
        shutdown(ctx)


__all__ = ["LOGDIR_ENV", "UNTIL_KILLED", "data_config", "default_outdir", "diffusion_config", "logger_dir",
           "loop_config", "train_config", "train_from_args", "unet_config"]
