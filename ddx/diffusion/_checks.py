"""Input checks of the IDDPM diffusion functions: clear errors instead of failures deep inside torch."""

import torch


def check_input(name, x):
    """x must be a floating tensor with a batch dimension."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a batch dimension, got a 0-d tensor")


def check_same_shape(name, y, like_name, like):
    if tuple(y.shape) != tuple(like.shape):
        raise ValueError(f"{name} has shape {tuple(y.shape)}, expected {like_name}'s shape {tuple(like.shape)}")


def check_timesteps(t, batch, num_timesteps):
    """t must be an integer (N,) tensor with N = batch; on the CPU also every entry in [0, num_timesteps).

    The range is not checked on an accelerator: that would cost a device sync per call, and indexing
    out of range there fails with a device-side assertion anyway.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be an integer torch.Tensor of shape ({batch},), got {type(t).__name__}")
    # uint8 / bool tensors would index as masks, so only int32 / int64 are accepted.
    if t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"t must hold int64 (or int32) timestep indices, got dtype {t.dtype}")
    if tuple(t.shape) != (batch,):
        raise ValueError(f"t must have shape ({batch},) for a batch of {batch}, got {tuple(t.shape)}")
    if t.device.type == "cpu" and t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_timesteps):
        raise ValueError(f"timesteps must lie in [0, {num_timesteps}), got min {int(t.min())} and max {int(t.max())}")
