"""Capture and restore every random number generator a training process uses.

The state is made only of tensors, lists, numbers, strings and None, so that it survives
``torch.load(..., weights_only=True)``: numpy's and Python's states are converted to int64 tensors.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_KEYS = ("torch_cpu", "torch_cuda", "numpy", "python")


def capture_rng_state() -> dict[str, Any]:
    """Return the states of torch (CPU and every CUDA device), numpy and Python's ``random``."""
    np_kind, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    py_version, py_internal, py_gauss_next = random.getstate()
    return {
        "torch_cpu": torch.get_rng_state(),
        # Only query CUDA when it is already initialised: querying would otherwise create a context.
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss_next,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from a dict made by :func:`capture_rng_state`.

    Raises ValueError when keys are missing or CUDA states exist for more devices than are visible.
    """
    if not isinstance(state, dict) or any(key not in state for key in _KEYS):
        raise ValueError(f"RNG state must be a dict with keys {_KEYS}, got {type(state).__name__}"
                         f"{' with keys ' + str(sorted(state)) if isinstance(state, dict) else ''}")
    torch.set_rng_state(state["torch_cpu"])
    cuda_states = list(state["torch_cuda"])
    if cuda_states:
        if len(cuda_states) > torch.cuda.device_count():
            raise ValueError(f"checkpoint holds CUDA RNG states of {len(cuda_states)} devices, "
                             f"but {torch.cuda.device_count()} are visible")
        for device, cuda_state in enumerate(cuda_states):
            torch.cuda.set_rng_state(cuda_state, device)
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(int(v) for v in py_state["internal"].tolist()),
                     py_state["gauss_next"]))
