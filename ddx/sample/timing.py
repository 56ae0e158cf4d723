"""The speed of a sampling run: images/s and per-batch latency in steady state, and the warm-up apart.

    timer = SampleTimer(device)
    images = generate(..., timer=timer)         # ddx.sample.ddgan.generate / ddx.sample.iddpm.generate_samples
    timer.summary(execution)                     # {"images_per_s": ..., "batch_latency_ms": ..., "warmup_s": ...}

The generate functions time each real batch (time.perf_counter, with torch.cuda.synchronize before and after
on CUDA, so the figure is the GPU's work and not its launch). The first batch is the warm-up: under COMPILED
and GRAPHS it compiles the network (and captures the graph), under EAGER it pays the allocator's and the
kernels' first-call costs; its time is warmup_s. The steady state is every later batch of the first batch's
size (a smaller last batch is a new size, which COMPILED would compile again, so it is left out of it).

Timing never changes the samples: the real batches are timed as they are drawn. Only when the run has no
steady-state batch (a single batch, or one full batch and a remainder) is one more batch of the first size
drawn after all the real ones, with every random state it touches saved before and restored after (the
global CPU and CUDA generators, and the sampler's torch.Generator when it has one), and its images discarded;
the summary says so (timing_batch_extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from ddx.execution import ExecutionOptions, SamplerMode

T = TypeVar("T")


@contextlib.contextmanager
def preserved_rng(device: torch.device, generator: torch.Generator | None = None) -> Iterator[None]:
    """Random states as they were on entry, on exit: the global CPU generator, the device's CUDA generator
    (graph replays draw from it) and `generator` when given."""
    state = None if generator is None else generator.get_state()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            yield
    finally:
        if generator is not None:
            generator.set_state(state)


@dataclasses.dataclass
class SampleTimer:
    """Wall-clock times of the batches of one sampling run, on `device` (CUDA work is synchronised)."""

    device: torch.device
    batches: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (images, seconds) in order
    extra_batch: bool = False

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, draw: Callable[[], T], images: int) -> T:
        """draw()'s result, its time recorded as a batch of `images`."""
        self._sync()
        start = time.perf_counter()
        out = draw()
        self._sync()
        self.batches.append((int(images), time.perf_counter() - start))
        return out

    def _steady(self) -> list[float]:
        if not self.batches:
            return []
        size = self.batches[0][0]
        return [seconds for images, seconds in self.batches[1:] if images == size]

    def ensure_steady(self, draw: Callable[[], Any], images: int, generator: torch.Generator | None = None) -> None:
        """After the real batches: when none of them is a steady-state batch, time one more of `images` (the
        first batch's size) with the random states preserved (preserved_rng), and discard what it drew."""
        if not self.batches or self._steady():
            return
        with preserved_rng(self.device, generator):
            self.time(draw, images)
        self.extra_batch = True

    def summary(self, execution: ExecutionOptions) -> dict[str, Any]:
        """The figures metrics.json holds (JSON values), with the execution options they were measured under."""
        if not self.batches:
            raise ValueError("no batch was timed")
        steady = self._steady()
        batch_size = self.batches[0][0]
        real = self.batches[:-1] if self.extra_batch else self.batches
        mean = sum(steady) / len(steady) if steady else None
        return {
            "mode": execution.sampler.value,
            "dtype": execution.precision.value,
            "channels_last": execution.channels_last,
            "device": str(self.device),
            "batch_size": batch_size,
            "images_per_s": None if mean is None else batch_size / mean,
            "batch_latency_ms": None if mean is None else mean * 1e3,
            "steady_batches": len(steady),
            "warmup_s": self.batches[0][1],
            "sampling_s": sum(seconds for _, seconds in real),
            "timing_batch_extra": self.extra_batch,
        }


def timing_line(summary: dict[str, Any]) -> str:
    """One console line of a summary (SampleTimer.summary)."""
    layout = "channels_last" if summary["channels_last"] else "NCHW"
    how = f"{summary['mode']} {summary['dtype']} {layout} on {summary['device']}"
    extra = ", one extra batch drawn to time it" if summary["timing_batch_extra"] else ""
    count = summary["steady_batches"]
    if summary["images_per_s"] is None:
        steady = "no steady-state batch"
    else:
        steady = (f"{summary['images_per_s']:.1f} images/s, {summary['batch_latency_ms']:.3g} ms per batch of "
                  f"{summary['batch_size']} (steady state over {count} batch{'es' if count > 1 else ''}{extra})")
    compiled = "" if summary["mode"] == SamplerMode.EAGER.value else ", compile included"
    return f"sampling ({how}): {steady}; warm-up (first batch{compiled}) {summary['warmup_s']:.3g} s"


__all__ = ["SampleTimer", "preserved_rng", "timing_line"]
