"""DDGAN's generator: NCSN++ with AdaGN conditioned on a latent z (score_sde `ncsnpp_generator_adagn.NCSNpp`).

`NCSNpp(config)(x_tp1, t, z)` predicts x_0 from x_{t+1}: x (N, C, S, S), t (N,) (timestep indices for the
positional embedding, noise levels sigma > 0 for the Fourier one), z (N, nz). state_dict keys and shapes
equal the official module's (`all_modules.<i>...`, `z_transform.<i>...`), so released checkpoints load
with strict=True after ddx.checkpoints.state_dict.strip_module_prefix.
"""

import functools
import math

import torch
import torch.nn as nn

from ddx.models.ncsnpp_blocks import ResnetBlockBigGANppAdaGN, ResnetBlockDDPMppAdaGN
from ddx.models.ncsnpp_config import (
    EmbeddingType,
    NCSNppConfig,
    Progressive,
    ProgressiveCombine,
    ProgressiveInput,
    ResblockType,
)
from ddx.models.ncsnpp_init import conv3x3, linear
from ddx.models.ncsnpp_layers import AttnBlockpp, Combine, Downsample, Upsample
from ddx.nn.adaptive_norm import ncsnpp_group_norm, num_groups_for
from ddx.nn.ddgan_embedding import GaussianFourierProjection, get_timestep_embedding
from ddx.nn.init import dense
from ddx.utils.errors import UsageError

__all__ = ["NCSNpp", "NCSNppConfig", "PixelNorm"]


class PixelNorm(nn.Module):
    """z / sqrt(mean(z^2 over dim 1) + 1e-8): (N, nz) -> (N, nz)."""

    def forward(self, z):
        return z / torch.sqrt(torch.mean(z**2, dim=1, keepdim=True) + 1e-8)


class NCSNpp(nn.Module):
    """NCSN++ U-Net generator. See the module docstring for the call; returns (N, num_channels, S, S)."""

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, NCSNppConfig):
            raise TypeError(f"NCSNpp takes an NCSNppConfig, got {type(config).__name__}")
        self.config = c = config
        self.act = nn.SiLU()
        self.nf = c.num_channels_dae
        self.num_resolutions = len(c.ch_mult)
        self.all_resolutions = [c.image_size // (2**i) for i in range(self.num_resolutions)]
        self.attn_resolutions = c.attn_resolutions
        self._new_block = self._block_factory()
        self._new_attn = functools.partial(AttnBlockpp, init_scale=c.init_scale, skip_rescale=c.skip_rescale)

        modules = self._build_embedding()
        if c.progressive == Progressive.OUTPUT_SKIP:
            self.pyramid_upsample = Upsample(fir=c.fir, fir_kernel=c.fir_kernel, with_conv=False)
        if c.progressive_input == ProgressiveInput.INPUT_SKIP:
            self.pyramid_downsample = Downsample(fir=c.fir, fir_kernel=c.fir_kernel, with_conv=False)
        skip_channels = self._build_encoder(modules)
        self._build_middle(modules, skip_channels[-1])
        self._build_decoder(modules, skip_channels)
        self.all_modules = nn.ModuleList(modules)

        mapping = [PixelNorm(), dense(c.nz, c.z_emb_dim), self.act]
        for _ in range(c.n_mlp):
            mapping += [dense(c.z_emb_dim, c.z_emb_dim), self.act]
        self.z_transform = nn.Sequential(*mapping)

    def _make_block(self, in_ch, out_ch=None, **kwargs):
        out_ch = None if out_ch is None else self._norm_width(out_ch)
        return self._new_block(in_ch=self._norm_width(in_ch), out_ch=out_ch, **kwargs)

    def _make_attn(self, channels):
        return self._new_attn(channels=self._norm_width(channels))

    def _norm_width(self, channels):
        """channels, if the GroupNorm that every block and attention layer applies to them can split them.

        The widths follow from num_channels_dae, ch_mult and the skip concatenations, so a config can
        pass every field check and still fail here; naming the fields beats the layer's own error.
        """
        groups = num_groups_for(channels)
        if groups < 1 or channels % groups:
            c = self.config
            raise UsageError(
                f"num_channels_dae={c.num_channels_dae} with ch_mult={c.ch_mult} makes a layer of {channels} channels, "
                f"which its GroupNorm's min({channels} // 4, 32) = {groups} groups do not divide; use a "
                f"num_channels_dae that is a multiple of 32 (or of 4 while every width stays under 128)"
            )
        return channels

    def _block_factory(self):
        c = self.config
        common = dict(act=self.act, dropout=c.dropout, init_scale=c.init_scale, skip_rescale=c.skip_rescale,
                      temb_dim=self.nf * 4, zemb_dim=c.z_emb_dim)
        if c.resblock_type == ResblockType.DDPM:
            return functools.partial(ResnetBlockDDPMppAdaGN, **common)
        one_adagn = c.resblock_type == ResblockType.BIGGAN_ONEADAGN
        return functools.partial(ResnetBlockBigGANppAdaGN, fir=c.fir, fir_kernel=c.fir_kernel, one_adagn=one_adagn, **common)

    def _build_embedding(self):
        c, nf = self.config, self.nf
        modules = []
        if c.embedding_type == EmbeddingType.FOURIER:
            modules.append(GaussianFourierProjection(embedding_size=nf, scale=c.fourier_scale))
            embed_dim = 2 * nf
        else:
            embed_dim = nf
        if c.conditional:
            modules += [linear(embed_dim, nf * 4), linear(nf * 4, nf * 4)]
        return modules

    def _build_encoder(self, modules):
        """Appends the input conv and the down path; returns the channel count of every skip connection."""
        c, nf = self.config, self.nf
        modules.append(conv3x3(c.num_channels, nf))
        skip_channels = [nf]
        in_ch, pyramid_ch = nf, c.num_channels
        for i_level, mult in enumerate(c.ch_mult):
            for _ in range(c.num_res_blocks):
                modules.append(self._make_block(in_ch=in_ch, out_ch=nf * mult))
                in_ch = nf * mult
                if self.all_resolutions[i_level] in c.attn_resolutions:
                    modules.append(self._make_attn(channels=in_ch))
                skip_channels.append(in_ch)
            if i_level == self.num_resolutions - 1:
                continue
            if c.resblock_type == ResblockType.DDPM:
                modules.append(Downsample(in_ch=in_ch, with_conv=c.resamp_with_conv, fir=c.fir, fir_kernel=c.fir_kernel))
            else:
                modules.append(self._make_block(down=True, in_ch=in_ch))
            if c.progressive_input == ProgressiveInput.INPUT_SKIP:
                modules.append(Combine(dim1=pyramid_ch, dim2=in_ch, method=c.progressive_combine.value))
                if c.progressive_combine == ProgressiveCombine.CAT:
                    in_ch *= 2
            elif c.progressive_input == ProgressiveInput.RESIDUAL:
                modules.append(Downsample(in_ch=pyramid_ch, out_ch=in_ch, with_conv=True, fir=c.fir, fir_kernel=c.fir_kernel))
                pyramid_ch = in_ch
            skip_channels.append(in_ch)
        return skip_channels

    def _build_middle(self, modules, in_ch):
        modules += [self._make_block(in_ch=in_ch), self._make_attn(channels=in_ch), self._make_block(in_ch=in_ch)]

    def _build_decoder(self, modules, skip_channels):
        """Appends the up path and the output head, consuming skip_channels (a copy is popped)."""
        c, nf = self.config, self.nf
        skips = list(skip_channels)
        in_ch, pyramid_ch = skips[-1], 0
        for i_level in reversed(range(self.num_resolutions)):
            for _ in range(c.num_res_blocks + 1):
                out_ch = nf * c.ch_mult[i_level]
                modules.append(self._make_block(in_ch=in_ch + skips.pop(), out_ch=out_ch))
                in_ch = out_ch
            if self.all_resolutions[i_level] in c.attn_resolutions:
                modules.append(self._make_attn(channels=in_ch))
            if c.progressive != Progressive.NONE:
                pyramid_ch = self._build_output_pyramid(modules, i_level, in_ch, pyramid_ch)
            if i_level != 0:
                if c.resblock_type == ResblockType.DDPM:
                    modules.append(Upsample(in_ch=in_ch, with_conv=c.resamp_with_conv, fir=c.fir, fir_kernel=c.fir_kernel))
                else:
                    modules.append(self._make_block(in_ch=in_ch, up=True))
        if c.progressive != Progressive.OUTPUT_SKIP:
            modules += [ncsnpp_group_norm(self._norm_width(in_ch)), conv3x3(in_ch, c.num_channels, init_scale=c.init_scale)]

    def _build_output_pyramid(self, modules, i_level, in_ch, pyramid_ch):
        c = self.config
        top = i_level == self.num_resolutions - 1
        if c.progressive == Progressive.OUTPUT_SKIP:
            # The official code gives the lower levels' conv an explicit bias=True (the default anyway).
            modules += [ncsnpp_group_norm(in_ch), conv3x3(in_ch, c.num_channels, init_scale=c.init_scale)]
            return c.num_channels
        if top:
            modules += [ncsnpp_group_norm(in_ch), conv3x3(in_ch, in_ch)]
        else:
            modules.append(Upsample(in_ch=pyramid_ch, out_ch=in_ch, with_conv=True, fir=c.fir, fir_kernel=c.fir_kernel))
        return in_ch

    def _check_inputs(self, x, time_cond, z):
        c = self.config
        expected = (c.num_channels, c.image_size, c.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must be (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        n = x.shape[0]
        if time_cond.dim() != 1 or time_cond.shape[0] != n:
            raise ValueError(f"t must be 1-D of length N={n}, got shape {tuple(time_cond.shape)}")
        if z.dim() != 2 or tuple(z.shape) != (n, c.nz):
            raise ValueError(f"z must be (N={n}, nz={c.nz}), got {tuple(z.shape)}")

    def forward(self, x, time_cond, z):
        """x (N, C, S, S), time_cond (N,), z (N, nz) -> x_0 prediction (N, C, S, S) (tanh unless not_use_tanh)."""
        self._check_inputs(x, time_cond, z)
        c = self.config
        zemb = self.z_transform(z)
        modules = iter(self.all_modules)
        temb = self._time_embedding(modules, time_cond)
        if not c.centered:
            x = 2 * x - 1.0
        skips = self._encode(modules, x, temb, zemb)
        h = next(modules)(skips[-1], temb, zemb)
        h = next(modules)(h)
        h = next(modules)(h, temb, zemb)
        h = self._decode(modules, h, skips, temb, zemb)
        if next(modules, None) is not None:
            raise RuntimeError("NCSNpp.forward did not use every module: construction and forward disagree")
        return h if c.not_use_tanh else torch.tanh(h)

    def _time_embedding(self, modules, time_cond):
        c = self.config
        if c.embedding_type == EmbeddingType.FOURIER:
            temb = next(modules)(torch.log(time_cond))
        else:
            temb = get_timestep_embedding(time_cond, self.nf)
        if not c.conditional:
            return None
        temb = next(modules)(temb)
        return next(modules)(self.act(temb))

    def _maybe_attend(self, modules, h):
        # The official test is on the tensor's width at run time (equal to the build-time resolution here).
        return next(modules)(h) if h.shape[-1] in self.attn_resolutions else h

    def _encode(self, modules, x, temb, zemb):
        """Returns the list of skip activations (input conv output first)."""
        c = self.config
        input_pyramid = x
        skips = [next(modules)(x)]
        for i_level in range(self.num_resolutions):
            for _ in range(c.num_res_blocks):
                h = next(modules)(skips[-1], temb, zemb)
                skips.append(self._maybe_attend(modules, h))
            if i_level == self.num_resolutions - 1:
                continue
            if c.resblock_type == ResblockType.DDPM:
                h = next(modules)(skips[-1])
            else:
                h = next(modules)(skips[-1], temb, zemb)
            if c.progressive_input == ProgressiveInput.INPUT_SKIP:
                input_pyramid = self.pyramid_downsample(input_pyramid)
                h = next(modules)(input_pyramid, h)
            elif c.progressive_input == ProgressiveInput.RESIDUAL:
                input_pyramid = self._rescaled_sum(next(modules)(input_pyramid), h)
                h = input_pyramid
            skips.append(h)
        return skips

    def _rescaled_sum(self, a, b):
        return (a + b) / math.sqrt(2.0) if self.config.skip_rescale else a + b

    def _decode(self, modules, h, skips, temb, zemb):
        c = self.config
        pyramid = None
        for i_level in reversed(range(self.num_resolutions)):
            for _ in range(c.num_res_blocks + 1):
                h = next(modules)(torch.cat([h, skips.pop()], dim=1), temb, zemb)
            h = self._maybe_attend(modules, h)
            if c.progressive != Progressive.NONE:
                h, pyramid = self._output_pyramid(modules, i_level, h, pyramid)
            if i_level != 0:
                h = next(modules)(h) if c.resblock_type == ResblockType.DDPM else next(modules)(h, temb, zemb)
        if c.progressive == Progressive.OUTPUT_SKIP:
            return pyramid
        h = next(modules)(h, silu=True)
        return next(modules)(h)

    def _output_pyramid(self, modules, i_level, h, pyramid):
        """One level of the output pyramid; returns the (possibly replaced) features and the pyramid."""
        c = self.config
        top = i_level == self.num_resolutions - 1
        if c.progressive == Progressive.OUTPUT_SKIP:
            norm, conv = next(modules), next(modules)
            pyramid_h = conv(norm(h, silu=True))
            return h, pyramid_h if top else self.pyramid_upsample(pyramid) + pyramid_h
        if top:
            norm, conv = next(modules), next(modules)
            return h, conv(norm(h, silu=True))
        pyramid = self._rescaled_sum(next(modules)(pyramid), h)
        return pyramid, pyramid
