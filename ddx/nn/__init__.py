"""Where the models meet kernels/: normalisation, resampling, attention, embeddings.

Modules that call kernels are ddx.ops.FusedOp: `ddx.ops.set_fused(model, False)` routes a whole
model to the eager references, so one set of weights runs either way in one process (re-exported here).
"""

from ddx.nn.adaptive_norm import AdaptiveGroupNorm, ncsnpp_group_norm
from ddx.nn.attention import AttentionBackend, AttentionBlock
from ddx.nn.embedding import timestep_embedding
from ddx.ops import FusedOp, set_fused
from ddx.nn.norm import GroupNorm, GroupNorm32, normalization
from ddx.nn.resample import FIRDownsample2d, FIRUpsample2d

__all__ = [
    "AdaptiveGroupNorm",
    "AttentionBackend",
    "AttentionBlock",
    "FIRDownsample2d",
    "FIRUpsample2d",
    "FusedOp",
    "GroupNorm",
    "GroupNorm32",
    "ncsnpp_group_norm",
    "normalization",
    "set_fused",
    "timestep_embedding",
]
