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


class _Recorder:
    """Stands in for kernels / kernels.reference: records which namespace sample_posterior called."""

    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def sample_posterior(self, x_0, *rest):
        self.calls.append(self.name)
        return x_0


def test_ddgan_functions_route_by_their_coefficients_and_an_explicit_bool_wins(monkeypatch):
    calls = []
    monkeypatch.setattr(ddgan, "kernel_ops", lambda fused: _Recorder("fused" if fused else "eager", calls))
    coeff = ddgan.PosteriorCoefficients(ddgan.DDGANDiffusionConfig(num_timesteps=2))
    coeff.ops = lambda: _Recorder("coeff", calls)
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.int64)
    ddgan.sample_posterior(coeff, x, x, t)
    ddgan.sample_posterior(coeff, x, x, t, fused=False)
    ddgan.sample_posterior(coeff, x, x, t, fused=True)
    assert calls == ["coeff", "eager", "fused"]


def test_prepare_model_applies_the_execution_options():
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), GroupNorm(2, 4))
    execution = ExecutionOptions(fused=False, memory_format=MemoryFormat.CHANNELS_LAST)
    assert prepare_model(model, execution) is model
    assert not model[1].fused
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
