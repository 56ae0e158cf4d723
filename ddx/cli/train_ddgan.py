"""`python train.py ddgan [flags]`: train_ddgan.py's flags and defaults, on ddx's shared training loop.

    python train.py ddgan --preset toy25 --outdir runs/toy25
    torchrun --nproc_per_node 4 train.py ddgan --preset cifar10 --data_root data/cifar10
    python train.py ddgan --preset cifar10 --data_root data/cifar10 --num_process_per_node 4   # the same

train_ddgan.py's launcher flags (--num_process_per_node, --num_proc_node, --node_rank, --master_address)
start the same torchrun command (printed first); --discriminator small|large overrides the official choice
of discriminator (small for cifar10 / stackmnist / ddx's digits sets, large for the others).

The run directory (--outdir, default saved_info/dd_gan/<dataset>/<exp> as the official exp_path) holds
config.json (the resolved DDGANRunConfig, in ddx.train.run_file's layout), metrics.jsonl, samples/,
checkpoints/ (ddx, exact resume) and the official files content.pth / netG_<epoch>.pth. The official loop
runs epochs 0..num_epoch (num_epoch + 1 epochs); so does this one. --resume continues from the run's latest
ddx checkpoint, or else from an official content.pth in the run directory; a run whose config.json records
other model, diffusion or data values than the command is refused, naming each field.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ddx.checkpoints.ddgan_official import CONTENT_FILE, load_official_content
from ddx.checkpoints.io import CHECKPOINT_FORMAT
from ddx.cli.ddgan_flags import (
    add_flags,
    build_config,
    check_model_flags,
    checks_of,
    is_toy,
    merged_flags,
    preset_layer,
    resolve_threads,
)
from ddx.cli.config_flags import typed_values
from ddx.cli.validators import non_negative_int, positive_int
from ddx.execution import apply_process_options
from ddx.train import (
    CheckpointError,
    CheckpointManager,
    EpochBatches,
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
from ddx.train.ddgan import DDGANTrainer
from ddx.train.ddgan_config import DEFINING_SECTIONS, DDGANRunConfig, read_ddgan_run
from ddx.train.ddgan_official_state import trainer_state_from_content
from ddx.train.ddgan_outputs import EpochOutputs
from ddx.train.ddgan_setup import (
    build_discriminator,
    build_generator,
    discriminator_kind,
    loop_config,
    mixture_means,
    training_dataset,
)
from ddx.train.distributed import launched_by_torchrun
from ddx.train.run_file import check_resume, run_record
from ddx.utils.config_io import flat_values, to_plain
from ddx.utils.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Launch:
    """train_ddgan.py's launcher flags: ddx runs the processes they describe through torchrun."""

    num_proc_node: int = 1
    num_process_per_node: int = 1
    node_rank: int = 0
    local_rank: int = 0
    master_address: str = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class TrainCommand:
    """A resolved `train.py ddgan` command: the run configuration and what only this command means."""

    config: DDGANRunConfig
    launch: Launch = Launch()
    resume: bool = False
    preset: str | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py ddgan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(parser)
    parser.add_argument("--resume", action="store_true", default=False)
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


def parse_command(argv: Sequence[str]) -> TrainCommand:
    """The flags over the --preset's values over train_ddgan.py's defaults, every cross-flag check passed."""
    parser = build_parser()
    namespace = parser.parse_args(list(argv))
    preset, values = preset_layer(parser, namespace.preset)
    layers = [(f"from --preset {namespace.preset}", values), ("", typed_values(namespace, DDGANRunConfig))]
    merged, sources, given = merged_flags(preset, layers)
    launch = Launch(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(Launch)})
    view, checks = checks_of(merged, sources, **dataclasses.asdict(launch))
    check_model_flags(view, checks, given)
    checks.require(launch.node_rank < launch.num_proc_node, ["node_rank", "num_proc_node"],
                   "--node_rank counts the nodes from 0: it must be below --num_proc_node")
    if not is_toy(view) and view.ch_mult:
        group = min(view.batch_size, 4)
        checks.require(view.batch_size % group == 0, ["batch_size"],
                       "the discriminator's minibatch-stddev groups 4 samples: use a multiple of 4 (or 1-3)")
    checks.report(parser)
    config = resolve_threads(build_config(parser, merged))
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, outdir=config.run_dir))
    return TrainCommand(config, launch, namespace.resume, namespace.preset)


def parse_args(argv: Sequence[str]) -> DDGANRunConfig:
    """The resolved run configuration of a train.py ddgan command line."""
    return parse_command(argv).config


def official_namespace(command: TrainCommand) -> argparse.Namespace:
    """The flags as content.pth's 'args' (an argparse.Namespace of plain values, as the official file holds)."""
    values = to_plain(flat_values(command.config))
    return argparse.Namespace(**values, **dataclasses.asdict(command.launch), resume=command.resume,
                              preset=command.preset)


def resolved_config(command: TrainCommand, argv: Sequence[str] = (), world_size: int = 1,
                    generator: torch.nn.Module | None = None,
                    discriminator: torch.nn.Module | None = None) -> dict[str, Any]:
    """What config.json holds (ddx.train.run_file's layout): the run configuration, the command line, and what
    follows from it (the discriminator train_ddgan.py's rule picked, the networks' parameter counts)."""
    extras: dict[str, Any] = {}
    if generator is not None and discriminator is not None:
        extras["num_parameters"] = {name: sum(p.numel() for p in net.parameters())
                                    for name, net in (("generator", generator), ("discriminator", discriminator))}
    return run_record("ddgan", command.config, ["train.py", "ddgan", *map(str, argv)], preset=command.preset,
                      world_size=world_size,
                      discriminator_kind=discriminator_kind(command.config), **extras)


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


def resume_mode(command: TrainCommand, run_dir: RunDir, trainer: DDGANTrainer, batches_per_epoch: int,
                ctx) -> Resume:
    """NEVER without --resume (a UsageError where the run directory already holds checkpoints); with it,
    the run's newest intact ddx checkpoint, else its official content.pth, else a CheckpointError."""
    manager = CheckpointManager(run_dir.checkpoints_dir, command.config.loop.keep_last, create=ctx.is_main)
    latest = manager.latest()
    if not command.resume:
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


def check_resumed_run(command: TrainCommand) -> None:
    """--resume of a run whose config.json records another model, diffusion or data: a UsageError listing the
    fields (recorded value vs new value). The data's folder may move (data_root is not compared)."""
    path = command.config.run_dir / "config.json"
    if command.resume and path.is_file():
        check_resume(read_ddgan_run(path), command.config, DEFINING_SECTIONS, exempt=("data_root",),
                     new_run="choose another --outdir (or --exp) for a new run")


LAUNCH_FLAGS = tuple(f.name for f in dataclasses.fields(Launch))
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


def torchrun_command(launch: Launch, argv: Sequence[str], script: str = "train.py") -> list[str]:
    """The torchrun command that train_ddgan.py's --num_process_per_node / --num_proc_node stand for."""
    command = ["torchrun", "--nproc_per_node", str(launch.num_process_per_node)]
    if launch.num_proc_node > 1:
        command += ["--nnodes", str(launch.num_proc_node), "--node_rank", str(launch.node_rank),
                    "--master_addr", launch.master_address, "--master_port", str(OFFICIAL_MASTER_PORT)]
    else:
        command += ["--standalone"]
    return command + [script, "ddgan", *without_launch_flags(argv)]


def launch_processes(launch: Launch, argv: Sequence[str]) -> int:
    """Run this training as its torchrun command (one process per GPU, as train_ddgan.py spawns them)."""
    shown = " ".join(shlex.quote(a) for a in torchrun_command(launch, argv))
    if not TRAIN_SCRIPT.is_file():
        raise UsageError(f"--num_process_per_node {launch.num_process_per_node}: run it as\n  {shown}")
    print(f"--num_process_per_node {launch.num_process_per_node} --num_proc_node {launch.num_proc_node}: "
          f"launching\n  {shown}", flush=True)
    command = torchrun_command(launch, argv, str(TRAIN_SCRIPT))
    command = [sys.executable, "-m", "torch.distributed.run", *command[1:]]
    return subprocess.run(command, check=False).returncode


def check_world_size(launch: Launch) -> None:
    """Under torchrun, the official launcher flags (when given) must describe the same processes."""
    world = int(os.environ["WORLD_SIZE"])
    wanted = launch.num_proc_node * launch.num_process_per_node
    if wanted > 1 and wanted != world:
        raise UsageError(f"--num_proc_node {launch.num_proc_node} x --num_process_per_node "
                         f"{launch.num_process_per_node} = {wanted} processes, but torchrun started {world}: "
                         f"give one or the other")


def main(argv: Sequence[str]) -> int:
    command = parse_command(argv)
    config, launch = command.config, command.launch
    if launched_by_torchrun():
        check_world_size(launch)
    elif launch.num_proc_node * launch.num_process_per_node > 1:
        return launch_processes(launch, argv)
    check_resumed_run(command)
    apply_process_options(config.execution)
    ctx = init_distributed(config.execution.device)
    seed_everything(rank_seed(config.loop.seed, ctx))
    run_dir = RunDir(config.run_dir, is_main=ctx.is_main)
    generator, discriminator = build_generator(config), build_discriminator(config)
    run_dir.write_config(resolved_config(command, argv, ctx.world_size, generator, discriminator))
    netG = wrap_ddp(generator.to(ctx.device), ctx)
    netD = wrap_ddp(discriminator.to(ctx.device), ctx)
    loop = config.loop
    outputs = EpochOutputs(run_dir, official_namespace(command), loop.save_content, loop.save_content_every,
                           loop.save_ckpt_every, config.data.data_scale, mixture_means(config))
    trainer = DDGANTrainer(netG, netD, config.diffusion, config.train, ctx, on_epoch=outputs,
                           execution=config.execution)
    batches = EpochBatches(training_dataset(config), loop.batch_size, seed=loop.seed, ctx=ctx)
    resume = resume_mode(command, run_dir, trainer, len(batches), ctx)
    try:
        state = run(trainer, batches, run_dir, loop_config(config), ctx, resume=resume)
    finally:
        shutdown(ctx)
    if ctx.is_main:
        print(f"done: {state.step} steps, {state.epoch} epochs; run directory {run_dir.root}")
    return 0
