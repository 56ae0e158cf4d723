"""The switch between the fused (Triton) path and the eager reference path of a model.

Every module that calls a kernel reads its own `fused` attribute, so one set of weights runs
either way in one process (benchmarks and equivalence tests rely on it). On a CPU tensor the
fused path already falls back to the reference unless Triton's interpreter is on (kernels/).
"""

import kernels
from kernels import reference


class FusedOp:
    """Mixin: a module that calls kernels, routed by `self.fused` (True by default)."""

    fused = True

    def ops(self):
        """The kernels namespace (fused) or the reference module (eager) for this module."""
        return kernels if self.fused else reference


def set_fused(model, enabled):
    """Route every FusedOp module of `model` to the fused kernels (True) or the eager reference (False)."""
    for module in model.modules():
        if isinstance(module, FusedOp):
            module.fused = bool(enabled)
    return model
