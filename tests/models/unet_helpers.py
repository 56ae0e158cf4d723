"""Helpers shared by the UNet tests: deterministic parameter randomisation and fixture paths."""

import pathlib

import torch
from torch import nn

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
HERE = pathlib.Path(__file__).resolve().parent


def randomize_parameters(model, seed):
    """Overwrite every parameter with seeded values that depend only on the seed and the shapes.

    The official init zeroes the last conv of each residual branch, attention's proj_out and the
    output conv, which would hide most of the network from an equivalence test. Weights get
    N(0, 1) / sqrt(fan_in); GroupNorm weights 1 + 0.1 N(0, 1); other 1-D parameters 0.1 N(0, 1).
    Draws follow named_parameters() order, which the official and ddx UNets share.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for param in module.parameters(recurse=False):
                noise = torch.randn(param.shape, generator=generator)
                if param.dim() >= 2:
                    param.copy_(noise / param[0].numel() ** 0.5)
                elif isinstance(module, nn.GroupNorm):
                    param.copy_(1 + 0.1 * noise)
                else:
                    param.copy_(0.1 * noise)
    return model


def as_constructor_kwargs(kwargs):
    """A fixture's stored kwargs (tuples saved as lists) as constructor arguments."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
