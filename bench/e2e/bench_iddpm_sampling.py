"""IDDPM sampling end to end (ddx.sample.fast_iddpm.FastIDDPMSampler) on the CIFAR-10 recipe's UNet.

Workloads: the 4,000-step cosine process respaced to 50 steps, sampled by the ancestral loop
(iddpm_cifar10_p_sample50) and by DDIM (iddpm_cifar10_ddim50), 100 images per call. Under
compiled+graphs one step is a CUDA graph replayed 50 times (see fast_iddpm's docstring for why).
"""

from bench.e2e.common import PRECISIONS, RunSettings, Variant, measure, progress_line, release_memory, run_row
from bench.e2e.models import iddpm_setup
from ddx.ops import set_fused
from ddx.sample.fast_iddpm import FastIDDPMSampler, IDDPMLoop

STEPS = 50
BATCH = 100
TINY_STEPS, TINY_BATCH = 4, 2
WORKLOADS = (
    ("iddpm_cifar10_p_sample50", IDDPMLoop.P_SAMPLE, str(STEPS)),
    ("iddpm_cifar10_ddim50", IDDPMLoop.DDIM, f"ddim{STEPS}"),
)


def _measure(setup, model, loop, respacing, variant, precision, batch):
    set_fused(model, variant.fused)
    diffusion = setup.build_diffusion(respacing, fused=variant.fused)
    sampler = FastIDDPMSampler(model, diffusion, setup.sample_shape, loop=loop, mode=variant.sampler_mode, dtype=precision)
    result = measure(lambda: sampler(batch), warmup=1)
    result["images_per_s"] = batch / (result["ms"] * 1e-3)
    return result


def run(settings: RunSettings):
    rows = []
    workloads = [w for w in WORKLOADS if settings.selects(w[0])]
    if not workloads:
        return rows
    setup = iddpm_setup(tiny=settings.tiny)
    model = setup.build_model(settings.device).eval()
    batch = TINY_BATCH if settings.tiny else BATCH
    for workload, loop, respacing in workloads:
        if settings.tiny:
            respacing = f"ddim{TINY_STEPS}" if loop is IDDPMLoop.DDIM else str(TINY_STEPS)
        fields = dict(preset="cifar10", batch=batch, steps=TINY_STEPS if settings.tiny else STEPS,
                      image_size=setup.unet.image_size)
        for precision in PRECISIONS:
            for variant in Variant:
                rows.append(run_row(
                    workload, variant, precision, settings,
                    lambda: _measure(setup, model, loop, respacing, variant, precision, batch), **fields,
                ))
                print(progress_line(rows[-1]), flush=True)
    del model
    release_memory()
    return rows
