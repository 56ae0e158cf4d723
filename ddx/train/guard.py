"""Stop a run at the first non-finite loss, before anything of that step is saved."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
import torch.distributed as dist

from ddx.train.distributed import DistContext
from ddx.utils.errors import UserError


class NonFiniteLossError(UserError, RuntimeError):
    """A loss term was nan or inf.

    ``step`` is the 1-based number of the step that produced it, the number metrics.jsonl and
    checkpoints would have given it; ``completed_steps`` (= ``step - 1``) is the index that was passed
    to ``train_step``; ``term`` is the key; ``value`` is None when only another rank saw it.
    """

    def __init__(self, term: str, completed_steps: int, value: float | None):
        self.term, self.completed_steps, self.value = term, completed_steps, value
        self.step = completed_steps + 1
        what = "non-finite on another rank" if value is None else f"is {value}"
        super().__init__(f"loss '{term}' {what} in step {self.step} (after {completed_steps} completed steps)")

    def note_checkpoint(self, latest: os.PathLike | str | None) -> None:
        """Add to the message where the run can continue from: ``latest``, the newest checkpoint (None: none yet)."""
        fix = "lower the learning rate, or check the data for nan/inf values"
        if latest is None:
            where = f"no checkpoint was written yet: start again and {fix}"
        else:
            where = f"the last good checkpoint is {os.fspath(latest)}: resume from it and {fix}"
        self.args = (f"{self.args[0]}; {where}",)


def stack_losses(losses: Mapping[str, torch.Tensor], device: torch.device | None = None) -> torch.Tensor:
    """The detached loss terms as one fp64 vector (L,) on ``device`` (default: the first term's).

    fp64 holds every value of the narrower float and int dtypes exactly (an fp32 cast would turn a
    finite fp64 loss above 3.4e38 into inf), so finiteness is judged as in the loss's own dtype.
    Raises TypeError/ValueError when a term is not a scalar (one-element) tensor.
    """
    if not isinstance(losses, Mapping) or not losses:
        raise TypeError(f"train_step must return a non-empty dict of scalar tensors, got {losses!r}")
    values = []
    for name, value in losses.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"loss '{name}' must be a scalar tensor, got {type(value).__name__}")
        if value.numel() != 1:
            raise ValueError(f"loss '{name}' must be a scalar tensor, got shape {tuple(value.shape)}")
        values.append(value.detach().to(torch.float64).reshape(()))
    device = device if device is not None else values[0].device
    return torch.stack([value.to(device) for value in values])


def check_finite(losses: Mapping[str, torch.Tensor], completed_steps: int, ctx: DistContext | None = None
                 ) -> dict[str, float]:
    """Return the loss terms as floats, or raise NonFiniteLossError naming the first bad one.

    ``completed_steps`` counts the steps done before the one that returned ``losses`` (the index passed
    to ``train_step``); the error names that step by its 1-based number, as metrics.jsonl does.

    With several ranks in ``ctx``, the finiteness flags are all-reduced so that every rank raises
    together (a rank raising alone would leave the others blocked in their next collective).
    """
    ctx = ctx if ctx is not None else DistContext()
    values = stack_losses(losses, ctx.device if ctx.is_distributed else None)
    bad = (~torch.isfinite(values)).float()
    if ctx.is_distributed:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    local = values.cpu().tolist()
    names = list(losses)
    for name, value, flag in zip(names, local, bad.cpu().tolist()):
        if flag:
            raise NonFiniteLossError(name, completed_steps, value if not math.isfinite(value) else None)
    return dict(zip(names, local))
