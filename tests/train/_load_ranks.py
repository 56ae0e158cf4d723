"""Worker of the two-rank checkpoint-loading test: each rank runs in its own directory, so a relative
checkpoint path can name the same file, another run's file, or nothing, depending on the scenario."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch.distributed as dist

from ddx.train import Backend, CheckpointError, DistContext
from ddx.train import loop


def worker(rank: int, store: str, scenarios: list[tuple[str, list[str]]], out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    ctx = DistContext(rank=rank, world_size=2, backend=Backend.GLOO)
    received = []
    real_recv = loop.recv_object

    def recv(src, ctx):
        received.append(src)
        return real_recv(src, ctx)

    loop.recv_object = recv
    results = {}
    for name, dirs in scenarios:
        os.chdir(dirs[rank])
        received.clear()
        try:
            payload = loop._load_on_every_rank(Path("ckpt.pt"), ctx)
            results[name] = {"value": payload["value"].tolist(), "received": bool(received)}
        except CheckpointError as err:
            results[name] = {"error": str(err)}
    Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()
