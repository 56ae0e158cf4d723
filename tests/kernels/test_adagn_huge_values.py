"""AdaGN of huge fp32 values (|x| from 1e18 to fp32's max): the kernels and the reference give the right answer.

fp32 squares overflow from |x| ~ 1.8e19 and torch's fp32 group norm returns rstd 0 (a finite, wrong
output) or NaN; both kernels.adagn and kernels.reference.adagn compute such groups from x / 2^k (see
kernels/adagn.py). Checked against an fp64 group norm, on every path (FUSED, LOOPED, SPLIT).
"""

import importlib

import pytest
import torch

import kernels
from kernels import reference
from kernels._adagn_plan import Path, Tuning
from tests.tolerances import assert_close

plan_module = importlib.import_module("kernels._adagn_plan")
MAGNITUDES = [1e18, 1e20, 1e30, 3e38]


@pytest.fixture(params=[Path.FUSED, Path.LOOPED, Path.SPLIT], ids=lambda p: p.value)
def path(request, monkeypatch):
    if request.param is not Path.FUSED:
        programs = 1 if request.param is Path.LOOPED else 12  # SPLIT: the device wants 3 programs per group
        tuning = Tuning(fused_max_elems=8, chunk_tile_elems=8, chunk_max_block_c=2, programs_per_sm=1,
                        interpreter_programs=programs)
        monkeypatch.setattr(plan_module, "TUNING", tuning)
        monkeypatch.setattr(plan_module, "_cuda_sm_count", lambda index: programs)
    return request.param


def _huge(shape, magnitude, device, seed=0):
    """Uniform in (-magnitude, magnitude), one tiny channel so a group spans many orders of magnitude."""
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * magnitude
    x[:, 1] *= 1e-12
    return x.float().to(device)


def _fp64_adagn(x, gamma, beta, groups, silu):
    y = torch.group_norm(x.double(), groups, None, None, 1e-6) * gamma.double()[:, :, None, None]
    y = y + beta.double()[:, :, None, None]
    return torch.nn.functional.silu(y) if silu else y


@pytest.mark.parametrize("magnitude", MAGNITUDES, ids=lambda m: f"{m:g}")
@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
def test_forward_is_right_on_every_path(device, path, magnitude, silu):
    x = _huge((2, 8, 3, 3), magnitude, device)
    gamma, beta = torch.randn(2, 8, device=device), torch.randn(2, 8, device=device)
    assert plan_module.plan_for(x, 2).path is path
    expected = _fp64_adagn(x, gamma, beta, 2, silu)
    y = kernels.adagn(x, gamma, beta, 2, silu=silu)
    assert torch.isfinite(y).all()
    assert_close(y, expected, dtype=torch.float32)


@pytest.mark.parametrize("magnitude", MAGNITUDES, ids=lambda m: f"{m:g}")
def test_reference_is_right_too(magnitude):
    x = _huge((2, 8, 3, 3), magnitude, "cpu")
    gamma, beta = torch.randn(2, 8), torch.randn(2, 8)
    assert_close(reference.adagn(x, gamma, beta, 2, silu=True), _fp64_adagn(x, gamma, beta, 2, True),
                 dtype=torch.float32)


def test_reference_only_rescues_the_groups_that_overflowed():
    x = torch.randn(2, 8, 4, 4)
    x[1, :4] *= 1e20  # group 0 of sample 1
    expected = torch.group_norm(x, 2, None, None, 1e-6)
    y = reference.adagn(x, None, None, 2)
    assert torch.equal(y[0], expected[0]) and torch.equal(y[1, 4:], expected[1, 4:])
    assert_close(y[1, :4], torch.group_norm(x.double(), 2, None, None, 1e-6)[1, :4], dtype=torch.float32)


@pytest.mark.parametrize("magnitude", [1e20, 1e30], ids=lambda m: f"{m:g}")
def test_gradients_are_right_on_every_path(device, path, magnitude):
    x = _huge((2, 8, 3, 3), magnitude, device, seed=1)
    gamma, beta = torch.randn(2, 8, device=device), torch.randn(8, device=device)
    leaves = [t.clone().requires_grad_(True) for t in (x, gamma, beta)]
    y = kernels.adagn(*leaves, 2, silu=True)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, leaves, dy)
    ref_leaves = [t.double().requires_grad_(True) for t in (x, gamma, beta)]
    ref = torch.nn.functional.silu(torch.group_norm(ref_leaves[0], 2, None, None, 1e-6) * ref_leaves[1][:, :, None, None]
                                   + ref_leaves[2][:, None, None])
    ref_grads = torch.autograd.grad(ref, ref_leaves, dy.double())
    # dx is of the order of 1 / magnitude: compared scaled, else the absolute tolerance would hide any error
    assert_close(grads[0] * magnitude, ref_grads[0] * magnitude, dtype=torch.float32)
    for grad, ref_grad in zip(grads[1:], ref_grads[1:]):
        assert_close(grad, ref_grad, dtype=torch.float32)


def test_a_constant_huge_group_normalises_to_beta(device, path):
    x = torch.full((1, 8, 3, 3), 3e38, device=device)
    beta = torch.randn(8, device=device)
    y = kernels.adagn(x, None, beta, 2)
    assert torch.equal(y, beta[None, :, None, None].expand_as(y))


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_input_stays_loud(device, path, bad):
    x = torch.randn(1, 8, 3, 3, device=device)
    x[0, 5, 1, 1] = bad
    y = kernels.adagn(x, None, None, 2)
    assert torch.isnan(y[0, 4:]).all() and torch.isfinite(y[0, :4]).all()
    assert torch.isnan(reference.adagn(x.cpu(), None, None, 2)[0, 4:]).all()
