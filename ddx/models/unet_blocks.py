"""Building blocks of IDDPM's UNet (improved_diffusion/unet.py): ResBlock, Upsample, Downsample.

Module names and Sequential indices follow the official code exactly, so official state_dicts
load with strict=True. The SiLU that follows each GroupNorm32 is fused into the norm's adagn
call, and its Sequential slot is kept as an nn.Identity so the indices after it do not move.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ddx.nn.norm import normalization

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def check_dims(dims):
    """Raise a ValueError unless dims is 1, 2 or 3 (the signal's number of spatial dimensions)."""
    if dims not in _CONV:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")


def conv_nd(dims, *args, **kwargs):
    """A 1-D, 2-D or 3-D convolution."""
    check_dims(dims)
    return _CONV[dims](*args, **kwargs)


def zero_module(module):
    """Zero the module's parameters (the official init of the last conv of each residual branch)."""
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimestepBlock(nn.Module):
    """A module whose forward takes the timestep embedding (N, E) as a second argument."""

    def forward(self, x, emb):
        raise NotImplementedError


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """A Sequential that passes the embedding to the children that take it."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


def _check_channels(module, x):
    if x.shape[1] != module.channels:
        raise ValueError(f"{type(module).__name__} expects {module.channels} channels, got shape {tuple(x.shape)}")


class Upsample(nn.Module):
    """Nearest-neighbour x2 (the inner two dims for dims=3), then a 3x3 conv when use_conv.

    x (N, C, *spatial) -> (N, C, *2*spatial).
    """

    def __init__(self, channels, use_conv, dims=2):
        super().__init__()
        self.channels = channels
        self.use_conv = use_conv
        self.dims = dims
        if use_conv:
            self.conv = conv_nd(dims, channels, channels, 3, padding=1)

    def forward(self, x):
        _check_channels(self, x)
        if self.dims == 3:
            x = F.interpolate(x, (x.shape[2], x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Stride-2 3x3 conv when use_conv, else 2x average pooling (inner two dims for dims=3).

    x (N, C, *spatial) -> (N, C, *spatial/2). The official avg-pool branch calls
    `avg_pool_nd(stride)` (the stride lands in the `dims` slot and construction fails); here it is
    the evident intent, a pool with kernel = stride. It has no parameters, so state_dicts agree.
    """

    def __init__(self, channels, use_conv, dims=2):
        super().__init__()
        check_dims(dims)
        self.channels = channels
        self.use_conv = use_conv
        self.dims = dims
        stride = 2 if dims != 3 else (1, 2, 2)
        if use_conv:
            self.op = conv_nd(dims, channels, channels, 3, stride=stride, padding=1)
        else:
            self.op = _AVG_POOL[dims](kernel_size=stride, stride=stride)

    def forward(self, x):
        _check_channels(self, x)
        return self.op(x)


class ResBlock(TimestepBlock):
    """IDDPM's residual block conditioned on the timestep embedding.

    x (N, channels, *spatial), emb (N, emb_channels) -> (N, out_channels, *spatial).
    in_layers = [GroupNorm32+SiLU, Identity (the fused SiLU's slot), conv3x3];
    emb_layers = [SiLU, Linear(emb_channels, out_channels * (2 if use_scale_shift_norm else 1))];
    out_layers = [GroupNorm32+SiLU, Identity, Dropout, conv3x3 (zero init)];
    skip_connection = Identity, conv3x3 (use_conv) or conv1x1 when the channel count changes.
    With use_scale_shift_norm the embedding gives (scale, shift) and the out norm computes
    SiLU(GN_affine(h) * (1 + scale) + shift) in one adagn call; otherwise the embedding is added.
    """

    def __init__(
        self,
        channels,
        emb_channels,
        dropout,
        out_channels=None,
        use_conv=False,
        use_scale_shift_norm=False,
        dims=2,
        use_checkpoint=False,
    ):
        super().__init__()
        self.channels = channels
        self.emb_channels = emb_channels
        self.dropout = dropout
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.use_checkpoint = use_checkpoint
        self.use_scale_shift_norm = use_scale_shift_norm

        self.in_layers = nn.Sequential(
            normalization(channels, silu=True),
            nn.Identity(),
            conv_nd(dims, channels, self.out_channels, 3, padding=1),
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels),
        )
        self.out_layers = nn.Sequential(
            normalization(self.out_channels, silu=True),
            nn.Identity(),
            nn.Dropout(p=dropout),
            zero_module(conv_nd(dims, self.out_channels, self.out_channels, 3, padding=1)),
        )
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        elif use_conv:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 3, padding=1)
        else:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 1)

    def forward(self, x, emb):
        _check_channels(self, x)
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x, emb):
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb)
        out_norm, dropout, out_conv = self.out_layers[0], self.out_layers[2], self.out_layers[3]
        if self.use_scale_shift_norm:
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = out_norm.scale_shift(h, scale, shift)
        else:
            h = out_norm(h + emb_out.to(h.dtype).reshape(*emb_out.shape, *([1] * (h.dim() - 2))))
        h = out_conv(dropout(h))
        return self.skip_connection(x) + h
