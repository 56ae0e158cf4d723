"""Two gloo ranks under torchrun train like one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import _load_ranks
from _train_toy import ToyTrainer, main
from ddx.train import DistContext, RunDir, atomic_save, init_distributed, unwrap, wrap_ddp
from ddx.utils.errors import UsageError
from tests.checkpoint_files import load_latest

SCRIPT = Path(__file__).with_name("_train_toy.py")


def test_two_ranks_match_one_process(tmp_path, restore_threads):
    steps = ["--max-steps", "5", "--deterministic", "--save-interval", "5"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(SCRIPT.parents[2])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(SCRIPT),
         "--run-dir", str(tmp_path / "ddp"), "--batch-size", "4", *steps],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    main(["--run-dir", str(tmp_path / "single"), "--batch-size", "8", *steps])

    ddp = load_latest(tmp_path / "ddp" / "checkpoints")
    single = load_latest(tmp_path / "single" / "checkpoints")
    # Each rank's batch is half of the single process's batch (DistributedSampler interleaving), and
    # DDP averages the two half-batch gradients: the same mean gradient, summed in another order.
    # Only fp32 rounding differs. Compared as one parameter vector, relative in norm: a tensor whose
    # gradient terms cancel (a small output bias) carries the absolute rounding of large terms, so a
    # per-tensor or element-wise relative error measures cancellation, not a DDP discrepancy.
    names = list(single["trainer"]["model"])
    want = torch.cat([single["trainer"]["model"][k].flatten() for k in names])
    got = torch.cat([ddp["trainer"]["model"][k].flatten() for k in names])
    initial = torch.cat([p.flatten() for p in ToyTrainer(DistContext()).state_dict()["model"].values()])
    assert (want - initial).norm() > 1e-2 * initial.norm()  # the 5 steps did move the parameters
    error = ((got - want).norm() / want.norm()).item()
    print(f"DDP vs single relative parameter error {error:.2e}")
    assert error <= 1e-6, f"parameters differ by {error:.2e} (relative, in norm)"
    assert ddp["world_size"] == 2 and len(ddp["rng"]) == 2
    assert not torch.equal(ddp["rng"][0]["torch_cpu"], ddp["rng"][1]["torch_cpu"])  # a seed per rank

    ddp_losses = [r["loss"] for r in RunDir(tmp_path / "ddp").read_metrics()]
    single_losses = [r["loss"] for r in RunDir(tmp_path / "single").read_metrics()]
    assert len(ddp_losses) == 5  # only rank 0 writes
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-6, atol=0)

    gathered = json.loads((tmp_path / "ddp" / "collectives.json").read_text())
    assert gathered == {"t": [0, 10, 11], "losses": [0.0, 5.0, 5.5], "mean": [0.5, 1.0]}


def test_ranks_read_the_checkpoint_they_share_and_receive_the_one_they_lack(tmp_path):
    def save(directory, value, mtime_ns=None):
        directory.mkdir()
        atomic_save({"value": torch.full((4,), float(value))}, directory / "ckpt.pt")
        if mtime_ns is not None:
            os.utime(directory / "ckpt.pt", ns=(mtime_ns, mtime_ns))
        return str(directory)

    shared = save(tmp_path / "shared", 1)
    (tmp_path / "empty").mkdir()
    corrupt = save(tmp_path / "corrupt", 5)
    (Path(corrupt) / "ckpt.pt").write_bytes((Path(corrupt) / "ckpt.pt").read_bytes()[:200])
    scenarios = [
        ("shared", [shared, shared]),
        # Another run's file under the same name, same size and mtime: only the content differs.
        ("other-file", [save(tmp_path / "a", 2, 10**18), save(tmp_path / "b", 3, 10**18)]),
        ("missing", [save(tmp_path / "c", 4), str(tmp_path / "empty")]),
        ("corrupt", [corrupt, corrupt]),
    ]
    torch.multiprocessing.start_processes(_load_ranks.worker, args=(str(tmp_path / "store"), scenarios, str(tmp_path)),
                                          nprocs=2, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["shared"] == ranks[1]["shared"] == {"value": [1.0] * 4, "received": False}
    assert ranks[1]["other-file"] == {"value": [2.0] * 4, "received": True}  # rank 0's, not its own
    assert ranks[1]["missing"] == {"value": [4.0] * 4, "received": True}
    assert all(not r[name]["received"] for r in ranks[:1] for name in ("other-file", "missing"))
    for r in ranks:  # every rank raises, none is left waiting
        assert r["corrupt"]["error"].startswith("checkpoint ckpt.pt is corrupt or truncated")


def test_single_process_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed(device="cpu")
    assert ctx == DistContext(device=torch.device("cpu"))
    assert ctx.is_main and not ctx.is_distributed
    model = torch.nn.Linear(2, 2)
    assert wrap_ddp(model, ctx) is model and unwrap(model) is model


def test_incomplete_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="incomplete torchrun environment: .* MASTER_ADDR"):
        init_distributed(device="cpu")


def test_cuda_request_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="--device cuda requested but .*: available here: cpu; use --device cpu"):
        init_distributed(device="cuda")
