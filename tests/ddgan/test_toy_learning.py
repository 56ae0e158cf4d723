"""A shortened toy25 run must learn: many modes AND samples near them, which no untrained generator gives.

An untrained generator collapses near one point (1 mode covered); points spread at random over the
grid's square land within 3 sigma of a mean about 2% of the time (25 discs of radius 0.15 in a
10 x 10 square). The thresholds below need both coverage and precision.
"""

import json

import torch

from ddx.cli import sample_ddgan, train_ddgan

# ~2 minutes on an idle core (about 20-25 ms a step; measured here: 23 modes, 19% near a mode); the EMA (decay 0.999) still lags here, so the raw
# generator is scored.
SHORT_STEPS = 5000


def test_short_toy25_run_learns(tmp_path):
    threads = torch.get_num_threads()
    try:
        _train_sample_and_check(tmp_path)
    finally:
        # train.py sets one thread for the 2-D MLPs, as this test does: later tests get theirs back.
        torch.set_num_threads(threads)


def _train_sample_and_check(tmp_path):
    torch.set_num_threads(1)  # tiny MLPs: a second thread only waits on the first
    run_dir, out = tmp_path / "run", tmp_path / "samples"
    assert train_ddgan.main(["--preset", "toy25", "--max_steps", str(SHORT_STEPS), "--outdir", str(run_dir),
                             "--log_interval", "500", "--no-fused"]) == 0
    assert sample_ddgan.main(["--run_dir", str(run_dir), "--num_samples", "2000", "--outdir", str(out),
                              "--no-fused", "--seed", "0", "--raw_weights"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["modes_covered"] >= 20, metrics
    assert metrics["high_quality_fraction"] >= 0.10, metrics
