"""IDDPM's sinusoidal timestep embedding (improved_diffusion/nn.py: timestep_embedding)."""

import math

import torch


def timestep_embedding(timesteps, dim, max_period=10000):
    """Sinusoidal embeddings of (possibly fractional) timesteps, [cos, sin] order.

    timesteps: (N,) tensor of any real or integer dtype; dim: embedding width (odd widths get a
    trailing zero column). Returns (N, dim) float32 on timesteps' device.
    """
    if not isinstance(timesteps, torch.Tensor):
        raise TypeError(f"timesteps must be a torch.Tensor, got {type(timesteps).__name__}")
    if timesteps.dim() != 1:
        raise ValueError(f"timesteps must be 1-D (N,), got shape {tuple(timesteps.shape)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    half = dim // 2
    # The frequencies are computed on the CPU in float32 and then moved, as the official code
    # does, so that they are bit-identical to it on every device.
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs.to(device=timesteps.device)[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        # A fresh (N, 1) column: the official zeros_like(embedding[:, :1]) is (N, 0) when dim == 1.
        embedding = torch.cat([embedding, embedding.new_zeros(embedding.shape[0], 1)], dim=-1)
    return embedding
