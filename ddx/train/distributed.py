"""Process-group set-up from torchrun's environment, per-rank seeds, and small collectives.

Launch with ``torchrun --nproc_per_node G [--nnodes N --node_rank R --master_addr A --master_port P] train.py``
(or ``--standalone`` on one node): everything is read from the environment variables torchrun sets,
nothing is hard-coded. A plain ``python train.py`` is a single process and needs no process group.
Every helper is a no-op or identity in a single process, so trainers call them unconditionally.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import random
import sys
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ddx.utils.errors import UsageError

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class Backend(enum.Enum):
    NCCL = "nccl"
    GLOO = "gloo"


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands: global rank, world size, rank on its node, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Backend | None = None

    @property
    def is_distributed(self) -> bool:
        """True when there are other ranks to talk to."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def launched_by_torchrun() -> bool:
    """Whether torchrun's variables are present (all of them, or a clear error naming those missing)."""
    present = [name for name in _TORCHRUN_VARS if name in os.environ]
    if not present:
        return False
    missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise ValueError(f"incomplete torchrun environment: {', '.join(present)} set but "
                         f"{', '.join(missing)} missing; launch with torchrun or unset them")
    return True


def _available_devices() -> str:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return "cpu" + "".join(f", cuda:{i}" for i in range(count))


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """The device to run on: ``device`` checked against what this machine has (None: cuda:LOCAL_RANK where
    CUDA is available, else the CPU). A device that is not there is a UsageError naming those that are."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UsageError(f"--device {device!r} is not a device name (use e.g. cpu, cuda, cuda:1); "
                         f"available here: {_available_devices()}") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UsageError(f"--device {device} requested but {why}: available here: {_available_devices()}; "
                             f"use --device cpu (or leave --device out)")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device cuda:{index} requested (LOCAL_RANK {local_rank}) but only "
                             f"{torch.cuda.device_count()} CUDA device(s) are visible: available here: "
                             f"{_available_devices()}")
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    elif device.type not in ("cpu", "meta") and not _backend_available(device.type):
        raise UsageError(f"--device {device} is not available here: available here: {_available_devices()}")
    return device


def _backend_available(device_type: str) -> bool:
    backend = getattr(torch, device_type, None)
    is_available = getattr(backend, "is_available", None)
    try:
        return bool(is_available()) if callable(is_available) else False
    except Exception:  # a backend that cannot even be asked is not usable
        return False


def init_distributed(device: str | torch.device | None = None) -> DistContext:
    """Join the process group torchrun describes, or return a single-process context.

    ``device``: None picks CUDA when available (``cuda:LOCAL_RANK``) else CPU. The backend is NCCL
    on CUDA and gloo on the CPU.
    """
    if not launched_by_torchrun():
        return DistContext(device=resolve_device(device, 0))
    rank, world_size, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK {rank} outside [0, WORLD_SIZE={world_size})")
    resolved = resolve_device(device, local_rank)
    backend = Backend.NCCL if resolved.type == "cuda" else Backend.GLOO
    if not dist.is_initialized():
        dist.init_process_group(backend=backend.value, init_method="env://",
                                rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank, resolved, backend)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (if this process joined one)."""
    if ctx.backend is not None and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(base_seed: int, ctx: DistContext) -> int:
    """The seed of this rank, ``base_seed + rank``, so that ranks draw different noise."""
    return base_seed + ctx.rank


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's ``random``."""
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def print_main(ctx: DistContext, *args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only (to stderr unless ``file`` is given)."""
    if ctx.is_main:
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier(device_ids=[ctx.device.index] if ctx.backend is Backend.NCCL else None)


def all_reduce_mean(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise mean of ``tensor`` over ranks (a new tensor; the input is untouched)."""
    if not ctx.is_distributed:
        return tensor.clone()
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.div_(ctx.world_size)


def all_gather_cat(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order; lengths may differ per rank.

    E.g. a loss-aware timestep sampler gathers each rank's ``t`` (B_r,) and losses (B_r,) so all
    ranks update the same history: ``all_gather_cat(t, ctx)``, ``all_gather_cat(losses, ctx)``.
    Shapes beyond dim 0 and the dtype must agree across ranks.
    """
    if tensor.dim() == 0:
        raise ValueError("all_gather_cat needs a tensor with a leading dimension, got a scalar")
    if not ctx.is_distributed:
        return tensor.detach().clone()
    length = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.int64)
    lengths = [torch.zeros_like(length) for _ in range(ctx.world_size)]
    dist.all_gather(lengths, length)
    sizes = [int(n.item()) for n in lengths]
    # all_gather needs equal shapes: pad to the longest, then cut each rank's part back.
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor.detach()
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order (a one-element list in a single process)."""
    if not ctx.is_distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_from_main(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's picklable ``obj`` on every rank (other ranks' ``obj`` is ignored)."""
    if not ctx.is_distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def send_object(obj: Any, dst: int, ctx: DistContext) -> None:
    """Send a picklable ``obj`` to rank ``dst`` alone (it calls :func:`recv_object`)."""
    dist.send_object_list([obj], dst=dst, device=ctx.device if ctx.backend is Backend.NCCL else None)


def recv_object(src: int, ctx: DistContext) -> Any:
    """The object rank ``src`` sends with :func:`send_object`."""
    box: list[Any] = [None]
    dist.recv_object_list(box, src=src, device=ctx.device if ctx.backend is Backend.NCCL else None)
    return box[0]


def wrap_ddp(module: nn.Module, ctx: DistContext, **ddp_kwargs: Any) -> nn.Module:
    """Wrap ``module`` (already on ``ctx.device``) in DistributedDataParallel when there are ranks.

    DDP broadcasts rank 0's parameters and buffers at construction, so ranks start identical.
    In a single process the module is returned as is. Reach the module with :func:`unwrap`.
    """
    if not ctx.is_distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, **ddp_kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module
