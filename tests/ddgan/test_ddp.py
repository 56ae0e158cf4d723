"""DDGAN under torchrun with two gloo ranks: each rank draws its own batch, t, noise and z, and DDP keeps
G and D identical across ranks through the D step (with R1's double backward every step) and the G step."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from ddx.cli import train_ddgan
from ddx.train import seed_everything
from ddx.train.ddgan_setup import build_generator
from tests.ddgan.test_cli import TINY_IMAGES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_ddp_ranks.py")


def test_two_ranks_keep_identical_weights_on_different_draws(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(SCRIPT),
         str(tmp_path), "3", *TINY_IMAGES, "--use_ema"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["steps"] == rank1["steps"] == 3
    assert not torch.equal(rank0["real"], rank1["real"])  # each rank its half of the data
    assert not torch.equal(rank0["fake"], rank1["fake"])  # and its own t, noise and z
    for net in ("G", "D"):
        assert rank0[net].keys() == rank1[net].keys()
        for key in rank0[net]:
            torch.testing.assert_close(rank0[net][key], rank1[net][key], rtol=0, atol=0, msg=f"{net}.{key}")

    seed_everything(train_ddgan.parse_args(TINY_IMAGES).loop.seed)  # rank 0's seed: DDP broadcasts its weights
    initial = build_generator(train_ddgan.parse_args(TINY_IMAGES)).state_dict()
    moved = [k for k in initial if not torch.equal(initial[k], rank0["G"][k])]
    assert len(moved) > len(initial) // 2, "three steps should move most of G's tensors"
