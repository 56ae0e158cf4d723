"""NCSN++ residual blocks with AdaGN (DDGAN `layerspp.ResnetBlock*_Adagn`), same state_dict keys.

Every block maps (x (N, in_ch, H, W), temb (N, temb_dim) or None, zemb (N, zemb_dim)) to
(N, out_ch, H', W'). Where the activation is SiLU it is folded into the normalisation kernel.
"""

import math

import torch.nn as nn

from ddx.models.ncsnpp_init import conv1x1, conv3x3, linear
from ddx.models.ncsnpp_layers import NIN
from ddx.nn.adaptive_norm import AdaptiveGroupNorm, ncsnpp_group_norm, num_groups_for
from ddx.nn.resample import make_resample


class _ResnetBlock(nn.Module):
    """Shared parts: act(norm(.)) with SiLU folded into the kernel, the time-embedding bias, the residual sum."""

    def _init_common(self, act, in_ch, out_ch, temb_dim, zemb_dim, dropout, skip_rescale, init_scale, second_norm):
        """Registers the layers in the official order (so parameters() and optimizer states line up)."""
        self.act = act
        self.fold_silu = isinstance(act, nn.SiLU)
        self.in_ch = in_ch
        self.out_ch = out_ch
        self.skip_rescale = skip_rescale
        self.GroupNorm_0 = AdaptiveGroupNorm(num_groups_for(in_ch), in_ch, zemb_dim)
        self.Conv_0 = conv3x3(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = linear(temb_dim, out_ch)
        self.GroupNorm_1 = second_norm
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(out_ch, out_ch, init_scale=init_scale)

    def _norm_act(self, norm, h, *style):
        if self.fold_silu:
            return norm(h, *style, silu=True)
        return self.act(norm(h, *style))

    def _add_temb(self, h, temb):
        if temb is None:
            return h
        return h + self.Dense_0(self.act(temb))[:, :, None, None]

    def _residual(self, x, h):
        out = x + h
        return out / math.sqrt(2.0) if self.skip_rescale else out


class ResnetBlockDDPMppAdaGN(_ResnetBlock):
    """DDPM-style block (`ResnetBlockDDPMpp_Adagn`): no resampling; NIN_0 shortcut when channels change."""

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, zemb_dim=None, conv_shortcut=False,
                 dropout=0.1, skip_rescale=False, init_scale=0.0):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        second_norm = AdaptiveGroupNorm(num_groups_for(out_ch), out_ch, zemb_dim)
        self._init_common(act, in_ch, out_ch, temb_dim, zemb_dim, dropout, skip_rescale, init_scale, second_norm)
        self.conv_shortcut = conv_shortcut
        if in_ch != out_ch:
            if conv_shortcut:
                self.Conv_2 = conv3x3(in_ch, out_ch)
            else:
                self.NIN_0 = NIN(in_ch, out_ch)

    def forward(self, x, temb=None, zemb=None):
        h = self.Conv_0(self._norm_act(self.GroupNorm_0, x, zemb))
        h = self._add_temb(h, temb)
        h = self.Conv_1(self.Dropout_0(self._norm_act(self.GroupNorm_1, h, zemb)))
        if self.in_ch != self.out_ch:
            x = self.Conv_2(x) if self.conv_shortcut else self.NIN_0(x)
        return self._residual(x, h)


class ResnetBlockBigGANppAdaGN(_ResnetBlock):
    """BigGAN-style block (`ResnetBlockBigGANpp_Adagn`), optionally resampling by 2 (FIR or naive).

    one_adagn=True is `ResnetBlockBigGANpp_Adagn_one`: the second norm is a plain affine GroupNorm.
    """

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, zemb_dim=None, up=False, down=False,
                 dropout=0.1, fir=False, fir_kernel=(1, 3, 3, 1), skip_rescale=True, init_scale=0.0,
                 one_adagn=False):
        super().__init__()
        if up and down:
            raise ValueError("a resnet block cannot both upsample and downsample")
        out_ch = out_ch if out_ch else in_ch
        self.up = up
        self.down = down
        self.fir = fir
        self.fir_kernel = fir_kernel
        self.one_adagn = one_adagn
        if one_adagn:
            second_norm = ncsnpp_group_norm(out_ch)
        else:
            second_norm = AdaptiveGroupNorm(num_groups_for(out_ch), out_ch, zemb_dim)
        self._init_common(act, in_ch, out_ch, temb_dim, zemb_dim, dropout, skip_rescale, init_scale, second_norm)
        if up or down:
            self.resample = make_resample(up, fir, fir_kernel)
        if in_ch != out_ch or up or down:
            self.Conv_2 = conv1x1(in_ch, out_ch)

    def forward(self, x, temb=None, zemb=None):
        h = self._norm_act(self.GroupNorm_0, x, zemb)
        if self.up or self.down:
            h = self.resample(h)
            x = self.resample(x)
        h = self._add_temb(self.Conv_0(h), temb)
        second_style = () if self.one_adagn else (zemb,)
        h = self.Conv_1(self.Dropout_0(self._norm_act(self.GroupNorm_1, h, *second_style)))
        if self.in_ch != self.out_ch or self.up or self.down:
            x = self.Conv_2(x)
        return self._residual(x, h)

