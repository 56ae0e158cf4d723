"""What the end-to-end suites share: the variants, the run settings, and one timed measurement per row.

Every workload runs as four variants in fp32 and bf16:
    eager            the eager PyTorch reference ops (ddx.ops.set_fused(model, False)), op by op
    eager+kernels    the same with the Triton kernels
    compiled         torch.compile of the network (the kernels are custom ops inside its graph)
    compiled+graphs  compiled, then replayed as CUDA graphs
Timing is bench.harness.time_ms (CUDA events, median, after warm-up); peak memory is
torch.cuda.max_memory_allocated over one call (weights, graph pools and activations included).
"""

import dataclasses
import enum
import gc
import time

import torch

from bench.harness import synchronize, time_ms
from ddx.execution import Precision, SamplerMode

NEEDS_GPU = "needs a CUDA GPU"
TRITON_NEEDS_GPU = "needs a CUDA GPU (on the CPU the fused path is the eager reference, unless TRITON_INTERPRET=1)"
CPU_COMPILE_SKIPPED = "not run on the CPU by default (Inductor's C++ build takes minutes there; --cpu-compile runs it)"
# Wall-clock seconds of timed calls to aim for per row (warm-up excluded), and the bounds on repetitions.
TARGET_SECONDS = 2.0
MIN_REPS, MAX_REPS = 3, 30
# Without CUDA the figures only show that the code runs: one warm-up and two timed calls.
CPU_WARMUP, CPU_REPS = 1, 2


class Variant(enum.Enum):
    EAGER = "eager"
    KERNELS = "eager+kernels"
    COMPILED = "compiled"
    GRAPHS = "compiled+graphs"

    @property
    def fused(self):
        return self is not Variant.EAGER

    @property
    def sampler_mode(self):
        return {Variant.COMPILED: SamplerMode.COMPILED, Variant.GRAPHS: SamplerMode.GRAPHS}.get(self, SamplerMode.EAGER)


PRECISIONS = (Precision.FP32, Precision.BF16)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """device; tiny: scaled-down models and batches (the CPU default); cpu_compile: run the compiled variants
    on the CPU; only: substrings of the workload names to run (empty: all)."""

    device: torch.device
    tiny: bool
    cpu_compile: bool = False
    only: tuple = ()

    @property
    def cuda(self):
        return self.device.type == "cuda"

    def selects(self, workload):
        """Whether to run `workload`: every one unless `only` names substrings of the ones to run."""
        return not self.only or any(part in workload for part in self.only)


def skip_reason(variant, settings):
    """Why this variant cannot run in these settings, or None."""
    if settings.cuda:
        return None
    if variant is Variant.GRAPHS:
        return NEEDS_GPU
    if variant is Variant.KERNELS:
        return TRITON_NEEDS_GPU
    if variant is Variant.COMPILED and not settings.cpu_compile:
        return CPU_COMPILE_SKIPPED
    return None


def release_memory():
    """Drop what the previous row left (compiled graphs, graph pools), so rows do not share memory or caches."""
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _reps_for(call_seconds):
    return int(min(MAX_REPS, max(MIN_REPS, TARGET_SECONDS / max(call_seconds, 1e-6))))


def measure(fn, warmup=2):
    """{"ms", "peak_mem_mb", "reps"} of fn(): warm-up calls (compilation and graph capture happen there), a
    wall-clock probe that sets the repetitions, then time_ms. Recompiling after warm-up raises (error_on_recompile)."""
    if not torch.cuda.is_available():
        with torch._dynamo.config.patch(error_on_recompile=False):
            for _ in range(CPU_WARMUP):
                fn()
        with torch._dynamo.config.patch(error_on_recompile=True):
            return {"ms": time_ms(fn, warmup=0, rep=CPU_REPS), "peak_mem_mb": None, "reps": CPU_REPS}
    for _ in range(warmup):
        fn()
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    reps = _reps_for(time.perf_counter() - start)
    peak = None
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        fn()
        synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    with torch._dynamo.config.patch(error_on_recompile=True):
        ms = time_ms(fn, warmup=1, rep=reps)
    return {"ms": ms, "peak_mem_mb": peak, "reps": reps}


def row(workload, variant, precision, **fields):
    """A result row: the workload's name and parameters, the variant and precision, then the measurement or status."""
    return {"workload": workload, "variant": variant.value, "precision": precision.value, **fields}


def run_row(workload, variant, precision, settings, measure_fn, **fields):
    """measure_fn() -> measurement dict, run unless the variant is skipped here; failures are recorded, not raised."""
    reason = skip_reason(variant, settings)
    if reason is not None:
        return row(workload, variant, precision, status=f"skipped: {reason}", **fields)
    release_memory()
    try:
        result = measure_fn()
    except Exception as err:  # a failing row is a result to report; the suite goes on with the next one
        return row(workload, variant, precision, status=f"error: {type(err).__name__}: {str(err)[:500]}", **fields)
    finally:
        release_memory()
    return row(workload, variant, precision, status="ok", **fields, **result)


def progress_line(r):
    """One line per finished row, for the console."""
    outcome = f"{r['ms']:.2f} ms" if "ms" in r else r["status"]
    return f"  {r['workload']} batch {r.get('batch')} {r['precision']} {r['variant']}: {outcome}"
