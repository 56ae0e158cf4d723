"""The official functional FIR API of score_sde/models/up_or_down_sampling.py (upsample_2d, downsample_2d,
conv_downsample_2d, upsample_conv_2d), built from ddx.nn.resample's fir_* functions.

ddx's modules prepare their kernel once (resample.scaled_kernel) and call the fir_* functions; these wrappers
take the official signatures and prepare it on every call, so the tests can compare the shared code with the
official outputs. `op` is the upfirdn2d implementation (kernels.upfirdn2d or kernels.reference.upfirdn2d).
"""

import kernels
from ddx.nn import resample


def upsample_2d(x, k=None, factor=2, gain=1, op=kernels.upfirdn2d):
    """(N, C, H, W) -> (N, C, H * factor, W * factor); constant inputs scale by gain."""
    return resample.fir_upsample(x, resample.scaled_kernel(k, factor, gain * factor**2, x.device), factor, op)


def downsample_2d(x, k=None, factor=2, gain=1, op=kernels.upfirdn2d):
    """(N, C, H, W) -> (N, C, H // factor, W // factor)."""
    return resample.fir_downsample(x, resample.scaled_kernel(k, factor, gain, x.device), factor, op)


def conv_downsample_2d(x, w, k=None, factor=2, gain=1, op=kernels.upfirdn2d):
    """FIR filter then strided conv: x (N, Cin, H, W), w (Cout, Cin, kh, kh) -> (N, Cout, H // f, W // f)."""
    return resample.fir_conv_downsample(x, w, resample.scaled_kernel(k, factor, gain, x.device), factor, op)


def upsample_conv_2d(x, w, k=None, factor=2, gain=1, op=kernels.upfirdn2d):
    """Transposed strided conv then FIR filter: x (N, Cin, H, W), w (Cout, Cin, kh, kh) -> (N, Cout, H * f, W * f).

    The official function cannot run in PyTorch (`w[..., ::-1, ::-1]`, stride [1, 1, f, f]); this is it
    with the two fixes of huggingface/diffusers PR #535 (torch.flip, stride (f, f)).
    """
    kernel = resample.scaled_kernel(k, factor, gain * factor**2, x.device)
    return resample.fir_upsample_conv(x, w, kernel, factor, op)
