"""IDDPM's spatial self-attention block (improved_diffusion/unet.py: AttentionBlock, QKVAttention).

The official layout: a 1x1 conv1d makes qkv (B, 3C, T); `reshape(B * heads, 3C / heads, T)` gives
each head a contiguous block of 3 * ch channels (ch = C / heads) that splits into q, k, v; q and k
are each scaled by 1/sqrt(sqrt(ch)) and the softmax runs in float32.
"""

import enum
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ddx.nn.norm import normalization


class AttentionBackend(str, enum.Enum):
    """How QKVAttention computes softmax(q^T k / sqrt(ch)) v.

    MATH: the official einsum/softmax sequence, op for op.
    SDPA: torch.nn.functional.scaled_dot_product_attention (one 1/sqrt(ch) scale instead of two
    1/sqrt(sqrt(ch)) scales; equal to fp32 rounding, tested against MATH and the official outputs),
    which picks fused flash / memory-efficient kernels on the GPU.
    """

    MATH = "math"
    SDPA = "sdpa"


def qkv_attention(qkv, backend=AttentionBackend.SDPA):
    """qkv (B', 3 * ch, T) with [q; k; v] stacked on dim 1 -> (B', ch, T), softmax over the T keys."""
    if qkv.dim() != 3 or qkv.shape[1] % 3:
        raise ValueError(f"qkv must have shape (B, 3 * ch, T), got {tuple(qkv.shape)}")
    ch = qkv.shape[1] // 3
    q, k, v = torch.split(qkv, ch, dim=1)
    if AttentionBackend(backend) is AttentionBackend.SDPA:
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return out.transpose(1, 2)
    # Scaling q and k before the product, not the product after, is the official choice (fp16 range).
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    return torch.einsum("bts,bcs->bct", weight, v)


class QKVAttention(nn.Module):
    """Parameterless module holding the backend choice (the official module has no parameters either)."""

    def __init__(self, backend=AttentionBackend.SDPA):
        super().__init__()
        self.backend = AttentionBackend(backend)

    def forward(self, qkv):
        """qkv (B', 3 * ch, T) -> (B', ch, T)."""
        return qkv_attention(qkv, self.backend)

    def extra_repr(self):
        return f"backend={self.backend.value}"


class AttentionBlock(nn.Module):
    """x + proj_out(attention(qkv(GroupNorm32(x)))) over all spatial positions.

    x (N, C, *spatial) -> same shape. State_dict keys as the official block: norm.{weight,bias}
    (C,), qkv.{weight (3C, C, 1), bias (3C,)}, proj_out.{weight (C, C, 1), bias (C,)}; proj_out
    starts at zero (official zero_module) so the block starts as the identity.
    """

    def __init__(self, channels, num_heads=1, use_checkpoint=False, backend=AttentionBackend.SDPA):
        super().__init__()
        if num_heads < 1 or channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.channels = channels
        self.num_heads = num_heads
        self.use_checkpoint = use_checkpoint
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.attention = QKVAttention(backend)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x):
        if x.dim() < 3 or x.shape[1] != self.channels:
            raise ValueError(f"AttentionBlock expects (N, {self.channels}, *spatial), got {tuple(x.shape)}")
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        h = self.attention(qkv.reshape(b * self.num_heads, -1, qkv.shape[2]))
        h = self.proj_out(h.reshape(b, -1, h.shape[-1]))
        return (x + h).reshape(b, c, *spatial)
