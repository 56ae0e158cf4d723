"""NCSN++ building layers (score_sde `layers.py` / `layerspp.py` as DDGAN uses them), same state_dict keys."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddx.models.ncsnpp_init import conv1x1, conv3x3, default_init_
from ddx.nn.adaptive_norm import ncsnpp_group_norm
from ddx.nn.resample import FIRConv2d, FIRDownsample2d, FIRUpsample2d


class NIN(nn.Module):
    """Per-pixel linear map ("network in network"): (N, in_dim, H, W) -> (N, num_units, H, W).

    state_dict: W (in_dim, num_units), b (num_units,).
    """

    def __init__(self, in_dim, num_units, init_scale=0.1):
        super().__init__()
        self.W = nn.Parameter(default_init_(torch.empty(in_dim, num_units), init_scale))
        self.b = nn.Parameter(torch.zeros(num_units))

    def forward(self, x):
        return torch.einsum("nchw,cu->nuhw", x, self.W) + self.b[:, None, None]


class AttnBlockpp(nn.Module):
    """Single-head self-attention over the H*W positions, residual (divided by sqrt 2 with skip_rescale).

    (N, C, H, W) -> (N, C, H, W); keys GroupNorm_0, NIN_0..NIN_3 (q, k, v, output projection).
    """

    def __init__(self, channels, skip_rescale=False, init_scale=0.0):
        super().__init__()
        self.GroupNorm_0 = ncsnpp_group_norm(channels)
        self.NIN_0 = NIN(channels, channels)
        self.NIN_1 = NIN(channels, channels)
        self.NIN_2 = NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x):
        n, c, h, w = x.shape
        hidden = self.GroupNorm_0(x)
        # (N, H*W, C) sequences: softmax(q k^T / sqrt(C)) v is the official einsum pair, as one fused SDPA call.
        q, k, v = (proj(hidden).flatten(2).transpose(1, 2) for proj in (self.NIN_0, self.NIN_1, self.NIN_2))
        attended = F.scaled_dot_product_attention(q, k, v, scale=c**-0.5)
        hidden = self.NIN_3(attended.transpose(1, 2).reshape(n, c, h, w))
        out = x + hidden
        return out / math.sqrt(2.0) if self.skip_rescale else out


class Combine(nn.Module):
    """Merges the input pyramid into the features: Conv_0 (1x1) on the pyramid, then concat or sum."""

    def __init__(self, dim1, dim2, method):
        super().__init__()
        self.Conv_0 = conv1x1(dim1, dim2)
        self.method = method

    def forward(self, x, y):
        """x (N, dim1, H, W) pyramid, y (N, dim2, H, W) -> (N, 2 dim2 | dim2, H, W)."""
        h = self.Conv_0(x)
        return torch.cat([h, y], dim=1) if self.method == "cat" else h + y


class _Resample(nn.Module):
    """Shared by Upsample and Downsample: the official layer names for each (fir, with_conv) choice.

    No FIR: Conv_0 (3x3 conv) when with_conv, around the naive resampling of `_naive`. FIR: Conv2d_0
    (a 3x3 conv fused with the FIR resampling) when with_conv, else a parameter-free FIR resampler.
    Subclasses set `up` and define `_naive_conv(in_ch, out_ch)` and `_naive(x)`.
    """

    def __init__(self, in_ch=None, out_ch=None, with_conv=False, fir=False, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        self.fir = fir
        self.with_conv = with_conv
        if not fir:
            if with_conv:
                self.Conv_0 = self._naive_conv(in_ch, out_ch)
        elif with_conv:
            self.Conv2d_0 = FIRConv2d(in_ch, out_ch, 3, up=self.up, down=not self.up, resample_kernel=fir_kernel)
            default_init_(self.Conv2d_0.weight)
        else:
            self.resample = FIRUpsample2d(fir_kernel) if self.up else FIRDownsample2d(fir_kernel)

    def forward(self, x):
        if not self.fir:
            return self._naive(x)
        return self.Conv2d_0(x) if self.with_conv else self.resample(x)


class Upsample(_Resample):
    """x2 upsampling: nearest (+3x3 conv) without FIR; FIR (fused with a 3x3 transposed conv if with_conv).

    (N, C, H, W) -> (N, out_ch, 2H, 2W).
    """

    up = True

    @staticmethod
    def _naive_conv(in_ch, out_ch):
        return conv3x3(in_ch, out_ch)

    def _naive(self, x):
        h = F.interpolate(x, (x.shape[2] * 2, x.shape[3] * 2), mode="nearest")
        return self.Conv_0(h) if self.with_conv else h


class Downsample(_Resample):
    """/2 downsampling: 2x2 average pool or 'SAME'-padded stride-2 3x3 conv; FIR (fused with a 3x3 conv if with_conv).

    (N, C, H, W) -> (N, out_ch, H / 2, W / 2).
    """

    up = False

    @staticmethod
    def _naive_conv(in_ch, out_ch):
        return conv3x3(in_ch, out_ch, stride=2, padding=0)

    def _naive(self, x):
        if self.with_conv:
            return self.Conv_0(F.pad(x, (0, 1, 0, 1)))
        return F.avg_pool2d(x, 2, stride=2)
