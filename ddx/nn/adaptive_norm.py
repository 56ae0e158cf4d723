"""DDGAN's group normalisations on top of `kernels.adagn`: min(C // 4, 32) groups, eps 1e-6.

AdaptiveGroupNorm: GroupNorm without affine, then `gamma * GN(x) + beta` with [gamma, beta] a
linear map of the latent embedding (one (N, C) affine per sample). ncsnpp_group_norm: the plain
GroupNorm of ddx.nn.norm with learned per-channel (C,) weight and bias (nn.GroupNorm's keys).
Both can fold the SiLU that follows them into the kernel.
"""

import torch
import torch.nn as nn

from ddx.ops import FusedOp
from ddx.nn.init import dense
from ddx.nn.norm import GroupNorm

NCSNPP_GROUPNORM_EPS = 1e-6


def num_groups_for(channels):
    """DDGAN's group count: min(C // 4, 32)."""
    return min(channels // 4, 32)


def ncsnpp_group_norm(channels):
    """score_sde's `nn.GroupNorm(num_groups=min(C // 4, 32), num_channels=C, eps=1e-6)` on the adagn kernel."""
    return GroupNorm(num_groups_for(channels), channels, eps=NCSNPP_GROUPNORM_EPS)


class AdaptiveGroupNorm(FusedOp, nn.Module):
    """`gamma * GroupNorm(x) + beta`, [gamma, beta] = style(z_emb); eps 1e-6, no GroupNorm affine.

    state_dict: style.weight (2C, style_dim), style.bias (2C,), initialised as the official
    dense layer with bias [1] * C + [0] * C (so gamma starts at 1 and beta at 0).
    """

    def __init__(self, num_groups, in_channel, style_dim, eps=NCSNPP_GROUPNORM_EPS):
        super().__init__()
        if num_groups < 1 or in_channel % num_groups != 0:
            raise ValueError(f"in_channel {in_channel} must be a positive multiple of num_groups {num_groups}")
        self.num_groups = num_groups
        self.in_channel = in_channel
        self.eps = eps
        self.style = dense(style_dim, in_channel * 2)
        with torch.no_grad():
            self.style.bias[:in_channel] = 1

    def forward(self, x, style, silu=False):
        """x (N, C, H, W), style (N, style_dim) -> (N, C, H, W); SiLU applied after when silu."""
        if x.dim() < 3 or x.shape[1] != self.in_channel:
            raise ValueError(f"AdaptiveGroupNorm expects x of shape (N, {self.in_channel}, ...), got {tuple(x.shape)}")
        if style.dim() != 2 or style.shape[0] != x.shape[0]:
            raise ValueError(f"style must be (N={x.shape[0]}, style_dim), got {tuple(style.shape)}")
        gamma, beta = self.style(style).chunk(2, dim=1)
        return self.ops().adagn(x, gamma, beta, self.num_groups, eps=self.eps, silu=silu)

