"""Machinery shared by the per-sample diffusion ops (q_sample, q_sample_pairs, sample_posterior,
p_mean_variance_learned_range, vb_terms_bpd).

Every one of them sees a batch as N rows of `inner` contiguous elements and scales each row by
coefficients gathered from 1-D tables at the row's timestep t[n]. The kernels run on a 1-D grid of
N * num_chunks programs; program p handles chunk p % num_chunks of sample p // num_chunks, so the
grid has no per-axis limit on the batch or the image size.
"""

import torch
import triton
import triton.language as tl

from kernels._checks import INTERPRET, check_same_device, check_same_shape, check_tensor, check_timesteps

MAX_BLOCK = 1024
TABLE_DTYPES = (torch.float32, torch.float64)

INTERPRETED = tl.constexpr(INTERPRET)


def _clamp_grad_at_bound(clamp):
    """Whether torch passes the gradient of `clamp` through an input lying exactly on its bound."""
    x = torch.ones((), requires_grad=True)
    (grad,) = torch.autograd.grad(clamp(x), x)
    return bool(grad != 0)


# PyTorch changed the subgradient of clamp at its bounds: 1 in older releases (`self >= min`, e.g. 2.12),
# 0 after the minimum-norm fix (`self > min`, pytorch/pytorch#184574; 2.14 has it). The kernels follow
# the installed torch so that they agree with the reference's autograd on every supported version.
_CLAMP_GRAD_AT_BOUNDS = tl.constexpr(_clamp_grad_at_bound(lambda x: x.clamp(-1.0, 1.0)))
_CLAMP_MIN_GRAD_AT_BOUND = tl.constexpr(_clamp_grad_at_bound(lambda x: x.clamp(min=1.0)))


@triton.jit
def sample_block(inner, num_chunks, BLOCK: tl.constexpr):
    """(sample index n, offsets of this program's BLOCK elements within the sample, their in-bounds mask)."""
    pid = tl.program_id(0).to(tl.int64)
    n = pid // num_chunks
    offsets = (pid % num_chunks) * BLOCK + tl.arange(0, BLOCK)
    return n, offsets, offsets < inner


@triton.jit
def store_rounded(ptrs, value, mask):
    """Store the float32 `value` in the pointers' dtype, rounded to nearest even.

    Triton's interpreter casts float32 to bfloat16 by truncation (and its "rtne" mode drops the carry
    into the exponent), so there the rounding is done on the bits; compiled kernels cast natively.
    """
    if INTERPRETED and ptrs.dtype.element_ty == tl.bfloat16:
        bits = value.to(tl.uint32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        rounded = tl.where(value != value, 0x7FC0, rounded)
        tl.store(ptrs, rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)
    else:
        tl.store(ptrs, value.to(ptrs.dtype.element_ty), mask=mask)


@triton.jit
def clamp_passes_grad(x, low, high):
    """Where torch.clamp(x, low, high) passes its gradient through (bounds included per the installed torch)."""
    if _CLAMP_GRAD_AT_BOUNDS:
        inside = (x >= low) & (x <= high)
    else:
        inside = (x > low) & (x < high)
    return inside


@triton.jit
def clamp_min_passes_grad(x, low):
    """Where torch.clamp(x, min=low) passes its gradient through (bound included per the installed torch)."""
    if _CLAMP_MIN_GRAD_AT_BOUND:
        inside = x >= low
    else:
        inside = x > low
    return inside


def plan(inner):
    """(BLOCK, num_chunks) for samples of `inner` elements."""
    block = min(max(triton.next_power_of_2(max(inner, 1)), 16), MAX_BLOCK)
    return block, triton.cdiv(inner, block)


def launch(kernel, batch, inner, *args, **constexprs):
    """Run `kernel(*args, inner, num_chunks, BLOCK=..., **constexprs)` over every (sample, chunk).

    Floating-point contraction is off so each product is rounded as in the reference's separate
    PyTorch ops (a fused multiply-add would move results by an ulp).
    """
    block, num_chunks = plan(inner)
    if batch * num_chunks == 0:
        return
    kernel[(batch * num_chunks,)](
        *args, inner, num_chunks, BLOCK=block, num_warps=4, enable_fp_fusion=False, **constexprs
    )


def inner_size(x):
    """Elements per sample of an (N, *) tensor."""
    size = 1
    for dim in x.shape[1:]:
        size *= dim
    return size


def check_batch(**tensors):
    """Float tensors of rank >= 1 (batch first) with one shape."""
    for name, tensor in tensors.items():
        check_tensor(name, tensor)
        if tensor.dim() < 1:
            raise ValueError(f"{name} must have a batch dimension (N, *), got a 0-d tensor")
    check_same_shape(**tensors)


def check_tables(t, batch, **tables):
    """t: int (N,) timesteps; each table 1-D float32/float64. Names the offending argument."""
    check_timesteps(t, batch)
    for name, table in tables.items():
        check_tensor(name, table, ndim=1, dtypes=TABLE_DTYPES)


def check_t_in_range(t, tables, offset=0):
    """On the CPU, raise a ValueError unless 0 <= t and t + offset < len(table) for every named table.

    On a GPU the check would need a device synchronisation, so there indices are assumed in range
    (as in the official code, where an out-of-range index fails inside the gather). Under torch.compile
    it is skipped too: reading t's values would break the graph (the eager call checks them).
    """
    if t.device.type != "cpu" or t.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = int(t.min()), int(t.max())
    for name, table in tables.items():
        if low < 0 or high + offset >= table.shape[0]:
            shift = f"t + {offset}" if offset else "t"
            raise ValueError(
                f"{shift} must lie in [0, {table.shape[0] - 1}] to index {name} (length {table.shape[0]}); "
                f"t has values in [{low}, {high}]"
            )


def validate(t, tensors, tables, offset=0):
    """The checks every op shares: devices, t against the batch, table dtypes/ranks, t in range."""
    batch = next(iter(tensors.values())).shape[0]
    check_tables(t, batch, **tables)
    check_same_device(t=t, **tensors, **tables)
    check_t_in_range(t, tables, offset)


def as_tables(*tables):
    """Tables as contiguous float32 (float64 tables are rounded once, like the official `.float()`)."""
    return tuple(table.to(torch.float32).contiguous() for table in tables)
