"""Exponential moving average of a module's parameters, shared by the DDGAN and IDDPM trainers.

After each optimizer step, ``update()`` sets ``shadow = decay * shadow + (1 - decay) * param`` for every
parameter (computed as ``shadow.mul_(decay).add_(param, alpha=1 - decay)``, the arithmetic of DDGAN's EMA.py
and improved-diffusion's update_ema up to rounding of the lerp form).

Where the average starts (:class:`EMAStart`):
- ``INITIAL``: from the weights at construction (improved-diffusion copies the initial master params).
- ``FIRST_STEP``: from the weights after the first optimizer step (DDGAN's EMA optimizer wrapper creates
  its ``state['ema']`` as a copy of the freshly updated parameter, then averages it with itself).

Evaluate with the average through ``swap()`` (exchange parameters and shadow; a second call undoes it,
like EMA.py's ``swap_parameters_with_ema(store_params_in_ema=True)``), the ``averaged()`` context, or
``copy_to(other_module)``.

The layout of :meth:`EMA.state_dict` has one owner, this class: :meth:`EMA.state_from_shadow` builds it
from averaged weights found elsewhere (an official file) and :meth:`EMA.shadow_of` /
:meth:`EMA.averaged_weights` read it back out of a checkpoint without building a module.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn


class EMAStart(enum.Enum):
    INITIAL = "initial"
    FIRST_STEP = "first_step"


class EMA:
    """The moving average of ``module``'s parameters (those with requires_grad at construction).

    Args:
        module: the trained module (not a DDP wrapper: pass ``unwrap(model)``).
        decay: in [0, 1); 0 makes the shadow a copy of the latest weights.
        start: :class:`EMAStart`, where the average begins.
    """

    def __init__(self, module: nn.Module, decay: float, start: EMAStart = EMAStart.INITIAL):
        if not isinstance(module, nn.Module):
            raise TypeError(f"EMA needs an nn.Module, got {type(module).__name__}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be a number in [0, 1), got {decay!r}")
        if not isinstance(start, EMAStart):
            raise TypeError(f"start must be an EMAStart, got {start!r}")
        self.module = module
        self.decay = float(decay)
        self.start = start
        self.params = {name: p for name, p in module.named_parameters() if p.requires_grad}
        if not self.params:
            raise ValueError("EMA: the module has no trainable parameters")
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        self.initialized = start is EMAStart.INITIAL
        self.num_updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the average (call after each optimizer step)."""
        if not self.initialized:
            for name, p in self.params.items():
                self.shadow[name].copy_(p.detach())
            self.initialized = True
        for name, p in self.params.items():
            self.shadow[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        self.num_updates += 1

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the module's parameter values with the shadow (call again to undo)."""
        for name, p in self.params.items():
            current = p.detach().clone()
            p.copy_(self.shadow[name])
            self.shadow[name].copy_(current)

    @contextlib.contextmanager
    def averaged(self) -> Iterator[nn.Module]:
        """Within the block the module holds the averaged weights; the trained ones come back after."""
        self.swap()
        try:
            yield self.module
        finally:
            self.swap()

    @torch.no_grad()
    def copy_to(self, other: nn.Module) -> nn.Module:
        """Write the averaged weights into ``other`` (same parameter names, e.g. a deepcopy); returns it."""
        targets = dict(other.named_parameters())
        missing = sorted(set(self.shadow) - set(targets))
        if missing:
            raise ValueError(f"copy_to: the target module lacks parameters {missing[:5]}")
        for name, value in self.shadow.items():
            targets[name].copy_(value)
        return other

    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state_dict with the averaged parameters in place of the trained ones."""
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        for name, value in self.shadow.items():
            state[name] = value.detach().clone()
        return state

    def state_dict(self) -> dict[str, Any]:
        return EMA.state_from_shadow({k: v.detach().clone() for k, v in self.shadow.items()}, self.decay,
                                     self.start, self.initialized, self.num_updates)

    @staticmethod
    def state_from_shadow(shadow: Mapping[str, torch.Tensor], decay: float, start: EMAStart = EMAStart.INITIAL,
                          initialized: bool = True, num_updates: int = 0) -> dict[str, Any]:
        """An :meth:`EMA.state_dict` holding ``shadow`` (parameter name -> averaged value) as the average.

        initialized False: the average has not started (FIRST_STEP before its first update); the shadow's
        values are then replaced by the weights at the first update.
        """
        return {"decay": float(decay), "start": EMAStart(start).value, "initialized": bool(initialized),
                "num_updates": int(num_updates), "shadow": dict(shadow)}

    @staticmethod
    def shadow_of(state: Mapping[str, Any] | None) -> dict[str, torch.Tensor] | None:
        """The averaged parameters an :meth:`EMA.state_dict` holds; None for no state or an average not yet started."""
        if state is None or not state.get("initialized"):
            return None
        return dict(state["shadow"])

    @staticmethod
    def averaged_weights(state: Mapping[str, Any] | None, weights: Mapping[str, torch.Tensor]
                         ) -> dict[str, torch.Tensor]:
        """A module's state_dict ``weights`` with the averaged parameters of ``state`` in place of the trained ones
        (``weights`` as they are when there is no average yet); buffers are the trained ones."""
        shadow = EMA.shadow_of(state)
        return {**weights, **shadow} if shadow is not None else dict(weights)

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the parameter names must match this module's."""
        shadow = state["shadow"]
        if set(shadow) != set(self.shadow):
            diff = sorted(set(shadow) ^ set(self.shadow))
            raise ValueError(f"EMA state does not match the module's parameters (differing names: {diff[:5]})")
        for name, value in shadow.items():
            if value.shape != self.shadow[name].shape:
                raise ValueError(f"EMA state for {name} has shape {tuple(value.shape)}, "
                                 f"expected {tuple(self.shadow[name].shape)}")
            self.shadow[name].copy_(value)
        self.decay = float(state["decay"])
        self.start = EMAStart(state["start"])
        self.initialized = bool(state["initialized"])
        self.num_updates = int(state["num_updates"])
