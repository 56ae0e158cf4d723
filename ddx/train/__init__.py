"""Training infrastructure shared by the IDDPM and DDGAN trainers.

How to plug a trainer in
------------------------
Subclass :class:`Trainer` and implement three methods:

- ``train_step(batch, step) -> {"name": scalar tensor, ...}``: one optimisation step (forward,
  backward, optimizer step(s), EMA update). ``step`` is the number of steps done before this one
  (0-based; use it for LR annealing, ``step % lazy_reg == 0`` R1 steps, ...). Move the batch to the
  device yourself. Return the loss terms un-``.item()``-ed.
- ``state_dict()`` / ``load_state_dict(state)``: every model, EMA, optimizer, scheduler and sampler
  state needed to continue (e.g. ``{"model": ..., "ema_0.9999": ..., "opt": ...}``). Only tensors,
  dicts, lists, tuples, numbers, strings and None: checkpoints load with ``weights_only=True``.

Optional hooks: ``on_epoch_end(epoch)`` (DDGAN: ``schedulerG.step()``/``schedulerD.step()``, a sample
grid via ``run_dir.save_images``), ``on_save(step)`` (export EMA weights), ``extra_metrics()``
(``{"lr": ...}`` added to each metrics line).

Then::

    ctx = init_distributed()                       # torchrun env, or a single process
    seed_everything(rank_seed(seed, ctx))          # different noise per rank
    run_dir = RunDir(out_dir, is_main=ctx.is_main)
    run_dir.write_config(config)                   # frozen dataclasses -> config.json
    model = wrap_ddp(model.to(ctx.device), ctx)    # unwrap(model) for the plain module
    batches = EpochBatches(dataset, batch_size, seed=seed, ctx=ctx)   # per-rank batch
    run(trainer, batches, run_dir, LoopConfig(max_steps=..., log_interval=..., save_interval=...), ctx)

IDDPM counts steps (``LoopConfig(max_steps=N, save_interval=S)``); DDGAN counts epochs
(``LoopConfig(max_epochs=E, save_every_epochs=K)``); both may be combined.

What :func:`run` does
---------------------
- Resumes (``Resume.AUTO`` by default) from the newest intact ``run_dir/checkpoints/ckpt_<step>.pt`` or a given
  path: trainer state, every rank's RNG states (torch CPU/CUDA, numpy, random) and the data position
  (epoch, batch within the epoch), so the continuation is bit-identical to an uninterrupted run on the
  CPU. Each rank memory-maps the file where it sees the same file as rank 0 (one node, shared
  storage; compared by size, mtime and the zip directory); rank 0 sends it to the other ranks only
  (no shared disk needed). A corrupt newer checkpoint is renamed ``<name>.corrupt`` with a warning; a
  checkpoint of another world size, per-rank batch, data or model is refused naming what differs
  (ddx.train.resume), and the config.json the caller wrote is put back.
- At the start, rank 0 removes the ``.tmp-*`` files killed processes left (ddx.utils.atomic); a write
  that fills the disk raises DiskFullError naming the file, the previous checkpoint intact.
- Each step: ``train_step``, then the NaN guard (NonFiniteLossError naming the term and step, raised
  on every rank together, before that step can be checkpointed; its message names the last good
  checkpoint), then logging every ``log_interval``
  steps (losses averaged over ranks, to ``metrics.jsonl``), checkpoints every ``save_interval`` steps.
- After an epoch's last batch: ``on_epoch_end(epoch)``, then a checkpoint every ``save_every_epochs``.
- At the end: a final checkpoint. Checkpoints are atomic and the ``keep_last`` newest are kept.
- Only rank 0 writes files and shows progress (a redrawn line on a TTY, a line per log otherwise).
"""

from ddx.checkpoints.io import (
    CheckpointError,
    CheckpointManager,
    UnsafeCheckpointError,
    atomic_save,
    load_checkpoint,
)
from ddx.train.data import EpochBatches
from ddx.train.distributed import (
    Backend,
    DistContext,
    all_gather_cat,
    all_gather_object,
    all_reduce_mean,
    barrier,
    broadcast_from_main,
    init_distributed,
    print_main,
    rank_seed,
    seed_everything,
    shutdown,
    unwrap,
    wrap_ddp,
)
from ddx.train.guard import NonFiniteLossError, check_finite
from ddx.train.loop import BatchSource, LoopConfig, LoopState, Resume, Trainer, run
from ddx.train.rng import capture_rng_state, restore_rng_state
from ddx.train.rundir import RunDir, to_jsonable

__all__ = [
    "Backend", "BatchSource", "CheckpointError", "CheckpointManager", "DistContext", "EpochBatches",
    "LoopConfig", "LoopState", "NonFiniteLossError", "Resume", "RunDir", "Trainer", "UnsafeCheckpointError",
    "all_gather_cat", "all_gather_object", "all_reduce_mean", "atomic_save", "barrier", "broadcast_from_main",
    "capture_rng_state", "check_finite", "init_distributed", "load_checkpoint",
    "print_main", "rank_seed", "restore_rng_state", "run", "seed_everything", "shutdown", "to_jsonable",
    "unwrap", "wrap_ddp",
]
