"""DDGAN's timestep embeddings: sinusoidal [sin, cos] features and Gaussian Fourier features.

These follow score_sde (DDGAN's `layers.get_timestep_embedding`, `layerspp.GaussianFourierProjection`);
IDDPM's embedding orders its halves [cos, sin] and lives in ddx/nn/embedding.py.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def get_timestep_embedding(timesteps, embedding_dim, max_positions=10000):
    """Sinusoidal embedding [sin(t w_k), cos(t w_k)], w_k = max_positions^(-k / (half - 1)).

    timesteps: (N,) of any real or integer dtype; returns (N, embedding_dim) float32, zero-padded
    by one column when embedding_dim is odd.
    """
    if timesteps.dim() != 1:
        raise ValueError(f"timesteps must be 1-D (N,), got shape {tuple(timesteps.shape)}")
    half_dim = embedding_dim // 2
    if half_dim < 2:
        raise ValueError(f"embedding_dim must be at least 4, got {embedding_dim}")
    scale = math.log(max_positions) / (half_dim - 1)
    freqs = torch.exp(torch.arange(half_dim, dtype=torch.float32, device=timesteps.device) * -scale)
    args = timesteps.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if embedding_dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of a noise level: [sin(2 pi x W), cos(2 pi x W)].

    W (embedding_size,) ~ N(0, scale^2) is a frozen parameter (so it is in the state_dict, as in
    the official module). forward: x (N,) -> (N, 2 * embedding_size).
    """

    def __init__(self, embedding_size=256, scale=1.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x):
        if x.dim() != 1:
            raise ValueError(f"GaussianFourierProjection expects a 1-D (N,) input, got shape {tuple(x.shape)}")
        x_proj = x[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(x_proj), torch.cos(x_proj)], dim=-1)
