"""Small MLP generator and discriminator for DDGAN on low-dimensional data (the 2-D mixtures).

Same calling convention as NCSN++ and the DDGAN discriminators, on (N, D) vectors instead of images:
    ToyGenerator(x_tp1, t, z) -> x_0 prediction (N, D)
    ToyDiscriminator(x_t, t, x_tp1) -> logits (N, 1)
With only a handful of timesteps, a learned embedding per timestep conditions both.
"""

import dataclasses

import torch
from torch import nn

from ddx.utils.errors import UsageError


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    data_dim: int = 2
    nz: int = 2
    hidden: int = 256
    num_layers: int = 3
    t_emb_dim: int = 64
    num_timesteps: int = 4

    def __post_init__(self):
        for name in ("data_dim", "nz", "hidden", "num_layers", "t_emb_dim", "num_timesteps"):
            value = getattr(self, name)
            # bool and float would pass `< 1` and build a network of the wrong width (or fail inside nn.Linear)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"ToyConfig.{name} must be an int >= 1, got {value!r}")


def _mlp(in_dim, hidden, out_dim, num_layers, act):
    layers, width = [], in_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _check_batch(name, x, data_dim, t):
    if x.dim() != 2 or x.shape[1] != data_dim:
        raise ValueError(f"{name} must have shape (N, {data_dim}), got {tuple(x.shape)}")
    if t.shape != (x.shape[0],):
        raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")


class ToyGenerator(nn.Module):
    """x_0 = MLP([x_{t+1}, emb(t), z]) for (N, data_dim) data."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.t_embed = nn.Embedding(config.num_timesteps, config.t_emb_dim)
        self.net = _mlp(config.data_dim + config.t_emb_dim + config.nz, config.hidden, config.data_dim, config.num_layers, nn.SiLU)

    def forward(self, x_tp1, t, z):
        _check_batch("x_tp1", x_tp1, self.config.data_dim, t)
        if z.shape != (x_tp1.shape[0], self.config.nz):
            raise ValueError(f"z must have shape ({x_tp1.shape[0]}, {self.config.nz}), got {tuple(z.shape)}")
        return self.net(torch.cat([x_tp1, self.t_embed(t), z], dim=1))


class ToyDiscriminator(nn.Module):
    """Logit of (x_t, t, x_{t+1}) being a real pair, (N, 1)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.t_embed = nn.Embedding(config.num_timesteps, config.t_emb_dim)
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731  (the DDGAN discriminators' activation)
        self.net = _mlp(2 * config.data_dim + config.t_emb_dim, config.hidden, 1, config.num_layers, act)

    def forward(self, x_t, t, x_tp1):
        _check_batch("x_t", x_t, self.config.data_dim, t)
        _check_batch("x_tp1", x_tp1, self.config.data_dim, t)
        return self.net(torch.cat([x_t, x_tp1, self.t_embed(t)], dim=1))
