"""How a run executes, apart from what it computes: one typed object that train, sample and bench share.

ExecutionOptions holds every implementation switch (device, fused or eager kernels, precision, memory format,
compile mode, sampler mode, NVTX, CPU threads). None of them is a hyperparameter: with the defaults off
(fused aside, which matches the reference within the tolerance table), a run keeps the official numerics.
Models, diffusion objects, trainers and samplers receive this object (or are routed by it, ddx.ops) one way;
no module carries its own copy of a switch.

This module sits below models, diffusion and nn (it imports only torch, ddx.utils and ddx.profiling), so all
of them may import it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

import torch

from ddx import profiling
from ddx.utils.checks import check_positive_int, parse_enum


class Precision(enum.Enum):
    """The network's compute precision: fp32, or bf16 / fp16 autocast (the diffusion arithmetic stays fp32).

    Training spells fp32 as ``--amp none`` (IDDPM's established flag); "none" parses as FP32 (parse_precision).
    """

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(self)

    @classmethod
    def _missing_(cls, value: Any) -> Precision | None:
        # The aliases every reader accepts (flags, config.json, presets): --amp none, dtype names, by any case.
        if isinstance(value, str):
            return _PRECISION_ALIASES.get(value.strip().lower())
        return None


class MemoryFormat(enum.Enum):
    """Layout of the networks' 4-D activations and weights: NCHW (contiguous) or NHWC (channels_last)."""

    CONTIGUOUS = "contiguous"
    CHANNELS_LAST = "channels_last"

    @property
    def torch_format(self) -> torch.memory_format:
        return torch.channels_last if self is MemoryFormat.CHANNELS_LAST else torch.contiguous_format


class CompileMode(enum.Enum):
    """torch.compile of the training networks: off, or one of torch.compile's modes."""

    NONE = "none"
    DEFAULT = "default"
    REDUCE_OVERHEAD = "reduce-overhead"
    MAX_AUTOTUNE = "max-autotune"


class SamplerMode(enum.Enum):
    """How the samplers run the network (ddx.sample.fast_common): op by op, compiled, or CUDA-graph replays."""

    EAGER = "eager"
    COMPILED = "compiled"
    GRAPHS = "graphs"


_PRECISION_ALIASES = {"none": Precision.FP32, "float32": Precision.FP32, "bfloat16": Precision.BF16,
                      "float16": Precision.FP16, "half": Precision.FP16}
_BY_DTYPE = {torch.float32: Precision.FP32, torch.bfloat16: Precision.BF16, torch.float16: Precision.FP16}


def parse_precision(value: Any, what: str = "precision") -> Precision:
    """A Precision from a member, its value or name (fp32, bf16, fp16), an alias ('none': fp32, as --amp none;
    float32, bfloat16, float16, half), or a torch dtype."""
    if isinstance(value, torch.dtype) and value in _BY_DTYPE:
        return _BY_DTYPE[value]
    return parse_enum(Precision, value, what)


@dataclasses.dataclass(frozen=True)
class ExecutionOptions:
    """device: "cpu", "cuda", "cuda:1" or None (cuda when available; resolved by ddx.train.distributed).
    fused: Triton kernels (True) or the eager PyTorch reference ops (False).
    precision: autocast of the networks. memory_format: NCHW or channels_last networks and inputs.
    compile: torch.compile of the training networks. sampler: how sampling runs the network.
    nvtx: NVTX ranges for Nsight. threads: torch CPU threads (None: torch's default).
    """

    device: str | None = None
    fused: bool = True
    precision: Precision = Precision.FP32
    memory_format: MemoryFormat = MemoryFormat.CONTIGUOUS
    compile: CompileMode = CompileMode.NONE
    sampler: SamplerMode = SamplerMode.EAGER
    nvtx: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))
        if not isinstance(self.fused, bool) or not isinstance(self.nvtx, bool):
            raise TypeError(f"fused and nvtx must be bools, got {self.fused!r} and {self.nvtx!r}")
        object.__setattr__(self, "precision", parse_precision(self.precision))
        object.__setattr__(self, "memory_format", parse_enum(MemoryFormat, self.memory_format, "memory_format"))
        object.__setattr__(self, "compile", parse_enum(CompileMode, self.compile, "compile"))
        object.__setattr__(self, "sampler", parse_enum(SamplerMode, self.sampler, "sampler"))
        object.__setattr__(self, "threads", check_positive_int(self.threads, "threads", optional=True))

    @property
    def channels_last(self) -> bool:
        return self.memory_format is MemoryFormat.CHANNELS_LAST

    def to_dict(self) -> dict[str, Any]:
        """JSON values, enums by value (the one way config.json stores enums)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExecutionOptions:
        """The inverse of to_dict; ValueError naming unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown execution options {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**dict(values))


def apply_process_options(execution: ExecutionOptions) -> None:
    """Set the options that belong to the whole process, once, at the start of a command: torch's CPU threads
    (when given) and NVTX ranges. The others travel with the objects that use them."""
    if execution.threads is not None:
        torch.set_num_threads(execution.threads)
    profiling.enable(execution.nvtx)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


__all__ = ["CompileMode", "ExecutionOptions", "MemoryFormat", "Precision", "SamplerMode", "apply_process_options",
           "parse_precision"]
