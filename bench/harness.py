"""Shared machinery of the benchmark suites: providers, CUDA-event timing, bandwidth, copy baseline.

Every suite runs the same inputs through three providers side by side:
    eager    the pure-PyTorch reference (kernels/reference.py)
    compile  torch.compile of that reference
    triton   the fused Triton kernel (needs a CUDA GPU; on a CPU-only machine it is skipped, and
             the skip says so plainly)
Timing uses CUDA events after warm-up, with the L2 flushed before each repetition (`time_ms`); a
memory-bound op is reported in GB/s and as a fraction of a device-to-device copy measured in the
same run (`copy_bandwidth_gbps`).
"""

import dataclasses
import enum
import functools
import platform

import pytest
import torch

PROVIDERS = ("eager", "compile", "triton")
TRITON_NEEDS_GPU = "the Triton provider needs a CUDA GPU; this machine has none (eager and compile ran)"
# Larger than the L2 of any GPU the suites run on (H100 50 MB, H200 50 MB), like triton.testing.do_bench's 256 MB.
L2_FLUSH_BYTES = 256 * 1024 * 1024


# One compiled reference serves every shape of a suite (dynamic=False recompiles per shape and dtype):
# Dynamo's per-function recompile limit (8 by default) is lifted to this so no shape silently falls back to eager.
RECOMPILE_LIMIT = 64


class Pass(enum.Enum):
    """What a case times: the forward alone, or the forward and the backward."""

    FORWARD = "fwd"
    FORWARD_BACKWARD = "fwd+bwd"


@dataclasses.dataclass(frozen=True)
class Shape:
    """A case's (batch, channels, res, res) input, named after the model configuration it comes from."""

    name: str
    batch: int
    channels: int
    res: int
    dtype: torch.dtype = torch.float32


def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def skip_unless_runnable(provider):
    """Skip the Triton provider on a machine without a GPU, saying why."""
    if provider == "triton" and not torch.cuda.is_available():
        pytest.skip(TRITON_NEEDS_GPU)


def environment_info():
    """Device name and versions, for every result's extra_info."""
    import triton

    info = {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})",
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
    return info


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@functools.lru_cache(maxsize=None)
def _l2_flush_buffer():
    return torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")


def time_ms(fn, warmup=10, rep=50):
    """Median milliseconds of fn(): CUDA events on a GPU, perf_counter on the CPU, after warm-up.

    On a GPU every repetition starts with a cold L2: a write of L2_FLUSH_BYTES, between the
    previous repetition's end event and this one's start event, evicts the inputs the previous
    repetition left in L2 (an H100 keeps 50 MB), as triton.testing.do_bench does. Otherwise a
    set under the L2 size would be read from L2 and its GB/s overstate what it moves through DRAM.
    """
    for _ in range(warmup):
        fn()
    synchronize()
    if torch.cuda.is_available():
        flush = _l2_flush_buffer()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
        for start, end in zip(starts, ends):
            flush.zero_()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    else:
        import time

        times = []
        for _ in range(rep):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
    return times[len(times) // 2]


@functools.lru_cache(maxsize=None)
def copy_bandwidth_gbps(nbytes=1 << 28):
    """GB/s of a device-to-device copy of nbytes (read + write counted), measured once per run."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device())
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), warmup=3, rep=20)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def compiled(fn):
    """torch.compile of a reference function, cached per function so each compiles once per run."""
    return _compile_cache(fn)


@functools.lru_cache(maxsize=None)
def _compile_cache(fn):
    config = torch._dynamo.config
    # Newer torch calls the limit recompile_limit, older releases cache_size_limit.
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    return torch.compile(fn, dynamic=False)


def record(benchmark, fn, *, provider, nbytes=None, flops=None, **info):
    """Time fn for `provider` under pytest-benchmark and put ms, GB/s and copy fraction in extra_info.

    pytest-benchmark's own statistics are wall-clock with a device synchronisation per round;
    `ms` (CUDA events, median) is the figure the reports use.
    """
    ms = time_ms(fn)
    extra = dict(environment_info(), provider=provider, ms=ms, **info)
    if nbytes is not None:
        gbps = nbytes / (ms * 1e-3) / 1e9
        extra.update(bytes=nbytes, gbps=gbps)
        if torch.cuda.is_available():
            copy = copy_bandwidth_gbps()
            extra.update(copy_gbps=copy, fraction_of_copy=gbps / copy)
    if flops is not None:
        extra["tflops"] = flops / (ms * 1e-3) / 1e12
    benchmark.extra_info.update(extra)

    def synced():
        fn()
        synchronize()

    benchmark.pedantic(synced, rounds=10, iterations=1, warmup_rounds=1)
    return ms
