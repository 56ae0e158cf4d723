"""kernels.adagn against kernels.reference.adagn: output and every gradient, every path, bad input.

Runs the Triton kernels on the `device` fixture (tests/conftest.py: the CPU through TRITON_INTERPRET=1,
or a CUDA GPU), on small shapes. The LOOPED and SPLIT paths are driven on tiny shapes by swapping in a
small `Tuning`.
"""

import importlib

import pytest
import torch

import kernels
import kernels._checks
from kernels import reference
from kernels._adagn_plan import Path, Tuning, make_plan
from tests.tolerances import assert_close

# kernels/__init__ exports the function as kernels.adagn, so reach the module through importlib.
adagn_module = importlib.import_module("kernels.adagn")
plan_module = importlib.import_module("kernels._adagn_plan")
adagn = kernels.adagn

# (x shape, num_groups): odd sizes, size-1 dims, 1 to 32 groups, 3-D and 5-D inputs; one channel per
# group (IDDPM's digits preset: 32 channels in GroupNorm32's 32 groups). One-element groups have their own test.
SHAPES = [
    ((1, 4, 1, 1), 2),
    ((2, 32, 4, 4), 32),
    ((2, 6, 3, 5), 3),
    ((3, 8, 7, 1), 4),
    ((2, 12, 5, 5), 4),
    ((2, 12, 5, 5), 1),
    ((2, 8, 9), 2),
    ((1, 4, 2, 3, 3), 2),
]
AFFINES = ["per-sample", "per-channel", "none"]


def _shape_id(case):
    shape, groups = case
    return "x" + "x".join(map(str, shape)) + f"-g{groups}"


def _param(kind, n, c, device, dtype=torch.float32):
    shapes = {"per-sample": (n, c), "per-channel": (c,), "none": None}
    return None if shapes[kind] is None else torch.randn(shapes[kind], dtype=dtype, device=device)


def _leaf(tensor):
    """A leaf copy with tensor's strides (clone() would make a view with gaps, such as a chunk, contiguous)."""
    if tensor is None:
        return None
    copy = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=tensor.device)
    return copy.copy_(tensor).requires_grad_(True)


def _check_against_reference(x, gamma, beta, num_groups, silu, eps=1e-6):
    """Forward and grads of x, gamma, beta (same upstream gradient) against the reference autograd."""
    leaves = [_leaf(t) for t in (x, gamma, beta)]
    ref_leaves = [_leaf(t) for t in (x, gamma, beta)]
    y = adagn(*leaves, num_groups, eps=eps, silu=silu)
    expected = reference.adagn(*ref_leaves, num_groups, eps=eps, silu=silu)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert_close(y, expected)
    dy = torch.randn_like(expected)
    inputs = [t for t in leaves if t is not None]
    ref_inputs = [t for t in ref_leaves if t is not None]
    grads = torch.autograd.grad(y, inputs, dy)
    ref_grads = torch.autograd.grad(expected, ref_inputs, dy)
    for grad, ref_grad, leaf in zip(grads, ref_grads, inputs):
        assert grad.dtype == leaf.dtype and grad.shape == leaf.shape
        # fp64 parameters of a half or fp32 x are computed in fp32 by both sides.
        assert_close(grad, ref_grad, dtype=torch.float32 if grad.dtype == torch.float64 else None)
    return y


@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
@pytest.mark.parametrize("affine", AFFINES)
@pytest.mark.parametrize("case", SHAPES, ids=_shape_id)
def test_fp32_matches_reference(device, case, affine, silu):
    shape, groups = case
    x = torch.randn(shape, device=device) * 2 + 0.5
    n, c = shape[:2]
    _check_against_reference(x, _param(affine, n, c, device), _param(affine, n, c, device), groups, silu)


@pytest.mark.parametrize("gamma_kind, beta_kind", [("per-sample", "none"), ("none", "per-channel"), ("per-channel", "per-sample")])
def test_gamma_and_beta_independent(device, gamma_kind, beta_kind):
    x = torch.randn(2, 6, 3, 5, device=device)
    _check_against_reference(x, _param(gamma_kind, 2, 6, device), _param(beta_kind, 2, 6, device), 3, silu=True)


@pytest.mark.parametrize("param_dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", [((2, 12, 5, 5), 4), ((3, 8, 7, 1), 2)], ids=_shape_id)
def test_half_precision_matches_reference(device, case, dtype, param_dtype):
    shape, groups = case
    x = (torch.randn(shape, device=device) * 2 + 0.5).to(dtype)
    n, c = shape[:2]
    gamma, beta = _param("per-sample", n, c, device, param_dtype), _param("per-channel", n, c, device, param_dtype)
    _check_against_reference(x, gamma, beta, groups, True)


def _use_small_tuning(monkeypatch, programs):
    """Tiles of 2 channels x 4 positions and groups of at most 8 elements fused, so tiny shapes loop and split.

    `programs` is the target program count on either device: the interpreter's setting on the CPU, and
    on CUDA (programs_per_sm x SM count) one program per SM on a GPU that reports `programs` SMs.
    """
    tuning = Tuning(
        fused_max_elems=8, chunk_tile_elems=8, chunk_max_block_c=2, programs_per_sm=1, interpreter_programs=programs
    )
    monkeypatch.setattr(plan_module, "TUNING", tuning)
    monkeypatch.setattr(plan_module, "_cuda_sm_count", lambda index: programs)


@pytest.mark.parametrize("path", [Path.FUSED, Path.SPLIT], ids=lambda p: p.value)
def test_large_mean_offset_keeps_fp32_accuracy(monkeypatch, device, path):
    """|mean| >> std: the kernels sum x - shift (two-pass), so the forward matches an fp64 GroupNorm.

    Checked against fp64, not the reference: at this offset PyTorch's fp32 group_norm is itself
    off by about 5e-5 (its mean is a plain fp32 sum), more than the fp32 tolerance.
    """
    if path is Path.SPLIT:
        _use_small_tuning(monkeypatch, 12)
    x = torch.randn(2, 8, 6, 6, device=device) + 1000.0
    gamma = torch.randn(2, 8, device=device)
    assert plan_module.plan_for(x, 2).path is path
    expected = torch.nn.functional.group_norm(x.double(), 2, eps=1e-6) * gamma.double()[:, :, None, None]
    assert_close(adagn(x, gamma, None, 2), expected, dtype=torch.float32)


@pytest.mark.parametrize("path", [Path.LOOPED, Path.SPLIT], ids=lambda p: p.value)
@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
@pytest.mark.parametrize("case", [((2, 6, 3, 5), 3), ((1, 8, 7, 1), 4), ((2, 8, 5, 5), 2), ((1, 4, 13), 1)], ids=_shape_id)
def test_chunked_paths_match_reference(monkeypatch, device, case, silu, path):
    shape, groups = case
    n, c = shape[:2]
    # LOOPED: the device counts as filled by one program; SPLIT: it wants three per group.
    programs = 1 if path is Path.LOOPED else 3 * n * groups
    _use_small_tuning(monkeypatch, programs)
    x = torch.randn(shape, device=device) * 2 + 0.5
    plan = plan_module.plan_for(x, groups)
    assert plan.path is path
    if path is Path.SPLIT:
        assert plan.splits > 1
    gamma_kind = "per-sample" if silu else "per-channel"
    _check_against_reference(x, _param(gamma_kind, n, c, device), _param("per-sample", n, c, device), groups, silu)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_split_path_half_precision(monkeypatch, device, dtype):
    _use_small_tuning(monkeypatch, 12)
    x = torch.randn(2, 6, 3, 5, device=device).to(dtype)
    assert plan_module.plan_for(x, 3).path is Path.SPLIT
    _check_against_reference(x, _param("per-sample", 2, 6, device), _param("per-sample", 2, 6, device), 3, silu=True)


def test_plan_heuristic_on_real_shapes():
    """The default tuning on an H100-sized GPU (132 SMs): batch 1 splits, the target case fuses."""
    tuning = Tuning()
    target = tuning.programs_per_sm * 132
    batch1 = make_plan(1, 128, 256 * 256, 32, target, tuning)
    assert batch1.path is Path.SPLIT and 32 * batch1.splits >= 1000
    assert make_plan(128, 256, 32 * 32, 32, target, tuning).path is Path.FUSED
    assert make_plan(64, 128, 4 * 4, 32, target, tuning).path is Path.FUSED
    assert make_plan(256, 64, 128 * 128, 16, target, tuning).path is Path.LOOPED


def test_channels_last_input_gives_channels_last_output(device):
    x = torch.randn(2, 8, 3, 5, device=device).to(memory_format=torch.channels_last)
    gamma, beta = _param("per-sample", 2, 8, device), _param("per-sample", 2, 8, device)
    y = _check_against_reference(x, gamma, beta, 4, silu=True)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_strided_gamma_beta_from_one_embedding(device):
    """gamma, beta = Linear(z).chunk(2, 1) are (N, C) views with row stride 2C; no copy is needed."""
    emb = torch.randn(3, 16, device=device)
    gamma, beta = emb.chunk(2, dim=1)
    assert gamma.stride() == (16, 1)
    _check_against_reference(torch.randn(3, 8, 4, 3, device=device), gamma, beta, 2, silu=True)


def test_gamma_beta_strided_over_channels(device):
    """Parameters strided over C (every other column, or every other entry of a (C,) vector) are copied first."""
    emb = torch.randn(3, 16, device=device)
    gamma, beta = emb[:, ::2], torch.randn(16, device=device)[1::2]
    assert gamma.stride() == (16, 2) and beta.stride() == (2,)
    _check_against_reference(torch.randn(3, 8, 4, 3, device=device), gamma, beta, 2, silu=True)


def test_only_some_inputs_require_grad(device):
    x = torch.randn(2, 6, 3, 5, device=device)
    gamma = _param("per-sample", 2, 6, device).requires_grad_(True)
    beta = _param("per-channel", 2, 6, device)
    y = adagn(x, gamma, beta, 3, silu=True)
    (grad,) = torch.autograd.grad(y, gamma, torch.ones_like(y))
    ref_gamma = gamma.detach().clone().requires_grad_(True)
    expected = reference.adagn(x, ref_gamma, beta, 3, silu=True)
    (ref_grad,) = torch.autograd.grad(expected, ref_gamma, torch.ones_like(expected))
    assert_close(grad, ref_grad)


def test_double_backward_raises(device):
    x = torch.randn(2, 6, 3, 5, device=device, requires_grad=True)
    gamma = torch.randn(2, 6, device=device, requires_grad=True)
    y = adagn(x, gamma, None, 3, silu=True)
    (grad_x,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_x.sum().backward()


def test_empty_batch(device):
    x = torch.randn(0, 4, 3, 3, device=device)
    assert adagn(x, None, None, 2).shape == (0, 4, 3, 3)


@pytest.mark.parametrize("silu", [False, True], ids=["plain", "silu"])
def test_one_element_groups_give_beta(device, silu):
    """GroupNorm of a single element is 0, so the output is beta (then SiLU) on the kernel and the reference,
    and the output does not depend on x or gamma: their gradients are 0 exactly. (The reference's own dx
    is rounding noise there, about rstd = eps^-1/2 = 1e3 times an ulp, so it is not the yardstick.)"""
    x = torch.randn(1, 3, 1, 1, device=device, requires_grad=True)
    gamma = torch.randn(1, 3, device=device, requires_grad=True)
    beta = torch.randn(3, device=device, requires_grad=True)
    expected = (torch.nn.functional.silu(beta) if silu else beta).reshape(1, 3, 1, 1)
    y = adagn(x, gamma, beta, 3, silu=silu)
    assert_close(y, expected)  # the kernel's SiLU is y * sigmoid(y), an ulp from F.silu
    cpu_leaves = [t.detach().cpu() for t in (x, gamma, beta)]
    assert_close(reference.adagn(*cpu_leaves, 3, silu=silu), expected.cpu())
    dy = torch.randn_like(y)
    grad_x, grad_gamma, grad_beta = torch.autograd.grad(y, [x, gamma, beta], dy)
    assert not grad_x.any() and not grad_gamma.any()
    (expected_grad_beta,) = torch.autograd.grad(expected, [beta], dy)
    assert_close(grad_beta, expected_grad_beta)


def test_float64_runs_the_reference_in_float64(monkeypatch, device):
    """float64 x goes to the reference on every device, computed in float64 (gradcheck passes)."""
    def must_not_run(*args):
        raise AssertionError("the Triton path ran on a float64 tensor")

    monkeypatch.setattr(adagn_module.AdaGNFunction, "apply", must_not_run)
    x = torch.randn(2, 6, 3, 5, device=device, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(2, 6, device=device, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(6, device=device, dtype=torch.float64, requires_grad=True)
    y = adagn(x, gamma, beta, 3, silu=True)
    assert y.dtype == torch.float64
    expected = torch.nn.functional.silu(
        torch.nn.functional.group_norm(x, 3, eps=1e-6) * gamma[:, :, None, None] + beta[:, None, None]
    )
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *args: adagn(*args, 3, silu=True), (x, gamma, beta))


def test_cpu_without_interpreter_runs_the_reference(monkeypatch):
    """CPU tensors under either --device: what a CPU tensor does when TRITON_INTERPRET is off."""
    def must_not_run(*args):
        raise AssertionError("the Triton path ran on a CPU tensor without the interpreter")

    monkeypatch.setattr(kernels._checks, "INTERPRET", False)
    monkeypatch.setattr(adagn_module.AdaGNFunction, "apply", must_not_run)
    x, gamma = torch.randn(2, 6, 3, 5), torch.randn(6)
    torch.testing.assert_close(adagn(x, gamma, None, 3, silu=True), reference.adagn(x, gamma, None, 3, silu=True), rtol=0, atol=0)


# Validation happens before dispatch, the same on every device: checked on CPU tensors under either --device.
def _bad(x_shape=(2, 4, 3, 3), gamma_shape=(2, 4), beta_shape=(4,), groups=2, eps=1e-6, x_dtype=torch.float32,
         gamma_dtype=torch.float32, gamma_device="cpu", silu=False):
    x = torch.zeros(x_shape, dtype=x_dtype)
    gamma = torch.zeros(gamma_shape, dtype=gamma_dtype, device=gamma_device)
    return lambda: adagn(x, gamma, torch.zeros(beta_shape), groups, eps=eps, silu=silu)


BAD_INPUTS = [
    ("x-rank-2", _bad(x_shape=(2, 4), gamma_shape=(4,)), ValueError, r"x must have at least 3 dimensions.*\(2, 4\)"),
    ("x-int", _bad(x_dtype=torch.int64), TypeError, "x has dtype int64"),
    ("groups-not-dividing", _bad(groups=3), ValueError, "num_groups=3 .*C=4"),
    ("groups-zero", _bad(groups=0), ValueError, "num_groups=0"),
    ("groups-float", _bad(groups=2.0), TypeError, "num_groups must be an int"),
    ("gamma-shape", _bad(gamma_shape=(3,)), ValueError, r"gamma has shape \(3,\).*\(2, 4\)"),
    ("gamma-swapped-shape", _bad(gamma_shape=(4, 2)), ValueError, r"gamma has shape \(4, 2\)"),
    ("beta-shape", _bad(beta_shape=(2, 4, 1)), ValueError, r"beta has shape \(2, 4, 1\)"),
    ("gamma-int", _bad(gamma_dtype=torch.int32), TypeError, "gamma has dtype int32"),
    ("mixed-devices", _bad(gamma_device="meta"), ValueError, "one device.*gamma on meta"),
    ("eps-zero", _bad(eps=0.0), ValueError, "eps must be a finite number > 0"),
    ("eps-negative", _bad(eps=-1e-5), ValueError, "eps must be a finite number > 0"),
    ("eps-nan", _bad(eps=float("nan")), ValueError, "eps must be a finite number > 0"),
    ("silu-string", _bad(silu="yes"), TypeError, "silu must be a bool, got str 'yes'"),
    ("silu-int", _bad(silu=1), TypeError, "silu must be a bool, got int"),
    ("x-empty-spatial", _bad(x_shape=(2, 4, 0, 3)), ValueError, r"x has shape \(2, 4, 0, 3\).*spatial dimension must be > 0"),
    ("x-empty-channels", _bad(x_shape=(2, 0, 3, 3), gamma_shape=(2, 0), beta_shape=(0,)), ValueError, "C and every spatial"),
]


@pytest.mark.parametrize("call, error, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()
