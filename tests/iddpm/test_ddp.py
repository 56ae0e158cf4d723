"""train.py iddpm under torchrun with two gloo ranks: microbatches with no_sync, and the loss-aware
timestep sampler updated with both ranks' losses."""

import os
import subprocess
import sys
from pathlib import Path

from ddx.train import RunDir
from tests.checkpoint_files import load_latest
from tests.iddpm._tiny import TINY_FLAGS

ROOT = Path(__file__).resolve().parents[2]


def test_two_ranks_share_the_sampler_history(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT)
    argv = TINY_FLAGS + ["--batch_size", "4", "--microbatch", "3", "--schedule_sampler", "loss-second-moment",
                         "--max_steps", "3", "--log_interval", "1", "--save_interval", "3", "--outdir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
         str(ROOT / "train.py"), "iddpm", *argv], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    checkpoint = load_latest(tmp_path / "checkpoints")
    assert checkpoint["world_size"] == 2
    counts = checkpoint["trainer"]["schedule_sampler"]["loss_counts"]
    assert int(counts.sum()) == 3 * 2 * 4  # every rank's timesteps went into the shared history
    records = RunDir(tmp_path).read_metrics()
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[-1]["samples"] == 3 * 2 * 4
    assert (tmp_path / "model000003.pt").is_file() and (tmp_path / "ema_0.9999_000003.pt").is_file()
