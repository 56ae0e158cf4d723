"""The --profile_window flag of the training CLIs: run the CUDA profiler over steady-state steps only.

    nsys profile -t cuda,nvtx --capture-range=cudaProfilerApi python train.py ddgan ... --nvtx --profile_window 50 20
"""

from ddx.cli.validators import non_negative_int


def add_profile_window(parser):
    parser.add_argument(
        "--profile_window", type=non_negative_int, nargs=2, metavar=("START", "COUNT"), default=None,
        help="start the CUDA profiler (cudaProfilerStart) at step START and stop it COUNT steps later, for "
             "nsys --capture-range=cudaProfilerApi; no effect without CUDA",
    )


def profile_window_kwargs(args):
    """LoopConfig keyword arguments for the parsed --profile_window (none when the flag is absent)."""
    if args.profile_window is None:
        return {}
    start, count = args.profile_window
    return dict(profile_start=start, profile_steps=count)
