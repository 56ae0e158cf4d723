"""The Triton launchers registered as torch.library custom ops (kernels/_library.py).

`torch.library.opcheck` runs each op through Triton's interpreter on tiny inputs (tests/conftest.py):
    test_schema                the schema matches what the launcher does (no mutation, no aliasing)
    test_faketensor            the fake implementation gives the real outputs' shapes, dtypes and strides
    test_aot_dispatch_dynamic  AOTAutograd traces the op with dynamic shapes and reproduces its outputs
test_autograd_registration does not apply: the launchers deliberately carry no autograd formula (each op
file's torch.autograd.Function differentiates them, checked below under torch.compile), and that test
only asks whether an op with grad-requiring inputs has an autograd kernel registered.
"""

import sys

import pytest
import torch

import kernels
from tests.tolerances import assert_close

OPCHECK_UTILS = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
NUM_STEPS = 5


def _module(name):
    # kernels/__init__ rebinds kernels.<op> to the public function, so reach the files through sys.modules.
    return sys.modules[f"kernels.{name}"]


def _images(*shape, count=1, dtype=torch.float32):
    return [torch.randn(shape).to(dtype) for _ in range(count)]


def _tables(count, length=NUM_STEPS):
    return [torch.rand(length) + 0.1 for _ in range(count)]


def _t(batch):
    return torch.arange(batch) % NUM_STEPS


def _fir():
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    return k / k.sum()


def _q_sample_cases():
    m = _module("q_sample")
    x, noise, grad = _images(2, 3, 4, 5, count=3)
    coef_start, coef_noise = _tables(2)
    t = _t(2)
    yield "q_sample_fwd", m.q_sample_fwd, (x, t, noise, coef_start, coef_noise)
    yield "q_sample_bwd", m.q_sample_bwd, (grad, t, coef_start, coef_noise, torch.float32, torch.bfloat16, True, True)
    yield "q_sample_bwd-noise_only", m.q_sample_bwd, (grad, t, coef_start, coef_noise, torch.float32, torch.float32, False, True)


def _q_sample_pairs_cases():
    m = _module("q_sample_pairs")
    x, noise, noise_next, grad = _images(3, 2, 3, 3, count=4)
    tables = _tables(4, NUM_STEPS + 1)
    t = _t(3)
    dtypes = [torch.float32, torch.float16, torch.float32]
    yield "q_sample_pairs_fwd", m.q_sample_pairs_fwd, (x, t, noise, noise_next, *tables)
    yield "q_sample_pairs_bwd", m.q_sample_pairs_bwd, (grad, grad * 2, t, tables, *dtypes, [True, True, True])
    yield "q_sample_pairs_bwd-one_grad", m.q_sample_pairs_bwd, (None, grad, t, tables, *dtypes, [True, False, True])


def _sample_posterior_cases():
    m = _module("sample_posterior")
    x_0, x_t, noise, grad = _images(2, 3, 4, 4, count=4)
    tables = _tables(3)
    t = torch.tensor([0, 3])
    yield "sample_posterior_fwd", m.sample_posterior_fwd, (x_0, x_t, t, noise, *tables)
    dtypes = (torch.float32, torch.bfloat16, torch.float32)
    yield "sample_posterior_bwd", m.sample_posterior_bwd, (grad, t, tables, *dtypes, [True, False, True])


def _p_mean_variance_cases():
    m = _module("p_mean_variance")
    (model_output,) = _images(2, 6, 3, 3)
    x, *grads = _images(2, 3, 3, 3, count=5)
    tables = _tables(6)
    t = torch.tensor([0, 4])
    yield "p_mean_variance_fwd", m.p_mean_variance_fwd, (model_output, x, t, tables, True)
    yield "p_mean_variance_bwd", m.p_mean_variance_bwd, (model_output, x, t, tables, True, grads, True)
    partial = [grads[0], None, grads[2], None]
    yield "p_mean_variance_bwd-partial", m.p_mean_variance_bwd, (model_output, x, t, tables, False, partial, False)


def _vb_terms_cases():
    m = _module("vb_terms")
    x_start = torch.randint(0, 256, (2, 3, 4, 4)).float() / 127.5 - 1
    x_t, mean, log_variance = _images(2, 3, 4, 4, count=3)
    tables = _tables(3)
    t = torch.tensor([0, 2])
    yield "vb_terms_bpd_fwd", m.vb_terms_bpd_fwd, (x_start, x_t, t, mean, log_variance, tables)
    grad = torch.randn(2)
    yield "vb_terms_bpd_bwd", m.vb_terms_bpd_bwd, (grad, x_start, x_t, t, mean, log_variance, tables, [False, False, True, True])


def _upfirdn2d_cases():
    m = _module("upfirdn2d")
    (x,) = _images(1, 2, 5, 6)
    yield "upfirdn2d_fwd-up2", m.upfirdn2d_fwd, (x, _fir() * 4, 2, 2, 1, 1, 2, 1, 2, 1)
    yield "upfirdn2d_fwd-down2", m.upfirdn2d_fwd, (x, _fir(), 1, 1, 2, 2, 1, 1, 1, 1)
    yield "upfirdn2d_fwd-generic", m.upfirdn2d_fwd, (x, _fir()[:3, :2], 1, 2, 2, 1, 1, 0, -1, 2)


def _adagn_cases():
    m = _module("adagn")
    x, dy = _images(2, 8, 3, 5, count=2)
    # gamma, beta as the strided (N, C) halves of one Linear output, as AdaptiveGroupNorm passes them.
    gamma, beta = torch.randn(2, 16).chunk(2, dim=1)
    yield "adagn_fwd", m.adagn_fwd, (x, gamma, beta, 2, 1e-6, True)
    yield "adagn_fwd-channel_affine", m.adagn_fwd, (x, torch.rand(8), None, 4, 1e-6, False)
    _, mean, rstd = m.adagn_fwd(x, gamma, beta, 2, 1e-6, True)
    yield "adagn_bwd", m.adagn_bwd, (dy, x, gamma, beta, mean, rstd, 2, True, True)
    yield "adagn_bwd-no_dx", m.adagn_bwd, (dy, x, gamma.contiguous(), None, mean, rstd, 2, False, False)


CASES = [
    case
    for cases in (_adagn_cases, _q_sample_cases, _q_sample_pairs_cases, _sample_posterior_cases,
                  _p_mean_variance_cases, _vb_terms_cases, _upfirdn2d_cases)
    for case in cases()
]


@pytest.mark.parametrize("op,args", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_opcheck(op, args):
    results = torch.library.opcheck(op, args, test_utils=OPCHECK_UTILS)
    assert set(results) == set(OPCHECK_UTILS) and all(v == "SUCCESS" for v in results.values()), results


def test_ops_live_in_the_ddx_namespace():
    names = ("adagn_fwd", "adagn_bwd", "q_sample_fwd", "q_sample_bwd", "q_sample_pairs_fwd", "q_sample_pairs_bwd",
             "sample_posterior_fwd", "sample_posterior_bwd", "p_mean_variance_fwd", "p_mean_variance_bwd",
             "vb_terms_bpd_fwd", "vb_terms_bpd_bwd", "upfirdn2d_fwd")
    for name in names:
        assert hasattr(torch.ops.ddx, name), name


def _grads_of(fn, inputs, compile_backend=None):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    if compile_backend is not None:
        fn = torch.compile(fn, backend=compile_backend, fullgraph=True)
    out = fn(*leaves)
    grads = torch.autograd.grad(out.square().sum(), leaves)
    return out.detach(), grads


def _posterior_then_fir(x_0, x_t, noise):
    tables = [torch.linspace(0.2, 0.9, NUM_STEPS), torch.linspace(0.9, 0.3, NUM_STEPS), torch.linspace(-3.0, -1.0, NUM_STEPS)]
    x = kernels.sample_posterior(x_0, x_t, torch.tensor([0, 4]), noise, *tables)
    return kernels.upfirdn2d(x, _fir() * 4, up=2, pad=(2, 1))


def test_autograd_functions_trace_whole_under_compile():
    """fullgraph=True: the autograd.Functions around the custom ops trace without graph breaks, and the
    compiled forward and backward (aot_eager: the traced graphs, run op by op) equal eager autograd."""
    inputs = _images(2, 2, 4, 4, count=3)
    out, grads = _grads_of(_posterior_then_fir, inputs)
    out_c, grads_c = _grads_of(_posterior_then_fir, inputs, compile_backend="aot_eager")
    assert_close(out_c, out)
    for g_c, g in zip(grads_c, grads):
        assert_close(g_c, g)


def test_upfirdn2d_double_backward_through_the_ops():
    """R1 differentiates the discriminator's input gradient: the second derivative of a quadratic in
    upfirdn2d's output is the op applied twice, so grad-of-grad is linear in x; check it against the reference."""

    def second(op, x):
        x = x.detach().clone().requires_grad_()
        out = op(x, _fir(), down=2, pad=(1, 1))
        (g,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), x)
        return gg

    (x,) = _images(1, 2, 6, 6)
    assert_close(second(kernels.upfirdn2d, x), second(kernels.reference.upfirdn2d, x))
