"""DDGAN's time-conditioned discriminators (score_sde `discriminator.py`), same state_dict keys.

`D(x_t, t, x_tp1) -> logits (N, 1)`: the pair (x_t, x_{t+1}) is concatenated along channels (so nc is
twice the image channels), t (N,) are timestep indices. Twice differentiable (R1 penalty).

Deviation: the official defaults nc=3 (small) and nc=1 (large) are odd, so no pair of images matches
them (train_ddgan.py always passes nc = 2 * num_channels); here both default to 6 (RGB pairs), and an
odd nc is refused.
"""

import math

import torch
import torch.nn as nn

from ddx.models.ncsnpp_init import conv2d
from ddx.nn.ddgan_embedding import get_timestep_embedding
from ddx.nn.init import dense
from ddx.nn.resample import FIRDownsample2d
from ddx.utils.errors import UsageError

__all__ = ["DownConvBlock", "Discriminator_large", "Discriminator_small", "TimestepEmbedding", "minibatch_stddev"]


def minibatch_stddev(x, group_size=4, num_features=1):
    """Appends the mean over features of the std over groups of min(N, group_size) samples (StyleGAN2).

    x (N, C, H, W) -> (N, C + num_features, H, W). Sample i is grouped with i + k * (N / group), so N
    must be divisible by the group size.
    """
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    if batch % group != 0:
        raise ValueError(f"minibatch-stddev needs the batch size ({batch}) divisible by its group size ({group})")
    if channel % num_features != 0:
        raise ValueError(f"channels ({channel}) must be divisible by num_features ({num_features})")
    stddev = x.reshape(group, -1, num_features, channel // num_features, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    return torch.cat([x, stddev], 1)


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of t followed by a 2-layer MLP: (N,) -> (N, output_dim); keys main.0, main.2."""

    def __init__(self, embedding_dim, hidden_dim, output_dim, act=None):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        act = nn.LeakyReLU(0.2) if act is None else act
        self.main = nn.Sequential(dense(embedding_dim, hidden_dim), act, dense(hidden_dim, output_dim))

    def forward(self, temp):
        return self.main(get_timestep_embedding(temp, self.embedding_dim))


class DownConvBlock(nn.Module):
    """act -> conv1 + dense(t_emb) -> act -> [FIR /2] -> conv2, plus a 1x1 skip; sum divided by sqrt 2.

    (N, in_channel, H, W), t_emb (N, t_emb_dim) -> (N, out_channel, H', W') with H' = H / 2 when downsample.
    """

    def __init__(self, in_channel, out_channel, kernel_size=3, padding=1, t_emb_dim=128, downsample=False,
                 act=None, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.fir_kernel = fir_kernel
        self.downsample = downsample
        self.conv1 = nn.Sequential(conv2d(in_channel, out_channel, kernel_size, padding=padding))
        self.conv2 = nn.Sequential(conv2d(out_channel, out_channel, kernel_size, padding=padding, init_scale=0.0))
        self.dense_t1 = dense(t_emb_dim, out_channel)
        self.act = nn.LeakyReLU(0.2) if act is None else act
        self.skip = nn.Sequential(conv2d(in_channel, out_channel, 1, padding=0, bias=False))
        if downsample:
            self.resample = FIRDownsample2d(fir_kernel)

    def forward(self, input, t_emb):
        out = self.conv1(self.act(input))
        out = self.act(out + self.dense_t1(t_emb)[..., None, None])
        if self.downsample:
            out = self.resample(out)
            input = self.resample(input)
        out = self.conv2(out)
        return (out + self.skip(input)) / math.sqrt(2.0)


def _check_widths(nc, ngf, t_emb_dim):
    """UsageError (a ValueError) for widths that build a degenerate network (zero width) or one no input can run."""
    for name, value, low in (("nc", nc, 2), ("ngf", ngf, 1), ("t_emb_dim", t_emb_dim, 4)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UsageError(f"{name} must be an int >= {low}, got {value!r}" + (
                " (the sinusoidal time embedding needs at least 2 frequencies, sin and cos of each)"
                if name == "t_emb_dim" else ""))
    if nc % 2:
        raise UsageError(
            f"nc={nc} is odd, but D reads the pair (x_t, x_tp1) concatenated along channels: nc must be twice "
            f"the image channels (6 for RGB, 2 for grey)"
        )


class _Discriminator(nn.Module):
    """Shared head: time embedding, input concat, the down blocks, minibatch-stddev, final conv, sum, linear."""

    stddev_group = 4
    stddev_feat = 1

    # Split in two so that layers register in the official order (parameters() and optimizer states line up).
    def _init_input(self, nc, ngf, t_emb_dim, act):
        _check_widths(nc, ngf, t_emb_dim)
        self.nc = nc
        self.act = nn.LeakyReLU(0.2) if act is None else act
        self.t_embed = TimestepEmbedding(embedding_dim=t_emb_dim, hidden_dim=t_emb_dim, output_dim=t_emb_dim, act=self.act)
        self.start_conv = conv2d(nc, ngf * 2, 1, padding=0)

    def _init_output(self, ngf, final_init_scale):
        self.final_conv = conv2d(ngf * 8 + 1, ngf * 8, 3, padding=1, init_scale=final_init_scale)
        self.end_linear = dense(ngf * 8, 1)

    def _blocks(self):
        raise NotImplementedError

    def forward(self, x_t, t, x_tp1):
        """x_t, x_tp1 (N, nc / 2, H, W), t (N,) -> logits (N, 1)."""
        if x_t.dim() != 4 or x_t.shape != x_tp1.shape:
            raise ValueError(f"x_t and x_tp1 must be (N, C, H, W) of one shape, got {tuple(x_t.shape)} and {tuple(x_tp1.shape)}")
        if 2 * x_t.shape[1] != self.nc:
            raise ValueError(f"x_t and x_tp1 together must have nc={self.nc} channels, got 2 x {x_t.shape[1]}")
        if t.dim() != 1 or t.shape[0] != x_t.shape[0]:
            raise ValueError(f"t must be 1-D of length N={x_t.shape[0]}, got shape {tuple(t.shape)}")
        t_embed = self.act(self.t_embed(t))
        h = self.start_conv(torch.cat((x_t, x_tp1), dim=1))
        for block in self._blocks():
            h = block(h, t_embed)
        out = minibatch_stddev(h, self.stddev_group, self.stddev_feat)
        out = self.act(self.final_conv(out))
        out = out.view(out.shape[0], out.shape[1], -1).sum(2)
        return self.end_linear(out)


class Discriminator_small(_Discriminator):
    """For 32x32 images (CIFAR-10, StackMNIST): four blocks, three of them downsampling (32 -> 4)."""

    def __init__(self, nc=6, ngf=64, t_emb_dim=128, act=None):
        super().__init__()
        self._init_input(nc, ngf, t_emb_dim, act)
        block = dict(t_emb_dim=t_emb_dim, act=self.act)
        self.conv1 = DownConvBlock(ngf * 2, ngf * 2, **block)
        self.conv2 = DownConvBlock(ngf * 2, ngf * 4, downsample=True, **block)
        self.conv3 = DownConvBlock(ngf * 4, ngf * 8, downsample=True, **block)
        self.conv4 = DownConvBlock(ngf * 8, ngf * 8, downsample=True, **block)
        self._init_output(ngf, final_init_scale=0.0)

    def _blocks(self):
        return (self.conv1, self.conv2, self.conv3, self.conv4)


class Discriminator_large(_Discriminator):
    """For 256x256 images (CelebA-HQ, LSUN): six downsampling blocks (256 -> 4)."""

    def __init__(self, nc=6, ngf=32, t_emb_dim=128, act=None):
        super().__init__()
        self._init_input(nc, ngf, t_emb_dim, act)
        block = dict(t_emb_dim=t_emb_dim, act=self.act, downsample=True)
        self.conv1 = DownConvBlock(ngf * 2, ngf * 4, **block)
        self.conv2 = DownConvBlock(ngf * 4, ngf * 8, **block)
        self.conv3 = DownConvBlock(ngf * 8, ngf * 8, **block)
        self.conv4 = DownConvBlock(ngf * 8, ngf * 8, **block)
        self.conv5 = DownConvBlock(ngf * 8, ngf * 8, **block)
        self.conv6 = DownConvBlock(ngf * 8, ngf * 8, **block)
        self._init_output(ngf, final_init_scale=1.0)

    def _blocks(self):
        return (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5, self.conv6)
