"""NVTX ranges for Nsight, in one domain ("ddx"), off unless switched on (`--nvtx` on the CLIs).

Range names used across ddx (training phases and sampling steps):
    train/data, train/d_step, train/r1, train/g_step, train/ema, train/checkpoint   (DDGAN)
    train/data, train/step, train/ema, train/checkpoint                             (IDDPM)
    sample/step_<i>   each reverse step i = T-1 .. 0, with sample/generator and sample/posterior inside (DDGAN;
                      the IDDPM sampler emits sample/step_<i> alone)
    sample/replay     one CUDA-graph replay of the whole DDGAN chain (SamplerMode.GRAPHS)

`SteadyStateWindow(start, count)` starts the CUDA profiler (cudaProfilerStart) at a given iteration and
stops it after a number of iterations, so `nsys profile --capture-range=cudaProfilerApi` records only the
steady-state window.
"""

import contextlib

import torch

DOMAIN = "ddx"
_state = {"enabled": False}


def enable(on=True):
    """Switch NVTX ranges on or off for the whole process."""
    _state["enabled"] = bool(on)


def enabled():
    return _state["enabled"]


@contextlib.contextmanager
def nvtx_range(name):
    """An NVTX range named `name` in the ddx domain when enabled; a no-op otherwise."""
    if not _state["enabled"]:
        yield
        return
    import nvtx

    with nvtx.annotate(name, domain=DOMAIN):
        yield


class SteadyStateWindow:
    """Start the CUDA profiler at iteration `start` and stop it `count` iterations later.

    Call `.step(i)` once per iteration; a no-op without CUDA or when start < 0.
    """

    def __init__(self, start=-1, count=0):
        self.start, self.stop = start, start + count
        self.active = False

    def step(self, iteration):
        if self.start < 0 or not torch.cuda.is_available():
            return
        if iteration == self.start and not self.active:
            torch.cuda.synchronize()
            torch.cuda.profiler.start()
            self.active = True
        elif iteration == self.stop and self.active:
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
            self.active = False
