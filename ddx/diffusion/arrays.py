"""The precomputed float64 arrays of IDDPM's GaussianDiffusion, and their cached float32 device copies."""

import dataclasses

import numpy as np
import torch

ARRAY_NAMES = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "alphas_cumprod_next",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)


def check_betas(betas):
    """betas as a float64 (T,) numpy array; ValueError unless 1-D, non-empty and in (0, 1]."""
    if isinstance(betas, torch.Tensor):
        betas = betas.detach().cpu().numpy()
    betas = np.array(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.shape[0] < 1:
        raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
    if not ((betas > 0).all() and (betas <= 1).all()):
        raise ValueError(f"betas must lie in (0, 1], got min {betas.min()} and max {betas.max()}")
    return betas


@dataclasses.dataclass(frozen=True, eq=False)
class DiffusionArrays:
    """The 13 arrays of GaussianDiffusion.__init__, float64 numpy, each (T,), plus the float64 arrays that
    the official code derives on the fly (so that they are rounded to float32 once, after the float64 math)."""

    betas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    alphas_cumprod_next: np.ndarray
    sqrt_alphas_cumprod: np.ndarray
    sqrt_one_minus_alphas_cumprod: np.ndarray
    log_one_minus_alphas_cumprod: np.ndarray
    sqrt_recip_alphas_cumprod: np.ndarray
    sqrt_recipm1_alphas_cumprod: np.ndarray
    posterior_variance: np.ndarray
    posterior_log_variance_clipped: np.ndarray
    posterior_mean_coef1: np.ndarray
    posterior_mean_coef2: np.ndarray
    one_minus_alphas_cumprod: np.ndarray
    log_betas: np.ndarray
    fixed_large_variance: np.ndarray
    fixed_large_log_variance: np.ndarray
    recip_posterior_mean_coef1: np.ndarray
    posterior_mean_coef2_over_coef1: np.ndarray

    @property
    def num_timesteps(self):
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas):
        """All arrays from betas (T,) in float64, with the official formulas in the official order."""
        betas = check_betas(betas)
        alphas = 1.0 - betas
        alphas_cumprod = np.cumprod(alphas, axis=0)
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # posterior_variance[0] is 0; the log takes entry 1 in its place (as the official code).
        posterior_log_variance_clipped = np.log(np.append(posterior_variance[1:2], posterior_variance[1:]))
        posterior_mean_coef1 = betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        posterior_mean_coef2 = (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod)
        # FIXED_LARGE uses beta_t, but the posterior variance at t = 0 for a better decoder likelihood.
        fixed_large_variance = np.append(posterior_variance[1:2], betas[1:])
        return cls(
            betas=betas,
            alphas_cumprod=alphas_cumprod,
            alphas_cumprod_prev=alphas_cumprod_prev,
            alphas_cumprod_next=np.append(alphas_cumprod[1:], 0.0),
            sqrt_alphas_cumprod=np.sqrt(alphas_cumprod),
            sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - alphas_cumprod),
            log_one_minus_alphas_cumprod=np.log(1.0 - alphas_cumprod),
            sqrt_recip_alphas_cumprod=np.sqrt(1.0 / alphas_cumprod),
            sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / alphas_cumprod - 1),
            posterior_variance=posterior_variance,
            posterior_log_variance_clipped=posterior_log_variance_clipped,
            posterior_mean_coef1=posterior_mean_coef1,
            posterior_mean_coef2=posterior_mean_coef2,
            one_minus_alphas_cumprod=1.0 - alphas_cumprod,
            log_betas=np.log(betas),
            fixed_large_variance=fixed_large_variance,
            fixed_large_log_variance=np.log(fixed_large_variance),
            recip_posterior_mean_coef1=1.0 / posterior_mean_coef1,
            posterior_mean_coef2_over_coef1=posterior_mean_coef2 / posterior_mean_coef1,
        )


class DeviceTables:
    """float32 torch copies of a DiffusionArrays, made once per (array, device) and cached.

    Rounding the float64 array to float32 before indexing gives the same values as the official
    `_extract_into_tensor` (index the float64 array, then `.float()`).
    """

    def __init__(self, arrays):
        self.arrays = arrays
        self._cache = {}

    def get(self, name, device):
        """The float32 (T,) tensor of array `name` on `device`."""
        device = torch.device(device)
        key = (name, device)
        table = self._cache.get(key)
        if table is None:
            table = torch.from_numpy(getattr(self.arrays, name)).to(device=device, dtype=torch.float32)
            self._cache[key] = table
        return table


def broadcast_index(table, t, shape):
    """table[t] as (N, 1, ..., 1) expanded to `shape` (N, ...): the official _extract_into_tensor."""
    values = table[t]
    return values.reshape(-1, *([1] * (len(shape) - 1))).expand(shape)
