"""The --profile_window flag of the training CLIs: run the CUDA profiler over steady-state steps only.

    nsys profile -t cuda,nvtx --capture-range=cudaProfilerApi python train.py ddgan ... --nvtx --profile_window 50 20

PROFILE_WINDOW_SPEC spells a run configuration's `profile_window: tuple[int, ...] | None` field (start, count)
as this flag (ddx.cli.config_flags): two non-negative integers, in either family's list form.
"""

from ddx.cli.config_flags import FlagSpec, ListForm
from ddx.cli.validators import non_negative_int

PROFILE_HELP = ("start the CUDA profiler (cudaProfilerStart) at step START and stop it COUNT steps later, for "
                "nsys --capture-range=cudaProfilerApi; no effect without CUDA")

PROFILE_WINDOW_SPEC = FlagSpec(PROFILE_HELP, type=non_negative_int, list_form=ListForm.NARGS, nargs=2,
                               metavar=("START", "COUNT"))

__all__ = ["PROFILE_HELP", "PROFILE_WINDOW_SPEC"]

