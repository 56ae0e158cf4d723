"""The execution flags of the sampling commands (sample.py ddgan, sample.py iddpm) that training does not offer.

--dtype sets ExecutionOptions.precision (the network's autocast; the chain's arithmetic stays fp32) and
--channels_last sets ExecutionOptions.memory_format; the trainers do not implement either yet, so train.py has
no such flags. Both land on the run configuration's fields (dest precision / memory_format), so they resolve
like every other flag (ddx.cli.config_flags.typed_values).
"""

from __future__ import annotations

import argparse

from ddx.cli.validators import enum_choice
from ddx.execution import MemoryFormat, Precision

DTYPE_HELP = ("the network's precision while sampling: fp32, or bf16 / fp16 autocast (the diffusion chain stays "
              "fp32; the images differ from fp32 by rounding)")
CHANNELS_LAST_HELP = ("run the network in channels_last (NHWC) memory format, weights and inputs (the same images "
                      "within rounding; often faster for bf16 / fp16 convolutions on GPUs)")


def add_dtype_flag(group: argparse._ActionsContainer) -> None:
    """--dtype fp32|bf16|fp16 into the `precision` field (default: the configuration's, fp32)."""
    group.add_argument("--dtype", dest="precision", type=enum_choice(Precision), default=argparse.SUPPRESS,
                       metavar="DTYPE", help=f"{DTYPE_HELP} (default: fp32)")


def add_channels_last_flag(group: argparse._ActionsContainer) -> None:
    """--channels_last: the `memory_format` field set to channels_last (default: contiguous NCHW)."""
    group.add_argument("--channels_last", dest="memory_format", action="store_const",
                       const=MemoryFormat.CHANNELS_LAST, default=argparse.SUPPRESS, help=CHANNELS_LAST_HELP)


__all__ = ["CHANNELS_LAST_HELP", "DTYPE_HELP", "add_channels_last_flag", "add_dtype_flag"]
