"""Timestep samplers (resample.py of improved-diffusion): importance sampling of t for training.

sample() returns timesteps drawn with probability p_t and weights 1 / (T p_t), so the weighted loss
stays an unbiased estimate of the uniform-t objective.
"""

import abc
import enum

import numpy as np
import torch
import torch.distributed as dist

from ddx.utils.checks import parse_enum


class ScheduleSamplerName(enum.Enum):
    """The samplers create_named_schedule_sampler knows (the official names)."""

    UNIFORM = "uniform"
    LOSS_SECOND_MOMENT = "loss-second-moment"


class ScheduleSampler(abc.ABC):
    """A distribution over the T timesteps of a diffusion."""

    def __init__(self, num_timesteps):
        num_timesteps = getattr(num_timesteps, "num_timesteps", num_timesteps)
        if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)) or num_timesteps < 1:
            raise ValueError(f"a sampler needs a positive number of timesteps (or a diffusion), got {num_timesteps!r}")
        self.num_timesteps = int(num_timesteps)

    @abc.abstractmethod
    def weights(self):
        """Positive unnormalised weights, float64 numpy (T,)."""

    def sample(self, batch_size, device, rng=None):
        """(timesteps int64 (batch_size,), weights float32 (batch_size,)) on `device`.

        rng: a numpy Generator; numpy's global RNG when None (as the official code).
        """
        w = self.weights()
        p = w / np.sum(w)
        choice = np.random.choice if rng is None else rng.choice
        indices_np = choice(len(p), size=(batch_size,), p=p)
        indices = torch.from_numpy(np.asarray(indices_np)).long().to(device)
        weights = torch.from_numpy(1 / (len(p) * p[indices_np])).float().to(device)
        return indices, weights

    def state_dict(self):
        """What a checkpoint must hold to continue sampling identically (tensors only); none for a fixed p_t."""
        return {}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`; a fixed sampler accepts only an empty state."""
        if state:
            raise ValueError(f"the state holds {', '.join(sorted(state))}, a loss-aware sampler's, but this "
                             f"{type(self).__name__} keeps none: use the schedule sampler the state came from")


class UniformSampler(ScheduleSampler):
    """p_t = 1 / T; every weight is 1."""

    def weights(self):
        return np.ones([self.num_timesteps], dtype=np.float64)


def gather_sizes_and_values(local_ts, local_losses):
    """All ranks' (timesteps, losses) as flat python lists in rank order; batch sizes may differ per rank.

    all_gather needs equal shapes, so the sizes are gathered first and every rank pads to the largest.
    """
    world = dist.get_world_size()
    device = local_ts.device
    sizes = [torch.zeros(1, dtype=torch.int32, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(local_ts)], dtype=torch.int32, device=device))
    sizes = [int(s.item()) for s in sizes]
    max_bs = max(sizes)
    gathered = []
    for local in (local_ts, local_losses):
        padded = torch.zeros(max_bs, dtype=local.dtype, device=device)
        padded[: len(local)] = local
        batches = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(batches, padded)
        gathered.append(unpad(batches, sizes))
    return gathered[0], gathered[1]


def unpad(batches, sizes):
    """The first sizes[r] entries of each padded batch, concatenated into a python list."""
    return [x.item() for batch, size in zip(batches, sizes) for x in batch[:size]]


class LossAwareSampler(ScheduleSampler):
    """A sampler that adapts to the training losses; every rank must hold the same state."""

    def update_with_local_losses(self, local_ts, local_losses):
        """Update from this rank's timesteps (N,) and losses (N,); with torch.distributed initialised, the
        values of every rank are gathered first, so all ranks apply the same update."""
        if local_ts.shape != local_losses.shape or local_ts.dim() != 1:
            shapes = f"{tuple(local_ts.shape)} and {tuple(local_losses.shape)}"
            raise ValueError(f"local_ts and local_losses must be 1-D of one length, got {shapes}")
        if dist.is_available() and dist.is_initialized():
            timesteps, losses = gather_sizes_and_values(local_ts, local_losses.detach())
        else:
            timesteps, losses = local_ts.tolist(), local_losses.detach().tolist()
        self.update_with_all_losses(timesteps, losses)

    @abc.abstractmethod
    def update_with_all_losses(self, ts, losses):
        """Update from every rank's timesteps and losses (python lists, identical on all ranks);
        must be deterministic so that the ranks stay in sync."""


class LossSecondMomentResampler(LossAwareSampler):
    """p_t proportional to sqrt(E[L_t^2]) over the last history_per_term losses of each t, mixed with
    uniform_prob of the uniform distribution; uniform until every t has a full history."""

    def __init__(self, num_timesteps, history_per_term=10, uniform_prob=0.001):
        super().__init__(num_timesteps)
        if history_per_term < 1 or not 0 <= uniform_prob <= 1:
            raise ValueError(f"need history_per_term >= 1 and uniform_prob in [0, 1], got {history_per_term}, {uniform_prob}")
        self.history_per_term = history_per_term
        self.uniform_prob = uniform_prob
        self._loss_history = np.zeros([self.num_timesteps, history_per_term], dtype=np.float64)
        self._loss_counts = np.zeros([self.num_timesteps], dtype=np.int64)

    def weights(self):
        if not self._warmed_up():
            return np.ones([self.num_timesteps], dtype=np.float64)
        weights = np.sqrt(np.mean(self._loss_history**2, axis=-1))
        weights /= np.sum(weights)
        weights *= 1 - self.uniform_prob
        weights += self.uniform_prob / len(weights)
        return weights

    def update_with_all_losses(self, ts, losses):
        for t, loss in zip(ts, losses):
            t = int(t)
            if self._loss_counts[t] == self.history_per_term:
                # Shift out the oldest loss.
                self._loss_history[t, :-1] = self._loss_history[t, 1:]
                self._loss_history[t, -1] = loss
            else:
                self._loss_history[t, self._loss_counts[t]] = loss
                self._loss_counts[t] += 1

    def _warmed_up(self):
        return bool((self._loss_counts == self.history_per_term).all())

    def state_dict(self):
        """{'loss_history': float64 (T, history_per_term), 'loss_counts': int64 (T,)}, copies as tensors."""
        return {"loss_history": torch.from_numpy(self._loss_history.copy()),
                "loss_counts": torch.from_numpy(self._loss_counts.copy())}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` (tensors or arrays); ValueError naming the entry that does not fit."""
        for name, array in (("loss_history", self._loss_history), ("loss_counts", self._loss_counts)):
            if name not in state:
                raise ValueError(f"a loss-second-moment sampler state needs {name!r}, got keys {sorted(state)}")
            value = state[name]
            value = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if value.shape != array.shape:
                raise ValueError(f"{name} has shape {value.shape}, this sampler's is {array.shape} "
                                 f"(num_timesteps {self.num_timesteps}, history_per_term {self.history_per_term})")
            array[...] = value


def create_named_schedule_sampler(name, diffusion):
    """A ScheduleSamplerName (or 'uniform' / 'loss-second-moment') for a diffusion (or a step count)."""
    name = parse_enum(ScheduleSamplerName, name, "schedule sampler")
    if name is ScheduleSamplerName.UNIFORM:
        return UniformSampler(diffusion)
    return LossSecondMomentResampler(diffusion)
