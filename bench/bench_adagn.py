"""AdaGN benchmarks: GroupNorm + per-sample gamma/beta + SiLU on the shapes of the real models.

Providers eager (kernels.reference.adagn), compile (torch.compile of the reference) and triton
(kernels.adagn) on the same inputs, forward and forward+backward. Every case is DDGAN's
`act(AdaGN(x, z))`: per-sample (N, C) gamma and beta in x's dtype, groups = min(C // 4, 32),
SiLU on. Shapes: DDGAN CIFAR-10 generator levels (ch_mult 1,2,2,2 on nf=128, batch 64 and 256),
the 256-px configs (ch_mult 1,1,2,2,4,4 on nf=64, batch 8), batch 1 at 256x256 (the split-
reduction path) and the target case N=128, C=256, 32x32 in bf16.
Bytes moved are the op's minimum: forward reads x and writes y; the backward also reads x and
grad_y and writes grad_x (gamma/beta and their grads are N*C, negligible). The Triton paths that
loop or split read x once more per pass; `path` in extra_info says which one ran.
On a CPU-only machine two small shapes run (the Triton provider is skipped and says why).
"""

import pytest
import torch

import kernels
from bench.harness import PROVIDERS, Pass, Shape, compiled, device, record, skip_unless_runnable
from kernels import reference
from kernels._adagn_plan import plan_for


def _groups(channels):
    """DDGAN's AdaptiveGroupNorm: min(C // 4, 32) groups."""
    return min(channels // 4, 32)


GPU_SHAPES = [
    *(Shape(f"cifar10-n{n}-{res}", n, c, res) for n in (64, 256) for c, res in ((128, 32), (256, 16), (256, 8), (256, 4))),
    *(Shape(f"256px-{res}", 8, c, res) for c, res in ((64, 256), (64, 128), (128, 64), (128, 32), (256, 16), (256, 8))),
    Shape("batch1-256", 1, 128, 256),
    Shape("target-n128-c256-32-bf16", 128, 256, 32, torch.bfloat16),
]
CPU_SHAPES = [Shape("cpu-small", 2, 16, 8), Shape("cpu-tiny-bf16", 1, 8, 4, torch.bfloat16)]
SHAPES = GPU_SHAPES if torch.cuda.is_available() else CPU_SHAPES


def _adagn_reference(x, gamma, beta, num_groups):
    return reference.adagn(x, gamma, beta, num_groups, eps=1e-6, silu=True)


def _adagn_triton(x, gamma, beta, num_groups):
    return kernels.adagn(x, gamma, beta, num_groups, eps=1e-6, silu=True)


def _op(provider):
    return {"eager": _adagn_reference, "compile": compiled(_adagn_reference), "triton": _adagn_triton}[provider]


@pytest.mark.parametrize("pass_", list(Pass), ids=lambda p: p.value)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_adagn(benchmark, provider, shape, pass_):
    skip_unless_runnable(provider)
    dev = device()
    groups = _groups(shape.channels)
    x = torch.randn(shape.batch, shape.channels, shape.res, shape.res, device=dev, dtype=shape.dtype)
    gamma = (1 + 0.1 * torch.randn(shape.batch, shape.channels, device=dev)).to(shape.dtype)
    beta = (0.1 * torch.randn(shape.batch, shape.channels, device=dev)).to(shape.dtype)
    op = _op(provider)
    nbytes = 2 * x.numel() * x.element_size()
    if pass_ is Pass.FORWARD:

        def fn():
            return op(x, gamma, beta, groups)

    else:
        leaves = [t.requires_grad_(True) for t in (x, gamma, beta)]
        grad_y = torch.randn_like(x)
        nbytes += 3 * x.numel() * x.element_size()

        def fn():
            return torch.autograd.grad(op(x, gamma, beta, groups), leaves, grad_y)

    plan = plan_for(x, groups) if provider == "triton" else None
    record(
        benchmark,
        fn,
        provider=provider,
        nbytes=nbytes,
        op="adagn",
        pass_=pass_.value,
        shape=[shape.batch, shape.channels, shape.res, shape.res],
        groups=groups,
        silu=True,
        dtype=str(shape.dtype).replace("torch.", ""),
        path=None if plan is None else plan.path.value,
        splits=None if plan is None else plan.splits,
    )
