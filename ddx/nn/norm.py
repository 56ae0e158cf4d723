"""Normalisation modules on top of `kernels.adagn` (DESIGN.md hot path 1).

IDDPM normalises with GroupNorm32: GroupNorm(32, C), eps 1e-5, statistics in float32 and the
result cast back to the input's dtype (improved_diffusion/nn.py). Every use of it in the UNet
except the attention block is followed by SiLU, which is fused into the same adagn call; the
module keeps the official parameters (weight, bias of shape (C,)), so state_dicts load as they are.
"""

import torch
from torch import nn

from ddx.nn.fused import FusedOp

GROUPNORM32_GROUPS = 32
GROUPNORM32_EPS = 1e-5


class GroupNorm32(FusedOp, nn.GroupNorm):
    """GroupNorm(32, C) with eps 1e-5 in float32, then SiLU when `silu` (fused in one adagn call).

    forward: x (N, C, *spatial) -> same shape and dtype.
    scale_shift: IDDPM's `GN_affine(x) * (1 + scale) + shift` (then SiLU when `silu`), scale and
    shift (N, C); the two affines fold into one per-sample gamma and beta, so it is one adagn call.
    """

    def __init__(self, num_channels, silu=False):
        super().__init__(GROUPNORM32_GROUPS, num_channels, eps=GROUPNORM32_EPS)
        self.silu = bool(silu)

    def forward(self, x):
        return self.ops().adagn(x, self.weight, self.bias, self.num_groups, self.eps, silu=self.silu)

    def scale_shift(self, x, scale, shift):
        """x (N, C, *spatial); scale, shift (N, C). Returns act(GN_affine(x) * (1 + scale) + shift)."""
        expected = (x.shape[0], self.num_channels)
        for name, value in (("scale", scale), ("shift", shift)):
            if tuple(value.shape) != expected:
                raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")
        factor = 1 + scale.float()
        gamma = self.weight.float() * factor
        beta = torch.addcmul(shift.float(), self.bias.float(), factor)
        return self.ops().adagn(x, gamma, beta, self.num_groups, self.eps, silu=self.silu)

    def extra_repr(self):
        return f"{super().extra_repr()}, silu={self.silu}"


def normalization(channels, silu=False):
    """IDDPM's standard normalisation layer (GroupNorm32), optionally with its following SiLU fused."""
    return GroupNorm32(channels, silu=silu)
