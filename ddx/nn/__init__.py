"""Where the models meet kernels/: normalisation, resampling, attention, embeddings."""

from ddx.nn.fused import FusedOp, set_fused

__all__ = ["FusedOp", "set_fused"]
