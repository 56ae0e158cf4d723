"""GroupNorm on top of `kernels.adagn` (DESIGN.md hot path 1), for both model families.

`GroupNorm` is nn.GroupNorm (same parameters, so the same state_dict keys weight and bias of shape
(C,)) computed by the adagn kernel: statistics in float32 whatever the input dtype, the result in
the input's dtype, and the SiLU that usually follows fused into the same call.

IDDPM: GroupNorm32 = GroupNorm(32, C), eps 1e-5 (improved_diffusion/nn.py); every use in the UNet
except the attention block is followed by SiLU, and the ResBlock's scale-shift norm is one call
through `scale_shift`. DDGAN's NCSN++: GroupNorm(min(C // 4, 32), C, eps=1e-6)
(`ddx.nn.adaptive_norm.ncsnpp_group_norm`).
"""

import torch
from torch import nn

from ddx.ops import FusedOp

GROUPNORM32_GROUPS = 32
GROUPNORM32_EPS = 1e-5


class GroupNorm(FusedOp, nn.GroupNorm):
    """nn.GroupNorm computed by one adagn call, then SiLU when `silu` (fused).

    silu: the default of forward and scale_shift; a call may override it.
    forward: x (N, C, *spatial) -> same shape and dtype.
    scale_shift: `GN_affine(x) * (1 + scale) + shift` with scale, shift (N, C) (IDDPM's ResBlock with
    use_scale_shift_norm); the two affines fold into one per-sample gamma and beta, so it is one call.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, silu=False):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)
        self.silu = bool(silu)

    def forward(self, x, silu=None):
        silu = self.silu if silu is None else silu
        return self.ops().adagn(x, self.weight, self.bias, self.num_groups, self.eps, silu=silu)

    def scale_shift(self, x, scale, shift, silu=None):
        """x (N, C, *spatial); scale, shift (N, C). Returns act(GN_affine(x) * (1 + scale) + shift)."""
        expected = (x.shape[0], self.num_channels)
        for name, value in (("scale", scale), ("shift", shift)):
            if tuple(value.shape) != expected:
                raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")
        factor = 1 + scale.float()
        if self.affine:
            gamma = self.weight.float() * factor
            beta = torch.addcmul(shift.float(), self.bias.float(), factor)
        else:
            gamma, beta = factor, shift.float()
        silu = self.silu if silu is None else silu
        return self.ops().adagn(x, gamma, beta, self.num_groups, self.eps, silu=silu)

    def extra_repr(self):
        return f"{super().extra_repr()}, silu={self.silu}"


class GroupNorm32(GroupNorm):
    """IDDPM's GroupNorm32: GroupNorm(32, C) with eps 1e-5 and float32 statistics."""

    def __init__(self, num_channels, silu=False):
        super().__init__(GROUPNORM32_GROUPS, num_channels, eps=GROUPNORM32_EPS, silu=silu)


def normalization(channels, silu=False):
    """IDDPM's standard normalisation layer (GroupNorm32), optionally with its following SiLU fused."""
    return GroupNorm32(channels, silu=silu)
