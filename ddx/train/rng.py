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
    """Return the states of torch (CPU, current CUDA device if in use), numpy and Python's ``random``.

    Only the current device's CUDA generator is kept: a rank draws from its own device only, and the
    state then restores on a machine that shows a different number of GPUs.
    """
    np_kind, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    py_version, py_internal, py_gauss_next = random.getstate()
    return {
        "torch_cpu": torch.get_rng_state(),
        # Only query CUDA when it is already initialised: querying would otherwise create a context.
        "torch_cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
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

    The CUDA state goes to the current device; it is ignored where CUDA is not available (nothing
    then draws from a CUDA generator). Raises ValueError when keys are missing.
    """
    if not isinstance(state, dict) or any(key not in state for key in _KEYS):
        raise ValueError(f"RNG state must be a dict with keys {_KEYS}, got {type(state).__name__}"
                         f"{' with keys ' + str(sorted(state)) if isinstance(state, dict) else ''}")
    torch.set_rng_state(state["torch_cpu"])
    if state["torch_cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["torch_cuda"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(int(v) for v in py_state["internal"].tolist()),
                     py_state["gauss_next"]))
