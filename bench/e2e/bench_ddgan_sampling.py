"""DDGAN sampling end to end (ddx.sample.fast.FastDDGANSampler): the whole reverse chain per call.

Workloads (official recipes, random weights):
    ddgan_cifar10_latency      CIFAR-10, 4 steps, 100 images per call: the paper's measure (0.21 s on a V100)
    ddgan_cifar10_throughput   CIFAR-10, 4 steps, batch 256 and 1,024 (images/s)
    ddgan_celeba256            CelebA-HQ 256, 2 steps, batch 1, 25 and 100
`checks` records what the issue asks of CUDA-graph replays: fresh samples on every call, the same samples
for the same seed, and no recompiles (every timed call runs under error_on_recompile).
"""

import torch

from bench.e2e.common import PRECISIONS, RunSettings, Variant, measure, progress_line, release_memory, run_row
from bench.e2e.models import ddgan_setup
from ddx.diffusion.ddgan import PosteriorCoefficients
from ddx.execution import ExecutionOptions
from ddx.ops import prepare_model
from ddx.sample.fast import FastDDGANSampler, SamplerMode

# (workload, preset, batch sizes); the tiny run keeps one small batch per workload.
WORKLOADS = (
    ("ddgan_cifar10_latency", "cifar10", (100,)),
    ("ddgan_cifar10_throughput", "cifar10", (256, 1024)),
    ("ddgan_celeba256", "celeba_256", (1, 25, 100)),
)
TINY_BATCH = 2
# graph_checks runs the sampler of this workload (it belongs to a run that selects it).
CHECKED_WORKLOAD = "ddgan_cifar10_latency"


def _sampler(setup, generator, variant, precision, device):
    # The variant's fused switch routes the generator (prepare_model) and the posterior (its coefficient object).
    execution = ExecutionOptions(fused=variant.fused, sampler=variant.sampler_mode, precision=precision)
    prepare_model(generator, execution)
    coeff = PosteriorCoefficients(setup.diffusion, device, fused=variant.fused)
    return FastDDGANSampler.from_execution(generator, coeff, setup.generator.nz, setup.diffusion.num_timesteps,
                                           execution)


def _measure(setup, generator, variant, precision, batch, device):
    sampler = _sampler(setup, generator, variant, precision, device)
    result = measure(lambda: sampler(batch))
    result["images_per_s"] = batch / (result["ms"] * 1e-3)
    return result


def run(settings: RunSettings):
    """Result rows of every workload x variant x precision."""
    rows = []
    for workload, preset, batches in WORKLOADS:
        if not settings.selects(workload):
            continue
        setup = ddgan_setup(preset, tiny=settings.tiny)
        generator = setup.build_generator(settings.device).eval()
        for batch in (TINY_BATCH,) if settings.tiny else batches:
            fields = dict(preset=preset, batch=batch, steps=setup.diffusion.num_timesteps,
                          image_size=setup.generator.image_size)
            for precision in PRECISIONS:
                for variant in Variant:
                    rows.append(run_row(
                        workload, variant, precision, settings,
                        lambda: _measure(setup, generator, variant, precision, batch, settings.device), **fields,
                    ))
                    print(progress_line(rows[-1]), flush=True)
        del generator
        release_memory()
    return rows


def graph_checks(settings: RunSettings):
    """The replay properties of the GRAPHS sampler on the CIFAR-10 recipe (bf16, 100 images); {} without CUDA."""
    if not settings.cuda:
        return {"graphs": "not run: needs a CUDA GPU"}
    release_memory()
    setup = ddgan_setup("cifar10", tiny=settings.tiny)
    generator = setup.build_generator(settings.device).eval()
    sampler = _sampler(setup, generator, Variant.GRAPHS, PRECISIONS[1], settings.device)
    batch = TINY_BATCH if settings.tiny else 100
    with torch._dynamo.config.patch(error_on_recompile=True):
        first, second = sampler(batch), sampler(batch)
        seeded, reseeded = sampler(batch, seed=1), sampler(batch, seed=1)
    eager = _sampler(setup, generator, Variant.KERNELS, PRECISIONS[1], settings.device)(batch, seed=1)
    checks = {
        "mode": SamplerMode.GRAPHS.value,
        "fresh_samples_each_call": not torch.equal(first, second),
        "same_seed_same_samples": torch.equal(seeded, reseeded),
        "max_abs_diff_vs_eager_same_seed": float((seeded - eager).abs().max()),
        "no_recompiles": True,
    }
    release_memory()
    return checks
