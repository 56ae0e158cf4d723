"""ddx.sample.fast: the DDGAN and IDDPM samplers in EAGER and COMPILED modes on the CPU.

Backends: the toy MLP generator compiles with Inductor (the real backend: C++ kernels through gcc);
the tiny NCSN++ generator and the IDDPM test model compile with aot_eager, because Inductor on the
CPU takes about 100 s for NCSN++ here (2 shared cores), and fullgraph=True under aot_eager already
shows what is tested: Dynamo traces the whole network, Triton custom ops included, as one graph.
The Triton kernels run through the interpreter (tests/conftest.py). GRAPHS needs CUDA (checked to
raise here; its replays are exercised by bench/e2e on a GPU).
"""

import pytest
import torch
import torch._dynamo.testing
from torch import nn

from ddx import profiling
from ddx.diffusion import DiffusionConfig, sampling
from ddx.diffusion.ddgan import DDGANDiffusionConfig, PosteriorCoefficients, sample_from_model
from ddx.execution import ExecutionOptions
from ddx.models.ncsnpp import NCSNpp, NCSNppConfig
from ddx.models.toy import ToyConfig, ToyGenerator
from ddx.ops import set_fused
from ddx.sample.fast import FastDDGANSampler, FastIDDPMSampler, IDDPMLoop, Precision, SamplerMode
from tests.nvtx_recording import record_ranges
from tests.tolerances import assert_close

TOY_NZ = 2


def _coeff(steps):
    return PosteriorCoefficients(DDGANDiffusionConfig(num_timesteps=steps))


@pytest.fixture(scope="module")
def toy_generator():
    torch.manual_seed(0)
    return ToyGenerator(ToyConfig(hidden=32, num_layers=2, t_emb_dim=8, nz=TOY_NZ)).eval()


def _official_chain(coeff, generator, steps, batch, shape, nz, seed):
    torch.manual_seed(seed)
    return sample_from_model(coeff, generator, steps, torch.randn(batch, *shape), nz)


@pytest.mark.parametrize("batch", [1, 5], ids=["batch1", "batch5"])
def test_eager_sampler_replays_the_official_chain(toy_generator, batch):
    coeff = _coeff(4)
    sampler = FastDDGANSampler(toy_generator, coeff, TOY_NZ, 4)
    expected = _official_chain(coeff, toy_generator, 4, batch, (2,), TOY_NZ, seed=3)
    assert torch.equal(sampler(batch, seed=3), expected)


def test_inductor_sampler_matches_eager_and_does_not_recompile(toy_generator):
    coeff = _coeff(4)
    counter = torch._dynamo.testing.CompileCounterWithBackend("inductor")
    compiled = FastDDGANSampler(toy_generator, coeff, TOY_NZ, 4, mode=SamplerMode.COMPILED, compile_backend=counter)
    eager = FastDDGANSampler(toy_generator, coeff, TOY_NZ, 4)
    first = compiled(7, seed=11)
    assert_close(first, eager(7, seed=11))
    with torch._dynamo.config.patch(error_on_recompile=True):
        other = compiled(7, seed=12)
        again = compiled(7, seed=11)
    assert counter.frame_count == 1
    assert not torch.equal(other, first)
    assert torch.equal(again, first)


@pytest.fixture(scope="module")
def ncsnpp_run():
    """A tiny NCSN++ sampled for 2 steps eager and compiled (aot_eager, fullgraph) with the same seed.

    The second step must not recompile (t changes value, not shape), hence error_on_recompile."""
    torch.manual_seed(0)
    config = NCSNppConfig(image_size=8, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                          nz=4, z_emb_dim=8, n_mlp=1)
    generator = NCSNpp(config).eval()
    coeff = _coeff(2)
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = FastDDGANSampler(generator, coeff, 4, 2, mode="compiled", compile_backend=counter)
    eager = FastDDGANSampler(generator, coeff, 4, 2, mode="eager")
    with torch._dynamo.config.patch(error_on_recompile=True):
        run = {"eager": eager(2, seed=5), "compiled": compiled(2, seed=5), "frames": counter.frame_count}
    run["graph_ops"] = [n.target for g in counter.graphs for n in g.graph.nodes if n.op == "call_function"]
    return run


def test_ncsnpp_compiles_as_one_graph_with_the_custom_ops(ncsnpp_run):
    # fullgraph=True would have raised on any graph break; one frame, never recompiled, serves both steps.
    assert ncsnpp_run["frames"] == 1
    ops = set(map(str, ncsnpp_run["graph_ops"]))
    assert {"ddx.adagn_fwd.default", "ddx.upfirdn2d_fwd.default"} <= ops, sorted(ops)


def test_compiled_ncsnpp_sampler_gives_the_eager_images(ncsnpp_run):
    assert ncsnpp_run["compiled"].shape == (2, 3, 8, 8)
    assert_close(ncsnpp_run["compiled"], ncsnpp_run["eager"])


def test_nvtx_ranges_in_documented_order(toy_generator):
    sampler = FastDDGANSampler(toy_generator, _coeff(3), TOY_NZ, 3)
    profiling.enable(True)
    try:
        with record_ranges() as names:
            sampler(2, seed=0)
    finally:
        profiling.enable(False)
    # The chain's loop and its step / posterior ranges are sample_from_model's; the sampler ranges the network
    # call it hands in.
    assert names == [name for i in (2, 1, 0) for name in (f"sample/step_{i}", "sample/generator", "sample/posterior")]


def test_eager_sampler_follows_the_coefficients_routing(toy_generator):
    # The fused switch travels by the coefficient object (ddx.ops.set_fused), not by a sampler argument.
    coeff = set_fused(_coeff(3), False)
    expected = _official_chain(coeff, toy_generator, 3, 4, (2,), TOY_NZ, seed=2)
    assert torch.equal(FastDDGANSampler(toy_generator, coeff, TOY_NZ, 3)(4, seed=2), expected)
    with pytest.raises(TypeError, match="fused"):
        FastDDGANSampler(toy_generator, coeff, TOY_NZ, 3, fused=False)


def test_from_execution_takes_mode_precision_and_memory_format(toy_generator, iddpm):
    execution = ExecutionOptions(sampler="compiled", precision="bf16", memory_format="channels_last")
    sampler = FastDDGANSampler.from_execution(toy_generator, _coeff(2), TOY_NZ, 2, execution, compile_backend="eager")
    assert (sampler.mode, sampler.precision, sampler.network.channels_last) == (
        SamplerMode.COMPILED, Precision.BF16, True)
    iddpm_sampler = FastIDDPMSampler.from_execution(*iddpm, (3, 4, 4), ExecutionOptions(precision="fp16"), loop="ddim")
    assert (iddpm_sampler.mode, iddpm_sampler.precision, iddpm_sampler.loop) == (
        SamplerMode.EAGER, Precision.FP16, IDDPMLoop.DDIM)
    with pytest.raises(TypeError, match="execution must be a ddx.execution.ExecutionOptions"):
        FastDDGANSampler.from_execution(toy_generator, _coeff(2), TOY_NZ, 2, {"sampler": "eager"})


def test_no_ranges_when_profiling_is_off(toy_generator):
    with record_ranges() as names:
        FastDDGANSampler(toy_generator, _coeff(2), TOY_NZ, 2)(2, seed=0)
    assert names == []


def test_graphs_mode_needs_cuda(toy_generator):
    # The generator is on the CPU, so this holds on a GPU machine too.
    with pytest.raises(ValueError, match="GRAPHS needs a CUDA device"):
        FastDDGANSampler(toy_generator, _coeff(2), TOY_NZ, 2, mode=SamplerMode.GRAPHS)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(mode="fastest"), ValueError, "unknown mode 'fastest'; expected one of 'eager', 'compiled', 'graphs'"),
        (dict(dtype="fp8"), ValueError, "unknown dtype 'fp8'; expected one of 'fp32', 'bf16', 'fp16'"),
        (dict(num_timesteps=3), ValueError, "tables for 2 steps but num_timesteps is 3"),
        (dict(nz=0), ValueError, "nz must be a positive int"),
        (dict(coeff="tables"), TypeError, "PosteriorCoefficients"),
        (dict(coeff=PosteriorCoefficients(DDGANDiffusionConfig(num_timesteps=2), "meta")), ValueError,
         "coeff's tables are on meta but the generator is on cpu"),
    ],
    ids=["mode", "dtype", "steps", "nz", "coeff", "coeff_device"],
)
def test_bad_arguments_are_named(toy_generator, kwargs, error, match):
    arguments = dict(generator=toy_generator, coeff=_coeff(2), nz=TOY_NZ, num_timesteps=2)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        FastDDGANSampler(**arguments)


@pytest.mark.parametrize("batch, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError)],
                         ids=["zero", "negative", "float"])
def test_bad_batch_size(toy_generator, batch, error):
    with pytest.raises(error, match="batch_size must be a positive int"):
        FastDDGANSampler(toy_generator, _coeff(2), TOY_NZ, 2)(batch)


def test_bf16_autocast_keeps_the_chain_in_fp32(toy_generator):
    sampler = FastDDGANSampler(toy_generator, _coeff(2), TOY_NZ, 2, dtype=Precision.BF16)
    out = sampler(3, seed=1)
    reference = FastDDGANSampler(toy_generator, _coeff(2), TOY_NZ, 2)(3, seed=1)
    assert out.dtype == torch.float32
    assert_close(out, reference, dtype=torch.bfloat16)


class _EpsModel(nn.Module):
    """A stand-in for the UNet: (N, C, H, W), t -> (N, 2C, H, W) = [eps, v], v in [-1, 1]."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, padding=1)

    def forward(self, x, t):
        h = self.conv(x) + 1e-3 * t.float().view(-1, 1, 1, 1)
        eps, v = h.chunk(2, dim=1)
        return torch.cat([eps, torch.tanh(v)], dim=1)


@pytest.fixture(scope="module")
def iddpm():
    torch.manual_seed(0)
    config = DiffusionConfig(steps=40, learn_sigma=True, noise_schedule="cosine", rescale_timesteps=True,
                             timestep_respacing="5")
    return _EpsModel(3).eval(), config.build()


@pytest.mark.parametrize("loop", list(IDDPMLoop), ids=[loop.value for loop in IDDPMLoop])
def test_iddpm_eager_sampler_replays_the_official_loop(iddpm, loop):
    model, diffusion = iddpm
    shape = (2, 3, 4, 4)
    torch.manual_seed(9)
    official = sampling.ddim_sample_loop if loop is IDDPMLoop.DDIM else sampling.p_sample_loop
    expected = official(diffusion, model, shape)
    sampler = FastIDDPMSampler(model, diffusion, shape[1:], loop=loop)
    assert torch.equal(sampler(2, seed=9), expected)


class _LabelledEpsModel(_EpsModel):
    """_EpsModel with class labels y (N,) added as a per-class offset, as a class-conditional UNet takes them."""

    def forward(self, x, t, y):
        return super().forward(x + 0.1 * y.float().view(-1, 1, 1, 1), t)


@pytest.mark.parametrize("loop", list(IDDPMLoop), ids=[loop.value for loop in IDDPMLoop])
def test_iddpm_sampler_with_labels_and_a_generator_replays_the_official_loop(iddpm, loop):
    _, diffusion = iddpm
    torch.manual_seed(0)
    model, labels = _LabelledEpsModel(3).eval(), torch.tensor([1, 7])
    official = sampling.ddim_sample_loop if loop is IDDPMLoop.DDIM else sampling.p_sample_loop
    expected = official(diffusion, model, (2, 3, 4, 4), model_kwargs={"y": labels},
                        generator=torch.Generator().manual_seed(6))
    sampler = FastIDDPMSampler(model, diffusion, (3, 4, 4), loop=loop)
    out = sampler(2, model_kwargs={"y": labels}, generator=torch.Generator().manual_seed(6))
    assert torch.equal(out, expected)


def test_iddpm_compiled_sampler_matches_eager(iddpm):
    model, diffusion = iddpm
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = FastIDDPMSampler(model, diffusion, (3, 4, 4), mode=SamplerMode.COMPILED, compile_backend=counter)
    eager = FastIDDPMSampler(model, diffusion, (3, 4, 4))
    assert_close(compiled(3, seed=4), eager(3, seed=4))
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled(3, seed=5)
    assert counter.frame_count == 1


def test_iddpm_eta_needs_ddim(iddpm):
    model, diffusion = iddpm
    with pytest.raises(ValueError, match="eta applies to the DDIM loop only"):
        FastIDDPMSampler(model, diffusion, (3, 4, 4), loop=IDDPMLoop.P_SAMPLE, eta=0.5)
