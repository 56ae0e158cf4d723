"""`python train.py ddgan [flags]`: train_ddgan.py's flags and defaults, on ddx's shared training loop.

    python train.py ddgan --preset toy25 --outdir runs/toy25
    torchrun --nproc_per_node 4 train.py ddgan --preset cifar10 --data_root data/cifar10
    python train.py ddgan --preset cifar10 --data_root data/cifar10 --num_process_per_node 4   # the same

train_ddgan.py's launcher flags (--num_process_per_node, --num_proc_node, --node_rank, --master_address)
start the same torchrun command (printed first); --discriminator small|large overrides the official choice
of discriminator (small for cifar10 / stackmnist / ddx's digits sets, large for the others).

The run directory (--outdir, default saved_info/dd_gan/<dataset>/<exp> as the official exp_path) holds
config.json (the resolved configuration), metrics.jsonl, samples/, checkpoints/ (ddx, exact resume) and the
official files content.pth / netG_<epoch>.pth. The official loop runs epochs 0..num_epoch (num_epoch + 1
epochs); so does this one. --resume continues from the run's latest ddx checkpoint, or else from an official
content.pth in the run directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ddx.cli.profile_window import add_profile_window, profile_window_kwargs
from ddx import profiling
from ddx.checkpoints.ddgan_official import CONTENT_FILE, load_official_content, trainer_state_from_content
from ddx.cli.validators import (
    FlagValueError,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from ddx.data.factory import TOY, build_dataset
from ddx.data.toy2d import mixture_spec
from ddx.train import (
    CheckpointError,
    CheckpointManager,
    EpochBatches,
    LoopConfig,
    LoopState,
    Resume,
    RunDir,
    capture_rng_state,
    init_distributed,
    rank_seed,
    run,
    seed_everything,
    shutdown,
    wrap_ddp,
)
from ddx.train.ddgan import DDGANTrainConfig, DDGANTrainer
from ddx.train.ddgan_outputs import EpochOutputs
from ddx.train.ddgan_setup import (
    ScaledDataset,
    add_discriminator_flag,
    add_model_flags,
    add_preset_flag,
    build_discriminator,
    build_generator,
    check_model_flags,
    data_config,
    diffusion_config,
    discriminator_kind,
    generator_config,
    is_toy,
    parse_flags,
)
from ddx.train.distributed import launched_by_torchrun
from ddx.train.loop import CHECKPOINT_FORMAT
from ddx.utils.errors import UsageError


def unit_interval_open(text: str) -> float:
    """A number in [0, 1)."""
    value = probability(text)
    if value >= 1.0:
        raise FlagValueError(f"expected a number in [0, 1), got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py ddgan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_flag(parser)
    parser.add_argument("--resume", action="store_true", default=False)
    parser.add_argument("--exp", default="experiment_cifar_default", help="name of the experiment")
    parser.add_argument("--outdir", type=Path, default=None,
                        help="run directory (default saved_info/dd_gan/<dataset>/<exp>)")
    add_model_flags(parser)
    add_profile_window(parser)
    train = parser.add_argument_group("training")
    train.add_argument("--batch_size", type=positive_int, default=128, help="per-rank batch")
    train.add_argument("--num_epoch", type=non_negative_int, default=1200,
                       help="the last epoch: epochs 0..num_epoch run, as the official loop")
    train.add_argument("--ngf", type=positive_int, default=64, help="discriminator width")
    train.add_argument("--lr_g", type=positive_float, default=1.5e-4)
    train.add_argument("--lr_d", type=positive_float, default=1e-4)
    train.add_argument("--beta1", type=unit_interval_open, default=0.5)
    train.add_argument("--beta2", type=unit_interval_open, default=0.9)
    train.add_argument("--no_lr_decay", action="store_true", default=False)
    train.add_argument("--use_ema", action="store_true", default=False)
    train.add_argument("--ema_decay", type=unit_interval_open, default=0.9999)
    train.add_argument("--r1_gamma", type=non_negative_float, default=0.05)
    train.add_argument("--lazy_reg", type=positive_int, default=None)
    train.add_argument("--save_content", action="store_true", default=False)
    train.add_argument("--save_content_every", type=positive_int, default=50)
    train.add_argument("--save_ckpt_every", type=positive_int, default=25)
    train.add_argument("--max_steps", type=positive_int, default=None, help="stop after this many steps (short runs)")
    train.add_argument("--log_interval", type=positive_int, default=100)
    train.add_argument("--keep_last", type=positive_int, default=3, help="ddx checkpoints kept")
    add_discriminator_flag(train)
    procs = parser.add_argument_group(
        "processes (train_ddgan.py's launcher flags: ddx runs them through torchrun, see --num_process_per_node)")
    procs.add_argument("--num_proc_node", type=positive_int, default=1, help="nodes")
    procs.add_argument("--num_process_per_node", type=positive_int, default=1,
                       help="processes (GPUs) per node; above 1 outside torchrun, ddx launches "
                            "torchrun --nproc_per_node N with the other flags (and prints that command)")
    procs.add_argument("--node_rank", type=non_negative_int, default=0, help="this node's index")
    procs.add_argument("--local_rank", "--local-rank", type=non_negative_int, default=0,
                       help="accepted for torch.distributed.launch (--local-rank); ddx reads LOCAL_RANK")
    procs.add_argument("--master_address", default="127.0.0.1", help="address of node 0")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Flags with the preset's defaults under the explicit ones, every cross-flag check passed."""
    parser = build_parser()
    args, checks = parse_flags(parser, argv)
    check_model_flags(args, checks)
    checks.require(args.node_rank < args.num_proc_node, ["node_rank", "num_proc_node"],
                   "--node_rank counts the nodes from 0: it must be below --num_proc_node")
    if not is_toy(args) and args.ch_mult is not None:
        group = min(args.batch_size, 4)
        checks.require(args.batch_size % group == 0, ["batch_size"],
                       "the discriminator's minibatch-stddev groups 4 samples: use a multiple of 4 (or 1-3)")
    checks.report(parser)
    if args.outdir is None:
        args.outdir = Path("saved_info") / "dd_gan" / args.dataset.value / args.exp
    return args


def plain(value: Any) -> Any:
    """Flag values as JSON / official-args values: enums by value, tuples as lists, paths as strings."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def official_namespace(args: argparse.Namespace) -> argparse.Namespace:
    """The flags as content.pth's 'args' (an argparse.Namespace of plain values, as the official file holds)."""
    return argparse.Namespace(**{k: plain(v) for k, v in vars(args).items()})


def train_config(args: argparse.Namespace) -> DDGANTrainConfig:
    names = {f.name for f in dataclasses.fields(DDGANTrainConfig)}
    return DDGANTrainConfig(**{name: getattr(args, name) for name in names})


def resolved_config(args: argparse.Namespace) -> dict[str, Any]:
    """What config.json holds: every flag, and the typed configs built from them."""
    return {"model": "ddgan", "args": {k: plain(v) for k, v in vars(args).items()},
            "generator": generator_config(args), "discriminator": discriminator_kind(args),
            "diffusion": diffusion_config(args), "train": train_config(args), "data": data_config(args)}


def convert_official_content(path: Path, trainer: DDGANTrainer, manager: CheckpointManager,
                             batches_per_epoch: int, world_size: int) -> Path:
    """Write an official content.pth as a ddx checkpoint at the start of its epoch, so the loop resumes from it."""
    content = load_official_content(path)
    state = trainer_state_from_content(content, trainer.G, trainer.config.use_ema, trainer.config.ema_decay)
    loop = LoopState(step=int(content["global_step"]), epoch=int(content["epoch"]), batch_index=0,
                     batches_per_epoch=batches_per_epoch)
    payload = {"format": CHECKPOINT_FORMAT, "world_size": world_size, "loop": dataclasses.asdict(loop),
               "rng": [capture_rng_state()] * world_size, "trainer": state}
    return manager.save(loop.step, payload)


def resume_mode(args: argparse.Namespace, run_dir: RunDir, trainer: DDGANTrainer, batches_per_epoch: int,
                ctx) -> Resume:
    """NEVER without --resume (a UsageError where the run directory already holds checkpoints); with it,
    the run's newest intact ddx checkpoint, else its official content.pth, else a CheckpointError."""
    manager = CheckpointManager(run_dir.checkpoints_dir, args.keep_last, create=ctx.is_main)
    latest = manager.latest()
    if not args.resume:
        if latest is not None:
            run_dir.restore_config()
            raise UsageError(f"{run_dir.root} already holds the checkpoints of a run (latest {latest.name}): add "
                             f"--resume to continue it, or give another --outdir (or --exp) for a new run")
        return Resume.NEVER
    content = run_dir.root / CONTENT_FILE
    if latest is None and content.is_file():
        if ctx.is_main:
            convert_official_content(content, trainer, manager, batches_per_epoch, ctx.world_size)
        return Resume.AUTO
    if latest is None:
        run_dir.restore_config()
        raise CheckpointError(f"--resume: nothing to resume in {run_dir.root}: searched {run_dir.checkpoints_dir} for "
                              f"ckpt_<step>.pt and {content} (official); to start a new run there, leave out --resume")
    return Resume.REQUIRE


LAUNCH_FLAGS = ("num_proc_node", "num_process_per_node", "node_rank", "local_rank", "master_address")
OFFICIAL_MASTER_PORT = 6020  # train_ddgan.py's init_processes
TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "train.py"


def without_launch_flags(argv: Sequence[str]) -> list[str]:
    """argv less the official launcher flags (``--flag value`` and ``--flag=value``)."""
    names = {"--" + dest for dest in LAUNCH_FLAGS} | {"--local-rank"}
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif arg.split("=", 1)[0] not in names:
            out.append(arg)
    return out


def torchrun_command(args: argparse.Namespace, argv: Sequence[str], script: str = "train.py") -> list[str]:
    """The torchrun command that train_ddgan.py's --num_process_per_node / --num_proc_node stand for."""
    command = ["torchrun", "--nproc_per_node", str(args.num_process_per_node)]
    if args.num_proc_node > 1:
        command += ["--nnodes", str(args.num_proc_node), "--node_rank", str(args.node_rank),
                    "--master_addr", args.master_address, "--master_port", str(OFFICIAL_MASTER_PORT)]
    else:
        command += ["--standalone"]
    return command + [script, "ddgan", *without_launch_flags(argv)]


def launch_processes(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run this training as its torchrun command (one process per GPU, as train_ddgan.py spawns them)."""
    shown = " ".join(shlex.quote(a) for a in torchrun_command(args, argv))
    if not TRAIN_SCRIPT.is_file():
        raise UsageError(f"--num_process_per_node {args.num_process_per_node}: run it as\n  {shown}")
    print(f"--num_process_per_node {args.num_process_per_node} --num_proc_node {args.num_proc_node}: "
          f"launching\n  {shown}", flush=True)
    command = torchrun_command(args, argv, str(TRAIN_SCRIPT))
    command = [sys.executable, "-m", "torch.distributed.run", *command[1:]]
    return subprocess.run(command, check=False).returncode


def check_world_size(args: argparse.Namespace) -> None:
    """Under torchrun, the official launcher flags (when given) must describe the same processes."""
    world = int(os.environ["WORLD_SIZE"])
    wanted = args.num_proc_node * args.num_process_per_node
    if wanted > 1 and wanted != world:
        raise UsageError(f"--num_proc_node {args.num_proc_node} x --num_process_per_node "
                         f"{args.num_process_per_node} = {wanted} processes, but torchrun started {world}: "
                         f"give one or the other")


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if launched_by_torchrun():
        check_world_size(args)
    elif args.num_proc_node * args.num_process_per_node > 1:
        return launch_processes(args, argv)
    profiling.enable(args.nvtx)
    ctx = init_distributed(args.device)
    if is_toy(args) and ctx.device.type == "cpu":
        # The 2-D MLPs are far too small to split across threads: a second one only waits (measured up to
        # ~15x slower steps on a busy 2-core machine).
        torch.set_num_threads(1)
    seed_everything(rank_seed(args.seed, ctx))
    run_dir = RunDir(args.outdir, is_main=ctx.is_main)
    run_dir.write_config(resolved_config(args))
    netG = wrap_ddp(build_generator(args).to(ctx.device), ctx)
    netD = wrap_ddp(build_discriminator(args).to(ctx.device), ctx)
    outputs = EpochOutputs(run_dir, official_namespace(args), args.save_content, args.save_content_every, args.save_ckpt_every,
                           args.data_scale, mixture_spec(TOY[args.dataset]).means if is_toy(args) else None)
    trainer = DDGANTrainer(netG, netD, diffusion_config(args), train_config(args), ctx, on_epoch=outputs)
    dataset = build_dataset(data_config(args))
    if args.data_scale != 1.0:
        dataset = ScaledDataset(dataset, args.data_scale)
    batches = EpochBatches(dataset, args.batch_size, seed=args.seed, ctx=ctx)
    resume = resume_mode(args, run_dir, trainer, len(batches), ctx)
    loop = LoopConfig(max_steps=args.max_steps, max_epochs=args.num_epoch + 1, log_interval=args.log_interval,
                      save_every_epochs=args.save_content_every, keep_last=args.keep_last,
                      **profile_window_kwargs(args))
    try:
        state = run(trainer, batches, run_dir, loop, ctx, resume=resume)
    finally:
        shutdown(ctx)
    if ctx.is_main:
        print(f"done: {state.step} steps, {state.epoch} epochs; run directory {run_dir.root}")
    return 0
