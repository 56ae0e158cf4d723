"""Diffusion-arithmetic benchmarks: q_sample, q_sample_pairs, sample_posterior, p_mean_variance
(learned range) and vb_terms_bpd on training batches.

Providers eager (kernels.reference), compile (torch.compile of the reference) and triton (the fused
kernels) on the same inputs, forward and forward+backward. The backward differentiates what training
differentiates: x_start for q_sample / q_sample_pairs (cheap; training does not need it), x_0 for
sample_posterior (DDGAN's generator loss), model_output for p_mean_variance (the hybrid/KL losses,
upstream gradients for all four outputs), model_mean and model_log_variance for vb_terms_bpd.
Shapes: CIFAR-10 (N 128 and 256, 3x32x32) and 256 px (N 8 and 32, 3x256x256), float32 and bfloat16;
T = 1000 tables (IDDPM's), t uniform with 0 and T - 1 present.
Bytes moved are the fused op's minimum: every per-element tensor read or written once (tables,
t and the (N,) vb output are negligible); fwd+bwd adds the backward's reads and writes.
On a CPU-only machine one small shape runs (the Triton provider is skipped and says why).
"""

import dataclasses
import enum
from typing import Callable

import pytest
import torch

import kernels
from bench.harness import PROVIDERS, Pass, Shape, compiled, device, record, skip_unless_runnable
from kernels import reference


NUM_STEPS = 1000


class Op(enum.Enum):
    Q_SAMPLE = "q_sample"
    Q_SAMPLE_PAIRS = "q_sample_pairs"
    SAMPLE_POSTERIOR = "sample_posterior"
    P_MEAN_VARIANCE = "p_mean_variance_learned_range"
    VB_TERMS_BPD = "vb_terms_bpd"


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """How to build one op's inputs and what it moves, in units of one (N, C, H, W) tensor."""

    build: Callable  # (shape, dtype, device) -> (args, indices of the differentiable args)
    tensors_fwd: int
    tensors_bwd: int


GPU_SHAPES = [
    *(Shape(f"cifar10-n{n}", n, 3, 32) for n in (128, 256)),
    *(Shape(f"256px-n{n}", n, 3, 256) for n in (8, 32)),
]
CPU_SHAPES = [Shape("cpu-small", 4, 3, 16)]
SHAPES = GPU_SHAPES if torch.cuda.is_available() else CPU_SHAPES
DTYPES = [torch.float32, torch.bfloat16] if torch.cuda.is_available() else [torch.float32]


def _timesteps(batch, dev, num_steps=NUM_STEPS):
    t = torch.randint(0, num_steps, (batch,), device=dev)
    t[0], t[-1] = 0, num_steps - 1
    return t


def _table(dev, low=0.0, high=1.0, length=NUM_STEPS):
    return torch.empty(length, device=dev).uniform_(low, high)


def _image(shape, dtype, dev, channels=None):
    return torch.randn(shape.batch, channels or shape.channels, shape.res, shape.res, device=dev).to(dtype)


def _build_q_sample(shape, dtype, dev):
    x_start, noise = _image(shape, dtype, dev), _image(shape, dtype, dev)
    return [x_start, _timesteps(shape.batch, dev), noise, _table(dev), _table(dev)], [0]


def _build_q_sample_pairs(shape, dtype, dev):
    t = _timesteps(shape.batch, dev, NUM_STEPS - 1)
    images = [_image(shape, dtype, dev) for _ in range(3)]
    return [images[0], t, images[1], images[2], *(_table(dev) for _ in range(4))], [0]


def _build_sample_posterior(shape, dtype, dev):
    x_0, x_t, noise = (_image(shape, dtype, dev) for _ in range(3))
    log_var = _table(dev, -20.0, -1.0)
    return [x_0, x_t, _timesteps(shape.batch, dev), noise, _table(dev), _table(dev), log_var], [0]


def _build_p_mean_variance(shape, dtype, dev):
    model_output = _image(shape, dtype, dev, 2 * shape.channels)
    log_betas = _table(dev, -10.0, -1.0)
    tables = [_table(dev, 1.0, 10.0), _table(dev, 0.0, 10.0), _table(dev), _table(dev), log_betas - 1.0, log_betas]
    return [model_output, _image(shape, dtype, dev), _timesteps(shape.batch, dev), *tables], [0]


def _build_vb_terms(shape, dtype, dev):
    pixels = torch.randint(0, 256, (shape.batch, shape.channels, shape.res, shape.res), device=dev)
    x_start = (pixels / 127.5 - 1.0).to(dtype)
    mean = (x_start.float() + 0.01 * torch.randn_like(x_start, dtype=torch.float32)).to(dtype)
    log_variance = torch.empty_like(mean, dtype=torch.float32).uniform_(-10.0, -5.0).to(dtype)
    tables = [_table(dev), _table(dev), _table(dev, -10.0, -5.0)]
    return [x_start, _image(shape, dtype, dev), _timesteps(shape.batch, dev), mean, log_variance, *tables], [3, 4]


# tensors_fwd / tensors_bwd: per-element reads + writes of the forward and of the backward alone.
OPS = {
    Op.Q_SAMPLE: OpSpec(_build_q_sample, 3, 2),
    Op.Q_SAMPLE_PAIRS: OpSpec(_build_q_sample_pairs, 5, 3),
    Op.SAMPLE_POSTERIOR: OpSpec(_build_sample_posterior, 4, 2),
    Op.P_MEAN_VARIANCE: OpSpec(_build_p_mean_variance, 7, 9),
    Op.VB_TERMS_BPD: OpSpec(_build_vb_terms, 4, 6),
}


def _op(provider, op):
    ref = getattr(reference, op.value)
    return {"eager": ref, "compile": compiled(ref), "triton": getattr(kernels, op.value)}[provider]


@pytest.mark.parametrize("pass_", list(Pass), ids=lambda p: p.value)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.value)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_diffusion_op(benchmark, provider, op, shape, dtype, pass_):
    skip_unless_runnable(provider)
    torch.manual_seed(0)
    spec = OPS[op]
    args, grad_args = spec.build(shape, dtype, device())
    fused = _op(provider, op)
    element_bytes = torch.empty((), dtype=dtype).element_size()
    tensor_bytes = shape.batch * shape.channels * shape.res * shape.res * element_bytes
    nbytes = spec.tensors_fwd * tensor_bytes
    if pass_ is Pass.FORWARD:

        def fn():
            return fused(*args)

    else:
        for i in grad_args:
            args[i].requires_grad_(True)
        outputs = fused(*args)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        upstream = [torch.randn_like(out) for out in outputs]
        inputs = [args[i] for i in grad_args]
        nbytes += spec.tensors_bwd * tensor_bytes

        def fn():
            return torch.autograd.grad(fused(*args), inputs, upstream)

    record(
        benchmark,
        fn,
        provider=provider,
        nbytes=nbytes,
        op=op.value,
        pass_=pass_.value,
        shape=[shape.batch, shape.channels, shape.res, shape.res],
        dtype=str(dtype).replace("torch.", ""),
    )
