# Transitional re-export for callers outside nn/models/diffusion (train, sample, cli, bench, tests): goes when they import ddx.ops.
from ddx.ops import FusedOp, set_fused  # noqa: F401
