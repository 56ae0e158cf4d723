"""The official DDGAN initialisers (score_sde `layers.default_init` and `dense_layer.conv2d`).

Fresh models start like the official ones; loading a checkpoint overwrites them. scale 0 means 1e-10
(the official "zero" init of output layers).
"""

import math

import torch
import torch.nn as nn

from ddx.nn.init import fan_out_uniform_


def default_init_(tensor, scale=1.0):
    """score_sde `default_init`: U(-b, b), b = sqrt(3 * scale / fan_avg), fans from dims 1 (in) and 0 (out)."""
    scale = 1e-10 if scale == 0 else scale
    receptive = math.prod(tensor.shape[2:])
    fan_avg = (tensor.shape[0] + tensor.shape[1]) * receptive / 2
    bound = math.sqrt(3.0 * scale / fan_avg)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def linear(in_features, out_features):
    """nn.Linear with DDPM init (default_init weight, zero bias), as NCSNpp's time-embedding and Dense_0 layers."""
    layer = nn.Linear(in_features, out_features)
    default_init_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def conv3x3(in_planes, out_planes, stride=1, bias=True, dilation=1, init_scale=1.0, padding=1):
    """3x3 nn.Conv2d with DDPM init (score_sde `ddpm_conv3x3`)."""
    conv = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=padding, dilation=dilation, bias=bias)
    default_init_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def conv1x1(in_planes, out_planes, stride=1, bias=True, init_scale=1.0, padding=0):
    """1x1 nn.Conv2d with DDPM init (score_sde `ddpm_conv1x1`)."""
    conv = nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=padding, bias=bias)
    default_init_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def conv2d(in_planes, out_planes, kernel_size=3, padding=1, bias=True, init_scale=1.0):
    """score_sde `dense_layer.conv2d`: nn.Conv2d, fan-out uniform weight, zero bias."""
    conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=padding, bias=bias)
    fan_out_uniform_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv
