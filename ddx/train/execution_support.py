"""What the trainers do with ddx.execution.ExecutionOptions, and the config fields it replaced.

A trainer receives one ExecutionOptions: it routes its networks and diffusion objects by ``fused``
(ddx.ops.set_fused) and runs the networks in ``precision`` where it supports one. The device is the
DistContext's (the caller resolves ``execution.device`` when it creates the context); NVTX and threads
are process-wide and set by the caller; the sampler mode is sampling's. Options a trainer does not
implement yet (torch.compile, channels_last) are refused by name rather than silently ignored.

Before issue #12 the trainer configs carried two of these switches: DDGANTrainConfig.fused and
IddpmTrainConfig.amp (an AmpMode: none, bf16, fp16). config.json files written then hold them in their
"train" section; :func:`split_legacy_train_fields` maps them onto ExecutionOptions fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ddx.execution import CompileMode, ExecutionOptions, MemoryFormat, Precision, parse_precision

# Old train-config field -> the ExecutionOptions field that holds it now.
LEGACY_EXECUTION_FIELDS = {"fused": "fused", "amp": "precision"}


def trainer_execution(execution: ExecutionOptions | None, trainer: str,
                      precisions: tuple[Precision, ...] = (Precision.FP32,)) -> ExecutionOptions:
    """``execution`` (the defaults when None), checked for what ``trainer`` implements; ValueError naming the fix."""
    if execution is None:
        return ExecutionOptions()
    if not isinstance(execution, ExecutionOptions):
        raise TypeError(f"execution must be a ddx.execution.ExecutionOptions, got {type(execution).__name__}")
    if execution.precision not in precisions:
        allowed = ", ".join(p.value for p in precisions)
        raise ValueError(f"the {trainer} trainer runs in {allowed}, not precision {execution.precision.value}: "
                         f"use precision {precisions[0].value}")
    if execution.compile is not CompileMode.NONE:
        raise ValueError(f"the {trainer} trainer does not compile its networks (compile {execution.compile.value}): "
                         f"use compile {CompileMode.NONE.value}")
    if execution.memory_format is not MemoryFormat.CONTIGUOUS:
        raise ValueError(f"the {trainer} trainer runs contiguous (NCHW) networks, not {execution.memory_format.value}: "
                         f"use memory_format {MemoryFormat.CONTIGUOUS.value}")
    return execution


def split_legacy_train_fields(train: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train-config fields, ExecutionOptions fields) of a "train" section, old (fused, amp) or new.

    amp is read by value or by name ('none' / 'NONE' is fp32, as --amp none), so both ways old files
    stored enums load.
    """
    kept, execution = {}, {}
    for name, value in train.items():
        if name not in LEGACY_EXECUTION_FIELDS:
            kept[name] = value
        elif name == "amp":
            execution["precision"] = parse_precision(value, "amp").value
        else:
            execution[LEGACY_EXECUTION_FIELDS[name]] = value
    return kept, execution

