"""ddx.ops: the one fused-or-eager switch, on modules, diffusion objects and DDGAN's coefficient tables."""

import pytest
import torch

import kernels
from kernels import reference

from ddx.diffusion import ddgan
from ddx.diffusion.config import DiffusionConfig
from ddx.execution import ExecutionOptions, MemoryFormat
from ddx.nn.norm import GroupNorm
from ddx.ops import FusedOp, kernel_ops, prepare_model, set_fused
from tests.tolerances import DIFFUSION


def test_fused_op_routes_by_its_attribute():
    op = FusedOp()
    assert op.fused and op.ops() is kernels
    assert set_fused(op, False) is op and op.ops() is reference
    assert kernel_ops(True) is kernels and kernel_ops(False) is reference


def test_set_fused_reaches_every_fused_module_of_a_model():
    model = torch.nn.Sequential(GroupNorm(2, 4), torch.nn.Sequential(torch.nn.ReLU(), GroupNorm(2, 4)))
    assert set_fused(model, False) is model
    assert [m.fused for m in model.modules() if isinstance(m, FusedOp)] == [False, False]
    set_fused(model, True)
    assert all(m.ops() is kernels for m in model.modules() if isinstance(m, FusedOp))


@pytest.mark.parametrize("target, enabled, error", [(object(), True, "FusedOp or a torch.nn.Module"),
                                                     (FusedOp(), "no", "needs a bool")])
def test_set_fused_refuses_what_it_cannot_route(target, enabled, error):
    with pytest.raises(TypeError, match=error):
        set_fused(target, enabled)


def test_diffusion_objects_are_fused_ops():
    diffusion = DiffusionConfig().build()
    assert isinstance(diffusion, FusedOp) and diffusion.ops() is kernels
    assert set_fused(diffusion, False).ops() is reference
    config = ddgan.DDGANDiffusionConfig(num_timesteps=2)
    for table in (ddgan.DiffusionCoefficients(config), ddgan.PosteriorCoefficients(config)):
        assert table.fused and set_fused(table, False).ops() is reference
    assert not ddgan.PosteriorCoefficients(config, fused=False).fused


def test_ddgan_functions_route_by_their_coefficient_objects(monkeypatch):
    """q_sample, q_sample_pairs, sample_posterior and sample_from_model call the namespace coeff.ops() names."""
    calls = []

    class Recorder:
        def __getattr__(self, name):
            def op(first, *rest):
                calls.append(name)
                return (first, first) if name == "q_sample_pairs" else first
            return op

    config = ddgan.DDGANDiffusionConfig(num_timesteps=2)
    forward, posterior = ddgan.DiffusionCoefficients(config), ddgan.PosteriorCoefficients(config)
    for table in (forward, posterior):
        monkeypatch.setattr(table, "ops", Recorder)
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.int64)
    ddgan.q_sample(forward, x, t)
    ddgan.q_sample_pairs(forward, x, t)
    ddgan.sample_posterior(posterior, x, x, t)
    ddgan.sample_from_model(posterior, lambda x, t, z: x, 2, x, nz=3)
    assert calls == ["q_sample", "q_sample_pairs", "sample_posterior", "sample_posterior", "sample_posterior"]


def test_set_fused_on_the_coefficients_switches_the_path():
    config = ddgan.DDGANDiffusionConfig(num_timesteps=2)
    x, t, noise = torch.randn(2, 1, 4, 4), torch.tensor([0, 1]), torch.randn(2, 1, 4, 4)
    coeff = ddgan.PosteriorCoefficients(config)
    fused = ddgan.sample_posterior(coeff, x, x, t, noise=noise)
    eager = ddgan.sample_posterior(set_fused(coeff, False), x, x, t, noise=noise)
    torch.testing.assert_close(fused, eager, **DIFFUSION)


def test_prepare_model_applies_the_execution_options():
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), GroupNorm(2, 4))
    execution = ExecutionOptions(fused=False, memory_format=MemoryFormat.CHANNELS_LAST)
    assert prepare_model(model, execution) is model
    assert not model[1].fused
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
