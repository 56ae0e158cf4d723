"""How a kernels.adagn call runs: the path (FUSED / LOOPED / SPLIT, see kernels/adagn.py) and its tiles.

The heuristic (`make_plan`): on CUDA the target is TUNING.programs_per_sm (8) programs per SM, enough
resident warps to keep the memory system busy. A group that fits one tile runs FUSED, whatever
N * G: then the whole tensor is under target * fused_max_elems elements and the call is
launch-bound anyway. Otherwise S = ceil(target / (N * G)), bounded by one tile per chunk and by
TUNING.max_splits: S > 1 is SPLIT, S = 1 is LOOPED. The backward follows the forward's plan.
"""

import dataclasses
import enum
import functools
import math

import torch
import triton


class Path(enum.Enum):
    """How a call runs (kernels/adagn.py describes each path)."""

    FUSED = "fused"
    LOOPED = "looped"
    SPLIT = "split"


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The knobs of `make_plan`; tests swap in small values to drive every path on tiny shapes."""

    # Sizes checked by compiling for sm_90 (ptxas -v, bf16 and fp32, SiLU on): no register spills.
    fused_max_elems: int = 8192  # largest padded group tile one program holds (16 elements a thread)
    chunk_tile_elems: int = 2048  # tile of the LOOPED/SPLIT kernels (8 elements a thread: their loops keep more live)
    chunk_max_block_c: int = 16  # channels per LOOPED/SPLIT tile (the rest of the tile is positions)
    programs_per_sm: int = 8  # programs per SM to aim for: enough loads in flight, and a short tail
    interpreter_programs: int = 1  # the target under TRITON_INTERPRET: never split unless tests ask
    max_splits: int = 512  # bound on S, so the apply kernels' [BLOCK_S] merge stays one small tile


TUNING = Tuning()


@dataclasses.dataclass(frozen=True)
class Plan:
    """A call's path and tile shape; S = splits chunks of hw_per_chunk positions per group."""

    path: Path
    block_c: int
    block_hw: int
    hw_per_chunk: int
    splits: int
    num_warps: int


def _warps_for(tile_elems, elems_per_thread):
    """Warps (1 to 16) that give each thread elems_per_thread elements of each live tile."""
    return min(max(tile_elems // (32 * elems_per_thread), 1), 16)


@functools.lru_cache(maxsize=None)
def make_plan(batch, channels, hw, num_groups, num_programs_target, tuning):
    """Choose FUSED / LOOPED / SPLIT and the tiles for x (batch, channels, hw) in num_groups groups.

    Cached: a model calls it with a handful of shapes, and it runs on every forward.
    """
    cg = channels // num_groups
    block_c, block_hw = triton.next_power_of_2(cg), triton.next_power_of_2(hw)
    if block_c * block_hw <= tuning.fused_max_elems:
        return Plan(Path.FUSED, block_c, block_hw, hw, 1, _warps_for(block_c * block_hw, 16))
    block_c = min(block_c, tuning.chunk_max_block_c)
    block_hw = min(block_hw, max(tuning.chunk_tile_elems // block_c, 1))
    groups = batch * num_groups
    splits = min(math.ceil(num_programs_target / groups), triton.cdiv(hw, block_hw), tuning.max_splits)
    splits = max(splits, 1)
    hw_per_chunk = triton.cdiv(triton.cdiv(hw, splits), block_hw) * block_hw
    splits = triton.cdiv(hw, hw_per_chunk)
    path = Path.SPLIT if splits > 1 else Path.LOOPED
    return Plan(path, block_c, block_hw, hw_per_chunk, splits, _warps_for(block_c * block_hw, 8))


@functools.lru_cache(maxsize=None)
def _cuda_sm_count(index):
    return torch.cuda.get_device_properties(index).multi_processor_count


def target_programs(device):
    """Programs that fill `device`: TUNING.programs_per_sm per SM on CUDA; the interpreter's setting on CPU."""
    if device.type == "cuda":
        return TUNING.programs_per_sm * _cuda_sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return TUNING.interpreter_programs


def plan_for(x, num_groups):
    """The plan of x (N, C, *spatial) on its device."""
    n, c = x.shape[:2]
    return make_plan(n, c, math.prod(x.shape[2:]), num_groups, target_programs(x.device), TUNING)
