"""Kernel routing: the one way the fused-or-eager switch travels through ddx.

Every object that calls kernels/ is a FusedOp: the kernel-calling nn modules (GroupNorm, AdaptiveGroupNorm,
the FIR resamplers), IDDPM's GaussianDiffusion, and DDGAN's coefficient tables (DiffusionCoefficients,
PosteriorCoefficients). Each holds a `fused` attribute (True by default) and asks `self.ops()` for the
namespace to call: `kernels` (the Triton kernels) or `kernels.reference` (the eager PyTorch reference).
`set_fused(target, enabled)` sets the attribute on one FusedOp, or on every FusedOp inside an nn.Module.

Why one way: the switch used to travel three ways (a module attribute, a diffusion attribute, and a
`fused=` keyword on every DDGAN diffusion function, carried by trainer configs and samplers). Three
carriers drift apart and each new execution option (precision, memory format, compile mode, sampler mode)
would have needed a fourth. With the switch living on the object that owns the tables or weights, one set
of weights or tables runs either way in one process (the equivalence tests and benchmarks rely on it), and
whoever builds a run applies ddx.execution.ExecutionOptions once, by `prepare_model` / `set_fused`.

On a CPU tensor the fused path already falls back to the reference unless Triton's interpreter is on
(kernels/). This module sits at the generic floor (it imports only kernels and torch), so nn, models and
diffusion may all import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import torch

import kernels
from kernels import reference

if TYPE_CHECKING:
    from ddx.execution import ExecutionOptions

_T = TypeVar("_T")


def kernel_ops(fused: bool):
    """The kernels namespace (fused=True) or the eager reference module (fused=False)."""
    return kernels if fused else reference


class FusedOp:
    """Mixin: an object that calls kernels, routed by `self.fused` (True by default)."""

    fused = True

    def ops(self):
        """The kernels namespace (fused) or the reference module (eager) for this object."""
        return kernel_ops(self.fused)


def set_fused(target: _T, enabled: bool) -> _T:
    """Route `target` to the fused kernels (True) or the eager reference (False); returns `target`.

    `target` is a FusedOp (a diffusion, a coefficient table, a module) or an nn.Module, in which case every
    FusedOp among its .modules() is switched (the module itself included).
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_fused needs a bool (True: Triton kernels, False: eager reference), got {enabled!r}")
    if isinstance(target, torch.nn.Module):
        for module in target.modules():
            if isinstance(module, FusedOp):
                module.fused = enabled
    elif isinstance(target, FusedOp):
        target.fused = enabled
    else:
        raise TypeError(
            f"set_fused routes a ddx.ops.FusedOp or a torch.nn.Module, got {type(target).__name__}; "
            "objects that call kernels derive from ddx.ops.FusedOp"
        )
    return target


def prepare_model(model: torch.nn.Module, execution: ExecutionOptions) -> torch.nn.Module:
    """`model` routed by `execution.fused` and in `execution.memory_format`; returns it (moved in place)."""
    set_fused(model, execution.fused)
    return model.to(memory_format=execution.memory_format.torch_format)


__all__ = ["FusedOp", "kernel_ops", "prepare_model", "set_fused"]
