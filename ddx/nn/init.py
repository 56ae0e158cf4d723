"""Initialisers shared by ddx.nn and the DDGAN models (score_sde `dense_layer.py`).

Fresh modules start like the official ones; loading a checkpoint overwrites them.
"""

import math

from torch import nn


def fan_out_uniform_(weight, scale=1.0):
    """score_sde `dense_layer.variance_scaling_init_`: U(-b, b), b = sqrt(3 * scale / max(1, fan_out)).

    weight (out, in, *kernel). The official code asks for mode 'fan_avg', but its
    `_calculate_correct_fan` returns fan_out for every mode other than 'fan_in', so fan_out is what
    it uses. scale 0 means 1e-10 (the official "zero" init of output layers).
    """
    scale = 1e-10 if scale == 0 else scale
    fan_out = weight.shape[0] * math.prod(weight.shape[2:])
    bound = math.sqrt(3.0 * scale / max(1.0, fan_out))
    return nn.init.uniform_(weight, -bound, bound)


def dense(in_features, out_features, init_scale=1.0):
    """score_sde `dense_layer.dense`: nn.Linear with a fan-out uniform weight and a zero bias."""
    layer = nn.Linear(in_features, out_features)
    fan_out_uniform_(layer.weight, init_scale)
    nn.init.zeros_(layer.bias)
    return layer
