"""A tiny trainer on a 2-D toy, used by the tests in-process and as a script (plain or under torchrun).

The default objective denoises 2-D points with noise drawn from torch, numpy and Python's ``random``
(so every generator's restore matters), uses Adam, an EMA and a per-epoch LR schedule (DDGAN-like).
``--deterministic`` regresses a fixed target with SGD and no randomness (for the DDP comparison).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ddx.cli import non_negative_int, positive_int  # noqa: E402
from ddx.data import Mixture2D, mixture_spec, sample_mixture  # noqa: E402
from ddx.train import (  # noqa: E402
    DistContext,
    EpochBatches,
    LoopConfig,
    RunDir,
    Trainer,
    all_gather_cat,
    all_reduce_mean,
    init_distributed,
    rank_seed,
    run,
    seed_everything,
    shutdown,
    unwrap,
    wrap_ddp,
)


def toy_dataset(n: int = 96) -> TensorDataset:
    """``n`` points of ddx.data's 25-Gaussian grid mixture (std 0.05), from a fixed generator."""
    points, _ = sample_mixture(mixture_spec(Mixture2D.GRID25), n, torch.Generator().manual_seed(1234))
    return TensorDataset(points)


class SimulatedCrash(RuntimeError):
    pass


class ToyTrainer(Trainer):
    def __init__(self, ctx: DistContext, deterministic: bool = False, nan_at_step: int | None = None,
                 hang_at_step: int | None = None, crash_at_step: int | None = None, run_dir: RunDir | None = None):
        torch.manual_seed(0)  # identical initial weights on every rank and in every run
        model = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 2)).to(ctx.device)
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.model = wrap_ddp(model, ctx)
        self.deterministic = deterministic
        if deterministic:
            self.opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        else:
            self.opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=4, eta_min=1e-4)
        self.nan_at_step = nan_at_step
        self.hang_at_step = hang_at_step
        self.crash_at_step = crash_at_step
        self.run_dir = run_dir
        self.epochs_ended: list[int] = []

    def train_step(self, batch, step):
        if step == self.hang_at_step:
            time.sleep(600)  # the test kills the process here
        if step == self.crash_at_step:
            raise SimulatedCrash(f"simulated crash at step {step}")
        (x,) = batch
        if self.deterministic:
            target = torch.stack([x[:, 1], -x[:, 0]], dim=1)
            loss = (self.model(x) - target).pow(2).mean()
            terms = {"loss": loss}
        else:
            sigma = 0.5 + random.random()
            shift = torch.from_numpy(np.random.normal(size=(1, 2))).float()
            noisy = x + sigma * torch.randn_like(x) + 0.01 * shift
            loss = (self.model(noisy) - x).pow(2).mean()
            terms = {"loss": loss, "sigma": torch.tensor(sigma)}
        if step == self.nan_at_step:
            loss = loss * float("nan")
            terms["loss"] = loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for p_ema, p in zip(self.ema.parameters(), unwrap(self.model).parameters()):
                p_ema.lerp_(p, 0.1)
        return terms

    def on_epoch_end(self, epoch):
        with warnings.catch_warnings():
            # When a resumed run starts with this hook, torch warns that the optimizer has not stepped
            # in this process yet; harmless, the schedule's state was restored.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            self.sched.step()
        self.epochs_ended.append(epoch)
        if self.run_dir is not None and not self.deterministic:
            grid = self.ema(torch.randn(4, 2)).reshape(1, 1, 2, 4).tanh()
            self.run_dir.save_images(f"epoch_{epoch}", grid)

    def extra_metrics(self):
        return {"lr": self.opt.param_groups[0]["lr"]}

    def state_dict(self):
        return {"model": unwrap(self.model).state_dict(), "ema": self.ema.state_dict(),
                "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "epochs_ended": list(self.epochs_ended)}

    def load_state_dict(self, state):
        unwrap(self.model).load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epochs_ended = list(state["epochs_ended"])


def check_collectives(ctx: DistContext, run_dir: RunDir) -> None:
    """Exercise the gather/mean helpers with per-rank lengths that differ; rank 0 writes the result."""
    t = torch.arange(ctx.rank + 1) + 10 * ctx.rank
    losses = t.float() / 2
    gathered = {"t": all_gather_cat(t, ctx).tolist(), "losses": all_gather_cat(losses, ctx).tolist(),
                "mean": all_reduce_mean(torch.tensor([float(ctx.rank), 1.0]), ctx).tolist()}
    if ctx.is_main:
        (run_dir.root / "collectives.json").write_text(json.dumps(gathered))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--max-steps", type=positive_int, required=True)
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--save-interval", type=positive_int, default=None)
    parser.add_argument("--keep-last", type=positive_int, default=2)
    parser.add_argument("--hang-at-step", type=non_negative_int, default=None)
    parser.add_argument("--crash-at-step", type=non_negative_int, default=None)
    parser.add_argument("--nan-at-step", type=non_negative_int, default=None)
    parser.add_argument("--deterministic", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: float reductions in the same order in every process
    ctx = init_distributed(device="cpu")
    run_dir = RunDir(args.run_dir, is_main=ctx.is_main)
    if ctx.is_distributed:
        check_collectives(ctx, run_dir)
    trainer = ToyTrainer(ctx, deterministic=args.deterministic, nan_at_step=args.nan_at_step,
                         hang_at_step=args.hang_at_step, crash_at_step=args.crash_at_step, run_dir=run_dir)
    seed_everything(rank_seed(7, ctx))  # after the weights' seed: the noise differs per rank
    batches = EpochBatches(toy_dataset(), args.batch_size, seed=3, ctx=ctx)
    config = LoopConfig(max_steps=args.max_steps, log_interval=1, save_interval=args.save_interval,
                        keep_last=args.keep_last, progress=False)
    run(trainer, batches, run_dir, config, ctx)
    shutdown(ctx)


if __name__ == "__main__":
    main()
