"""Loss logging of IDDPM training per timestep quartile (train_util.log_loss_dict of improved-diffusion).

Every logged term ``key`` (loss, mse, vb: the per-sample losses times the importance weights) is
averaged over the log interval as ``key``, and over the samples whose timestep falls in quartile q
(``q = floor(4 t / T)``) as ``key_q{q}``. Sums stay on the device between logs (no per-step sync);
:meth:`QuartileLossLog.reduce` sums them over ranks and weights by counts, as the official logger's
MPI-weighted mean does. A quartile without samples in the interval is left out of that line.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ddx.train.distributed import DistContext

NUM_QUARTILES = 4


class QuartileLossLog:
    """Interval sums of loss terms, overall and per timestep quartile, plus the gradient norm.

    Args:
        num_timesteps: T of the diffusion whose timesteps are logged.
        keys: the loss terms, in a fixed order (the same on every rank).
    """

    def __init__(self, num_timesteps: int, keys: tuple[str, ...]):
        self.num_timesteps = int(num_timesteps)
        self.keys = tuple(keys)
        self.state: dict[str, torch.Tensor] = {}

    def _zeros(self, device: torch.device) -> dict[str, torch.Tensor]:
        k = len(self.keys)
        return {"sums": torch.zeros(k, NUM_QUARTILES, dtype=torch.float64, device=device),
                "counts": torch.zeros(NUM_QUARTILES, dtype=torch.float64, device=device),
                "grad_norm": torch.zeros(2, dtype=torch.float64, device=device)}

    def _ensure(self, device: torch.device) -> dict[str, torch.Tensor]:
        if not self.state:
            self.state = self._zeros(device)
        return self.state

    @torch.no_grad()
    def add(self, t: torch.Tensor, losses: Mapping[str, torch.Tensor]) -> None:
        """Accumulate per-sample terms: t int64 (N,), each losses[key] (N,) (already weighted)."""
        state = self._ensure(t.device)
        quartile = torch.div(NUM_QUARTILES * t, self.num_timesteps, rounding_mode="floor").clamp_(0, NUM_QUARTILES - 1)
        values = torch.stack([losses[key].detach().double() for key in self.keys])
        state["sums"].index_add_(1, quartile, values)
        state["counts"].index_add_(0, quartile, torch.ones_like(quartile, dtype=torch.float64))

    @torch.no_grad()
    def add_grad_norm(self, grad_norm: torch.Tensor) -> None:
        state = self._ensure(grad_norm.device)
        state["grad_norm"] += torch.stack([grad_norm.detach().double(), grad_norm.new_ones((), dtype=torch.float64)])

    def reduce(self, ctx: DistContext | None = None) -> dict[str, float]:
        """Collective with several ranks: the interval means, then reset. Keys as in the module docstring."""
        ctx = ctx if ctx is not None else DistContext()
        state = self._ensure(ctx.device)
        packed = torch.cat([state["sums"].flatten(), state["counts"], state["grad_norm"]])
        if ctx.is_distributed:
            import torch.distributed as dist

            packed = packed.to(ctx.device)
            dist.all_reduce(packed)
        packed = packed.cpu()
        self.state = {}
        k = len(self.keys)
        sums = packed[: k * NUM_QUARTILES].view(k, NUM_QUARTILES)
        counts = packed[k * NUM_QUARTILES: (k + 1) * NUM_QUARTILES]
        grad_sum, grad_count = packed[-2:].tolist()
        out: dict[str, float] = {}
        total = counts.sum().item()
        for i, key in enumerate(self.keys):
            if total > 0:
                out[key] = sums[i].sum().item() / total
            for q in range(NUM_QUARTILES):
                if counts[q] > 0:
                    out[f"{key}_q{q}"] = (sums[i, q] / counts[q]).item()
        if grad_count > 0:
            out["grad_norm"] = grad_sum / grad_count
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value.detach().cpu().clone() for name, value in self.state.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor], device: torch.device) -> None:
        self.state = {name: value.to(device) for name, value in state.items()}
