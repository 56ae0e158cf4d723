"""FIR up/down-sampling (StyleGAN2 / DDGAN) on top of `kernels.upfirdn2d`.

Each fir_* function takes the upfirdn2d implementation as `op`, so FusedOp modules pass
`self.ops().upfirdn2d` and run either path with the same weights. Gains and pads are those of the
official `score_sde/models/up_or_down_sampling.py`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddx.ops import FusedOp


def _check_factor(factor):
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")


def _check_image(x, name="x"):
    if x.dim() != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(x.shape)}")


def setup_kernel(k, device=None):
    """A separable 1-D FIR (or a square 2-D one) as a normalised (kh, kh) float32 kernel (sums to 1)."""
    k = torch.as_tensor(k, dtype=torch.float32, device=device)
    if k.dim() == 1:
        k = torch.outer(k, k)
    if k.dim() != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"FIR kernel must be 1-D or square 2-D, got shape {tuple(k.shape)}")
    return k / k.sum()


def scaled_kernel(k, factor, gain, device=None):
    """setup_kernel(k) * gain; k None means [1] * factor (nearest / box)."""
    _check_factor(factor)
    return setup_kernel([1] * factor if k is None else k, device=device) * gain


# The fir_* functions take a prepared kernel (scaled_kernel: normalised and scaled, on x's device), so that
# modules build it once. The official functional API (upsample_2d, ...) is not kept: no ddx code calls it
# (the tests that compare against it build it from these, tests/models/fir_functional.py).


def fir_upsample(x, kernel, factor, op):
    """Zero-insert by factor and filter with kernel (already scaled by gain * factor^2)."""
    p = kernel.shape[0] - factor
    return op(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def fir_downsample(x, kernel, factor, op):
    """Filter with kernel (already scaled by gain) and keep every factor-th sample."""
    p = kernel.shape[0] - factor
    return op(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))


def fir_conv_downsample(x, w, kernel, factor, op):
    """Filter with kernel, then a stride-factor conv with w, padding once for both."""
    p = (kernel.shape[0] - factor) + (w.shape[-1] - 1)
    x = op(x, kernel, pad=((p + 1) // 2, p // 2))
    return F.conv2d(x, w, stride=factor)


def fir_upsample_conv(x, w, kernel, factor, op):
    """A stride-factor transposed conv with w, then filter with kernel (already scaled by gain * factor^2)."""
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the weight expects {w.shape[1]}")
    p = (kernel.shape[0] - factor) - (w.shape[-1] - 1)
    # As the official (TF-ported) code: flip the taps, then swap to conv_transpose2d's (Cin, Cout, kh, kw) layout.
    w = torch.flip(w, dims=[2, 3]).transpose(0, 1)
    x = F.conv_transpose2d(x, w, stride=(factor, factor), padding=0)
    return op(x, kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def naive_upsample_2d(x, factor=2):
    """Nearest-neighbour upsampling by repetition: (N, C, H, W) -> (N, C, H * factor, W * factor)."""
    _check_image(x)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1).repeat(1, 1, 1, factor, 1, factor)
    return x.reshape(n, c, h * factor, w * factor)


def naive_downsample_2d(x, factor=2):
    """Box-average downsampling: (N, C, H, W) -> (N, C, H // factor, W // factor); H, W must divide by factor."""
    _check_image(x)
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"naive_downsample_2d needs H and W divisible by {factor}, got {h}x{w}")
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


class FIRUpsample2d(FusedOp, nn.Module):
    """upsample_2d as a module: (N, C, H, W) -> (N, C, H * factor, W * factor).

    The prepared kernel is a non-persistent buffer: no state_dict key, and it follows .to(device).
    """

    def __init__(self, fir_kernel=(1, 3, 3, 1), factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", scaled_kernel(fir_kernel, factor, factor**2), persistent=False)

    def forward(self, x):
        _check_image(x)
        return fir_upsample(x, self.kernel, self.factor, self.ops().upfirdn2d)


class FIRDownsample2d(FusedOp, nn.Module):
    """downsample_2d as a module: (N, C, H, W) -> (N, C, H // factor, W // factor); kernel as in FIRUpsample2d."""

    def __init__(self, fir_kernel=(1, 3, 3, 1), factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", scaled_kernel(fir_kernel, factor, 1), persistent=False)

    def forward(self, x):
        _check_image(x)
        return fir_downsample(x, self.kernel, self.factor, self.ops().upfirdn2d)


class NaiveUpsample2d(nn.Module):
    """naive_upsample_2d as a module."""

    def __init__(self, factor=2):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return naive_upsample_2d(x, self.factor)


class NaiveDownsample2d(nn.Module):
    """naive_downsample_2d as a module."""

    def __init__(self, factor=2):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return naive_downsample_2d(x, self.factor)


def make_resample(up, fir, fir_kernel=(1, 3, 3, 1), factor=2):
    """The up (up=True) or down sampler DDGAN's BigGAN blocks use: FIR when fir, else naive."""
    if fir:
        return (FIRUpsample2d if up else FIRDownsample2d)(fir_kernel, factor)
    return (NaiveUpsample2d if up else NaiveDownsample2d)(factor)


class FIRConv2d(FusedOp, nn.Module):
    """The official `up_or_down_sampling.Conv2d`: a k x k conv fused with FIR up- or down-sampling.

    state_dict: weight (out_ch, in_ch, k, k), bias (out_ch,) when use_bias. forward: (N, in_ch, H, W) ->
    (N, out_ch, 2H, 2W) (up), (N, out_ch, H / 2, W / 2) (down) or (N, out_ch, H, W).
    """

    def __init__(self, in_ch, out_ch, kernel, up=False, down=False, resample_kernel=(1, 3, 3, 1), use_bias=True):
        super().__init__()
        if up and down:
            raise ValueError("FIRConv2d: up and down are exclusive")
        if kernel < 1 or kernel % 2 != 1:
            raise ValueError(f"FIRConv2d: kernel must be odd and positive, got {kernel}")
        self.weight = nn.Parameter(torch.zeros(out_ch, in_ch, kernel, kernel))
        self.register_parameter("bias", nn.Parameter(torch.zeros(out_ch)) if use_bias else None)
        self.up = up
        self.down = down
        self.kernel = kernel
        # Prepared FIR kernel (factor 2; gain factor^2 when upsampling), a buffer outside the state_dict.
        gain = 4 if up else 1
        self.register_buffer("resample_kernel", scaled_kernel(resample_kernel, 2, gain), persistent=False)

    def forward(self, x):
        _check_image(x)
        op = self.ops().upfirdn2d
        if self.up:
            x = fir_upsample_conv(x, self.weight, self.resample_kernel, 2, op)
        elif self.down:
            x = fir_conv_downsample(x, self.weight, self.resample_kernel, 2, op)
        else:
            x = F.conv2d(x, self.weight, padding=self.kernel // 2)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        return x
