"""Run a few DDGAN training steps under torchrun as train.py ddgan builds them, then save each rank's weights.

Usage: torchrun --nproc_per_node 2 tests/ddgan/_ddp_ranks.py OUTDIR STEPS [train.py ddgan flags...]
Writes OUTDIR/rank<r>.pt with G's and D's state_dicts, the Adam state sizes and the last batch of fakes.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ddx.cli import train_ddgan  # noqa: E402
from ddx.data.factory import build_dataset  # noqa: E402
from ddx.train import EpochBatches, init_distributed, rank_seed, seed_everything, shutdown, wrap_ddp  # noqa: E402
from ddx.train.ddgan import DDGANTrainer  # noqa: E402
from ddx.train.ddgan_setup import build_discriminator, build_generator, data_config  # noqa: E402


def main(argv):
    outdir, steps, flags = Path(argv[0]), int(argv[1]), argv[2:]
    config = train_ddgan.parse_args(flags + ["--outdir", str(outdir)])
    ctx = init_distributed("cpu")
    seed_everything(rank_seed(config.loop.seed, ctx))
    netG = wrap_ddp(build_generator(config), ctx)
    netD = wrap_ddp(build_discriminator(config), ctx)
    trainer = DDGANTrainer(netG, netD, config.diffusion, config.train, ctx, execution=config.execution)
    batches = EpochBatches(build_dataset(data_config(config)), config.loop.batch_size, seed=config.loop.seed, ctx=ctx)
    step = 0
    for batch in batches.epoch(0):
        if step == steps:
            break
        trainer.train_step(batch, step)
        step += 1
    torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict(), "fake": trainer.last_x_pos,
                "real": trainer.last_real, "steps": step}, outdir / f"rank{ctx.rank}.pt")
    shutdown(ctx)


if __name__ == "__main__":
    main(sys.argv[1:])
