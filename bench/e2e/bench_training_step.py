"""Training-iteration time of DDGAN and IDDPM at their CIFAR-10 recipes, through ddx's own trainers.

Workloads:
    ddgan_cifar10_train_step_r1   DDGANTrainer.train_step on a step where the lazy R1 penalty is due
                                  (D step: real, R1 differentiated twice, fake; then G step; then EMA)
    ddgan_cifar10_train_step      the same on a step without R1 (the recipe's lazy_reg=15: 14 steps in 15)
    iddpm_cifar10_train_step      IddpmTrainer.train_step (hybrid loss, AdamW, EMA), batch 128
Variants: compiled = the generator / UNet compiled in place (nn.Module.compile, fullgraph); compiled+graphs
= the same with mode="reduce-overhead" (Inductor's CUDA graphs). DDGAN's discriminator stays eager in
every variant: R1 differentiates it twice, which a compiled (AOTAutograd) graph cannot do.
bf16: IDDPM through its trainer's execution precision (ExecutionOptions.precision); DDGAN's trainer has no AMP option, so its iteration runs
under torch.autocast(bf16) as a whole (the optimizer steps are unaffected by autocast).
"""

import contextlib

import torch

from bench.e2e.common import PRECISIONS, RunSettings, Variant, measure, progress_line, run_row
from bench.e2e.models import ddgan_setup, iddpm_setup
from ddx.execution import ExecutionOptions, Precision
from ddx.train.ddgan import DDGANTrainer
from ddx.train.distributed import DistContext
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer


def _compile_in_place(module, variant):
    if variant in (Variant.COMPILED, Variant.GRAPHS):
        mode = "reduce-overhead" if variant is Variant.GRAPHS else None
        module.compile(mode=mode, fullgraph=True, dynamic=False)


def _images(batch, setup_shape, device):
    return torch.rand(batch, *setup_shape, device=device) * 2 - 1


def _ddgan_step(variant, precision, device, tiny, with_r1):
    setup = ddgan_setup("cifar10", tiny=tiny)
    generator, discriminator = setup.build_generator(device), setup.build_discriminator(device)
    _compile_in_place(generator, variant)
    config = setup.train
    trainer = DDGANTrainer(generator, discriminator, setup.diffusion, config, ctx=DistContext(device=device),
                           execution=ExecutionOptions(fused=variant.fused))
    step = 0 if with_r1 else 1
    if config.r1_at(step) != with_r1:
        raise RuntimeError(f"lazy_reg={config.lazy_reg}: step {step} does not {'' if with_r1 else 'skip '}R1")
    real = _images(setup.batch_size, (3, setup.generator.image_size, setup.generator.image_size), device)
    dtype = precision.autocast_dtype
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else contextlib.nullcontext

    def iteration():
        with autocast():
            trainer.train_step(real, step)

    result = measure(iteration)
    return dict(result, images_per_s=setup.batch_size / (result["ms"] * 1e-3))


def _iddpm_step(variant, precision, device, tiny):
    setup = iddpm_setup(tiny=tiny)
    model = setup.build_model(device)
    _compile_in_place(model, variant)
    execution = ExecutionOptions(fused=variant.fused, precision=Precision.BF16 if precision is Precision.BF16
                                 else Precision.FP32)
    config = IddpmTrainConfig(lr=setup.lr, batch_size=setup.batch_size)
    trainer = IddpmTrainer(model, setup.build_diffusion(), config, ctx=DistContext(device=device), execution=execution)
    images = _images(setup.batch_size, setup.sample_shape, device)
    batch = (images, torch.zeros(setup.batch_size, dtype=torch.int64))
    result = measure(lambda: trainer.train_step(batch, 1))
    return dict(result, images_per_s=setup.batch_size / (result["ms"] * 1e-3))


def run(settings: RunSettings):
    rows = []
    ddgan_batch = ddgan_setup("cifar10", tiny=settings.tiny).batch_size
    workloads = (
        ("ddgan_cifar10_train_step_r1", ddgan_batch,
         lambda v, p: _ddgan_step(v, p, settings.device, settings.tiny, with_r1=True)),
        ("ddgan_cifar10_train_step", ddgan_batch,
         lambda v, p: _ddgan_step(v, p, settings.device, settings.tiny, with_r1=False)),
        ("iddpm_cifar10_train_step", iddpm_setup(tiny=settings.tiny).batch_size,
         lambda v, p: _iddpm_step(v, p, settings.device, settings.tiny)),
    )
    for workload, batch, step in workloads:
        if not settings.selects(workload):
            continue
        for precision in PRECISIONS:
            for variant in Variant:
                rows.append(run_row(workload, variant, precision, settings, lambda: step(variant, precision),
                                    preset="cifar10", batch=batch))
                print(progress_line(rows[-1]), flush=True)
    return rows
