"""The sampling commands' execution options through the generate functions: --dtype (autocast) and --channels_last
give the fp32 / NCHW samples (within rounding), and timing (ddx.sample.timing) leaves the samples and the random
streams as they were."""

import numpy as np
import pytest
import torch

from ddx.diffusion.ddgan import DDGANDiffusionConfig
from ddx.execution import ExecutionOptions
from ddx.models.ncsnpp import NCSNpp, NCSNppConfig
from ddx.models.toy import ToyConfig, ToyGenerator
from ddx.sample.ddgan import generate
from ddx.sample.fast import FastIDDPMSampler
from ddx.sample.iddpm import generate_samples
from ddx.sample.timing import SampleTimer, preserved_rng, timing_line
from tests.iddpm._tiny import tiny_diffusion, tiny_unet
from tests.tolerances import TOLERANCES, assert_close

NZ = 4
DIFFUSION = DDGANDiffusionConfig(num_timesteps=2)
SHAPE = (3, 8, 8)

# Autocast against fp32, whole chains. bf16 / fp16 round every convolution's and matmul's inputs to 8 / 11
# significant bits (2^-8, 2^-11 relative) through some twenty layers, so the table's one-rounding bounds do not
# apply. DDGAN (2 steps, random NCSN++ with weights N(0, 0.1), samples up to 0.17): measured max |diff| 1.5e-3
# (bf16) and 1.7e-4 (fp16); bounds about 5x. IDDPM (4 cosine steps, random UNet): pred_xstart divides eps's
# error by sqrt(alpha_bar_t), ~1e-2 at the first step, before clipping, so single pixels move by up to 0.23 in
# bf16; the mean does not: measured mean |diff| 5.9e-3 (bf16) and 4.2e-4 (fp16), bounds about 3x.
DDGAN_AUTOCAST_MAX = {"bf16": 1e-2, "fp16": 1e-3}
IDDPM_AUTOCAST_MEAN = {"bf16": 2e-2, "fp16": 1.5e-3}


def _ncsnpp():
    torch.manual_seed(0)
    config = NCSNppConfig(image_size=8, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                          nz=NZ, z_emb_dim=8, n_mlp=1)
    generator = NCSNpp(config)
    for p in generator.parameters():
        p.data.normal_(0, 0.1)  # the zero-initialised output layers would hide the network
    return generator


def _ddgan(timer=None, **execution):
    # A fresh generator per run: channels_last converts the weights in place.
    return generate(_ncsnpp(), DIFFUSION, NZ, 5, 2, SHAPE, seed=3, execution=ExecutionOptions(fused=False, **execution),
                    timer=timer)


def _iddpm(**execution):
    model = tiny_unet().eval()
    torch.manual_seed(1)
    for p in model.parameters():
        if not p.abs().any():
            p.data.normal_(0, 0.05)  # the official zero_module layers: otherwise eps = 0 whatever the precision
    sampler = FastIDDPMSampler.from_execution(model, tiny_diffusion(4), SHAPE, ExecutionOptions(fused=False, **execution))
    return sampler(3, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def ddgan_fp32():
    return _ddgan()


@pytest.fixture(scope="module")
def iddpm_fp32():
    return _iddpm()


def test_ddgan_channels_last_gives_the_nchw_samples(ddgan_fp32):
    # Every batch: the chain stays NCHW, so its draws come in the same order (a channels_last x_t would not).
    assert_close(_ddgan(memory_format="channels_last"), ddgan_fp32)


def test_iddpm_channels_last_gives_the_nchw_samples(iddpm_fp32):
    # One UNet call in NHWC is the NCHW call within the table (measured 3.8e-6); the chain's first step turns eps
    # into pred_xstart = (x - sqrt(1 - a) eps) / sqrt(a), a = alpha_bar at t = T-1, so that difference reaches the
    # samples multiplied by up to 1 / sqrt(a) (12.8 for this schedule; measured 9.2e-6 at 0.31): the table's fp32
    # tolerance times that factor.
    factor = float(1 / np.sqrt(tiny_diffusion(4).alphas_cumprod[-1]))
    tolerance = {name: value * factor for name, value in TOLERANCES[torch.float32].items()}
    assert_close(_iddpm(memory_format="channels_last"), iddpm_fp32, **tolerance)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_ddgan_autocast_is_close_to_fp32(ddgan_fp32, dtype):
    samples = _ddgan(precision=dtype)
    assert samples.dtype == torch.float32  # the chain stays fp32
    assert (samples - ddgan_fp32).abs().max() <= DDGAN_AUTOCAST_MAX[dtype]


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_iddpm_autocast_is_close_to_fp32(iddpm_fp32, dtype):
    samples = _iddpm(precision=dtype)
    assert samples.dtype == torch.float32
    assert (samples - iddpm_fp32).abs().mean() <= IDDPM_AUTOCAST_MEAN[dtype]


@pytest.mark.parametrize("num_samples, batch_size, extra, steady", [(7, 2, False, 2), (3, 3, True, 1), (5, 3, True, 1)],
                         ids=["steady-batches", "one-batch", "batch-and-remainder"])
def test_timing_leaves_the_samples_and_the_stream(num_samples, batch_size, extra, steady):
    torch.manual_seed(0)
    generator = ToyGenerator(ToyConfig(hidden=16, num_layers=1, t_emb_dim=4, nz=2))
    args = (generator, DIFFUSION, 2, num_samples, batch_size, (2,), 7)
    untimed = generate(*args)
    after_untimed = torch.randn(4)
    timer = SampleTimer("cpu")
    assert torch.equal(generate(*args, timer=timer), untimed)
    assert torch.equal(torch.randn(4), after_untimed)  # an extra timing batch restored the global generator
    sizes = [images for images, _ in timer.batches]
    real = [min(batch_size, num_samples - start) for start in range(0, num_samples, batch_size)]
    assert sizes == real + ([batch_size] if extra else [])
    summary = timer.summary(ExecutionOptions())
    assert (summary["timing_batch_extra"], summary["steady_batches"]) == (extra, steady)
    assert summary["images_per_s"] > 0 and summary["batch_latency_ms"] > 0


def test_iddpm_timing_leaves_the_images_and_the_generator():
    model, diffusion = tiny_unet().eval(), tiny_diffusion(steps=2)
    untimed_gen, timed_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    untimed = generate_samples(diffusion, model, 2, 2, 8, generator=untimed_gen)[0]
    timer = SampleTimer("cpu")
    timed = generate_samples(diffusion, model, 2, 2, 8, generator=timed_gen, timer=timer)[0]
    assert np.array_equal(timed, untimed) and timer.extra_batch
    assert torch.equal(timed_gen.get_state(), untimed_gen.get_state())


def test_summary_figures_are_the_steady_state():
    timer = SampleTimer("cpu", batches=[(4, 2.0), (4, 0.1), (4, 0.3), (1, 5.0)])
    summary = timer.summary(ExecutionOptions(sampler="compiled", precision="bf16", memory_format="channels_last"))
    assert summary == {
        "mode": "compiled", "dtype": "bf16", "channels_last": True, "device": "cpu", "batch_size": 4,
        "images_per_s": pytest.approx(20.0), "batch_latency_ms": pytest.approx(200.0), "steady_batches": 2,
        "warmup_s": 2.0, "sampling_s": pytest.approx(7.4), "timing_batch_extra": False}
    line = timing_line(summary)
    assert line.startswith("sampling (compiled bf16 channels_last on cpu): 20.0 images/s, 200 ms per batch of 4")
    assert line.endswith("warm-up (first batch, compile included) 2 s")


def test_preserved_rng_restores_the_global_and_a_given_generator():
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    with preserved_rng(torch.device("cpu"), generator):
        torch.randn(10)
        torch.randn(10, generator=generator)
    after = torch.randn(3)
    torch.manual_seed(2)
    assert torch.equal(after, torch.randn(3))
    assert torch.equal(torch.randn(3, generator=generator), torch.randn(3, generator=torch.Generator().manual_seed(1)))
