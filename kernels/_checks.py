"""Input validation and backend dispatch shared by every op in kernels/.

Dispatch (DESIGN.md): a CUDA tensor goes to the Triton kernel; a CPU tensor goes to the
reference, except under Triton's own TRITON_INTERPRET=1, where Triton's interpreter runs the
kernel on the CPU. Triton decides at `@triton.jit` time whether a kernel is interpreted, so the
switch is read once, when kernels/ is imported, exactly as Triton reads it (`triton_interprets`).
"""

import os

import torch
import triton

# Triton's getenv_bool: case-insensitive, nothing stripped (3.6 to 3.8).
_TRUTHY = ("1", "true", "on", "yes", "y")


def triton_interprets():
    """Whether @triton.jit makes interpreted kernels: Triton's own knob (which also honours a value set
    in code) where this Triton has it, else TRITON_INTERPRET read with Triton's truthy values."""
    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    if runtime is not None and hasattr(runtime, "interpret"):
        return bool(runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in _TRUTHY


INTERPRET = triton_interprets()

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def use_triton(*tensors):
    """True when these tensors should run on the Triton kernel (CUDA, or the CPU interpreter)."""
    device = tensors[0].device
    return device.type == "cuda" or (INTERPRET and device.type == "cpu")


def check_tensor(name, tensor, ndim=None, dtypes=FLOAT_DTYPES):
    """Raise a TypeError/ValueError naming `name` when tensor is not a tensor of the given rank and dtype."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if dtypes is not None and tensor.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} has dtype {str(tensor.dtype).replace('torch.', '')}; expected one of {allowed}")
    if ndim is not None:
        allowed_ndims = ndim if isinstance(ndim, tuple) else (ndim,)
        if tensor.dim() not in allowed_ndims:
            expected = " or ".join(str(n) for n in allowed_ndims)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {tuple(tensor.shape)}")


def check_bool(name, value):
    """Raise a TypeError naming `name` unless value is a bool (a string such as "no" is truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


def check_same_device(**tensors):
    """Raise a ValueError when the named tensors (None entries skipped) are not on one device."""
    present = {name: t for name, t in tensors.items() if t is not None}
    devices = {t.device for t in present.values()}
    if len(devices) > 1:
        where = ", ".join(f"{name} on {t.device}" for name, t in present.items())
        raise ValueError(f"tensors must be on one device: {where}")


def check_same_shape(**tensors):
    """Raise a ValueError when the named tensors do not all have the same shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match: {listing}")


def check_timesteps(t, batch):
    """t must be an int64 or int32 (N,) tensor with one entry per sample of a batch of `batch`."""
    check_tensor("t", t, ndim=1, dtypes=(torch.int64, torch.int32))
    if t.shape[0] != batch:
        raise ValueError(f"t has {t.shape[0]} entries for a batch of {batch}")
