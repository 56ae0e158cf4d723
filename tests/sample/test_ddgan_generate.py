"""ddx.sample.ddgan.generate: batches through FastDDGANSampler in the execution's mode, the official draws in EAGER."""

import pytest
import torch

from ddx.diffusion.ddgan import DDGANDiffusionConfig, PosteriorCoefficients, sample_from_model
from ddx.execution import ExecutionOptions
from ddx.models.toy import ToyConfig, ToyGenerator
from ddx.ops import set_fused
from ddx.sample.ddgan import generate
from tests.tolerances import assert_close

NZ, STEPS = 2, 3
DIFFUSION = DDGANDiffusionConfig(num_timesteps=STEPS)


@pytest.fixture
def toy_generator():
    torch.manual_seed(0)
    return ToyGenerator(ToyConfig(hidden=32, num_layers=2, t_emb_dim=8, nz=NZ))


def _todays_loop(generator, num_samples, batch_size, seed, fused):
    """generate() before it ran through the fast sampler: one seed, then per batch x_init and the chain."""
    torch.manual_seed(seed)
    coeff = PosteriorCoefficients(DIFFUSION, fused=fused)
    generator.eval()
    out = []
    for start in range(0, num_samples, batch_size):
        x_init = torch.randn(min(batch_size, num_samples - start), 2)
        out.append(sample_from_model(coeff, generator, STEPS, x_init, NZ))
    generator.train()
    return torch.cat(out)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager-ops"])
def test_eager_gives_todays_samples(toy_generator, fused):
    samples = generate(toy_generator, DIFFUSION, NZ, 5, 2, (2,), seed=4, execution=ExecutionOptions(fused=fused))
    assert samples.shape == (5, 2) and samples.dtype == torch.float32
    assert torch.equal(samples, _todays_loop(set_fused(toy_generator, fused), 5, 2, 4, fused))
    assert toy_generator.training  # put back as it was


def test_compiled_on_the_cpu_gives_the_eager_samples(toy_generator):
    # Inductor on the CPU; one batch size, so one compilation.
    compiled = generate(toy_generator, DIFFUSION, NZ, 4, 2, (2,), seed=8, execution=ExecutionOptions(sampler="compiled"))
    assert_close(compiled, generate(toy_generator, DIFFUSION, NZ, 4, 2, (2,), seed=8))


def test_graphs_on_the_cpu_names_the_mode_flag(toy_generator):
    with pytest.raises(ValueError, match="GRAPHS needs a CUDA device.*use --mode compiled or --mode eager"):
        generate(toy_generator, DIFFUSION, NZ, 2, 2, (2,), seed=0, execution=ExecutionOptions(sampler="graphs"))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(execution=True), TypeError, "execution must be a ddx.execution.ExecutionOptions, got bool"),
    (dict(execution=ExecutionOptions(device="cuda")), ValueError, "move the generator there first \\(.to\\('cuda'\\)\\)"),
    (dict(num_samples=0), ValueError, "num_samples must be a positive int"),
    (dict(batch_size=1.5), TypeError, "batch_size must be a positive int"),
], ids=["execution-type", "execution-device", "count", "batch"])
def test_bad_arguments_are_named(toy_generator, kwargs, error, match):
    arguments = dict(num_samples=2, batch_size=2, seed=0)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        generate(toy_generator, DIFFUSION, NZ, shape=(2,), **arguments)
