"""Timestep respacing: a diffusion that keeps a subset of the steps of a longer one (respace.py of
improved-diffusion), and the model wrapper that gives the model the original timesteps."""

import numpy as np
import torch

from ddx.diffusion.arrays import DiffusionArrays
from ddx.diffusion.gaussian import GaussianDiffusion


def _parse_counts(section_counts):
    try:
        counts = [int(x) for x in section_counts.split(",")]
    except ValueError:
        raise ValueError(f"section counts must be comma-separated integers or 'ddimN', got {section_counts!r}") from None
    return counts


def _ddim_steps(num_timesteps, section_counts):
    """The DDIM paper's fixed striding: range(0, T, stride) with exactly N entries."""
    try:
        desired_count = int(section_counts[len("ddim"):])
    except ValueError:
        raise ValueError(f"'ddimN' needs an integer N, got {section_counts!r}") from None
    for stride in range(1, num_timesteps):
        if len(range(0, num_timesteps, stride)) == desired_count:
            return set(range(0, num_timesteps, stride))
    raise ValueError(
        f"cannot create exactly {desired_count} steps with an integer stride from {num_timesteps} timesteps ({section_counts!r})"
    )


def space_timesteps(num_timesteps, section_counts):
    """The set of timesteps of a T-step process to keep.

    section_counts: a list of ints or a string "10,15,20": the process is cut into equal sections and
    section i keeps section_counts[i] evenly strided steps (ends included); or "ddimN": the DDIM striding
    range(0, T, stride) with exactly N steps. Raises ValueError when a count cannot be met.
    """
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, int) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            return _ddim_steps(num_timesteps, section_counts)
        section_counts = _parse_counts(section_counts)
    section_counts = [int(c) for c in section_counts]
    if not section_counts or any(c < 0 for c in section_counts):
        raise ValueError(f"section counts must be a non-empty list of non-negative ints, got {section_counts}")
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start_idx = 0
    all_steps = []
    for i, section_count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < section_count:
            raise ValueError(f"cannot divide section of {size} steps into {section_count}")
        frac_stride = 1 if section_count <= 1 else (size - 1) / (section_count - 1)
        cur_idx = 0.0
        for _ in range(section_count):
            all_steps.append(start_idx + round(cur_idx))
            cur_idx += frac_stride
        start_idx += size
    return set(all_steps)


def respaced_betas(betas, use_timesteps):
    """(new_betas (K,) float64, timestep_map list[K]) keeping the given steps of betas (T,).

    The kept steps get betas 1 - alpha_bar[i] / alpha_bar[previous kept i], so their alpha_bars are
    those of the original process.
    """
    alphas_cumprod = DiffusionArrays.from_betas(betas).alphas_cumprod
    use_timesteps = set(int(i) for i in use_timesteps)
    outside = sorted(i for i in use_timesteps if not 0 <= i < len(alphas_cumprod))
    if outside:
        raise ValueError(f"use_timesteps must lie in [0, {len(alphas_cumprod)}), got {outside}")
    if not use_timesteps:
        raise ValueError("use_timesteps is empty: keep at least one step")
    last_alpha_cumprod = 1.0
    new_betas, timestep_map = [], []
    for i, alpha_cumprod in enumerate(alphas_cumprod):
        if i in use_timesteps:
            new_betas.append(1 - alpha_cumprod / last_alpha_cumprod)
            last_alpha_cumprod = alpha_cumprod
            timestep_map.append(i)
    return np.array(new_betas, dtype=np.float64), timestep_map


class TimestepMappedModel:
    """Calls `model(x, timestep_map[t], ...)`, as float32 `timestep_map[t] * 1000 / original_num_steps`
    with rescale_timesteps: the model always sees the timesteps of the original process."""

    def __init__(self, model, timestep_map, rescale_timesteps, original_num_steps, cache=None):
        self.model = model
        self.timestep_map = list(timestep_map)
        self.rescale_timesteps = rescale_timesteps
        self.original_num_steps = original_num_steps
        self._cache = {} if cache is None else cache

    def map_tensor(self, device, dtype):
        """timestep_map as a tensor of (device, dtype), made once (the cache may be shared)."""
        key = (torch.device(device), dtype)
        if key not in self._cache:
            self._cache[key] = torch.tensor(self.timestep_map, device=device, dtype=dtype)
        return self._cache[key]

    def __call__(self, x, ts, **kwargs):
        new_ts = self.map_tensor(ts.device, ts.dtype)[ts]
        if self.rescale_timesteps:
            new_ts = new_ts.float() * (1000.0 / self.original_num_steps)
        return self.model(x, new_ts, **kwargs)


class SpacedDiffusion(GaussianDiffusion):
    """A GaussianDiffusion over the steps `use_timesteps` of the process with `betas` (T,).

    Its index t in [0, K) stands for the original step timestep_map[t]; models are called through
    TimestepMappedModel. Other keyword arguments are GaussianDiffusion's.
    """

    def __init__(self, use_timesteps, *, betas, **kwargs):
        new_betas, self.timestep_map = respaced_betas(betas, use_timesteps)
        self.use_timesteps = set(self.timestep_map)
        self.original_num_steps = len(betas)
        self._map_cache = {}
        super().__init__(betas=new_betas, **kwargs)

    def wrap_model(self, model):
        if isinstance(model, TimestepMappedModel):
            return model
        return TimestepMappedModel(model, self.timestep_map, self.rescale_timesteps, self.original_num_steps, self._map_cache)

    def scale_timesteps(self, t):
        # The wrapped model does the scaling, against the original number of steps.
        return t
