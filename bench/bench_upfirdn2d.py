"""upfirdn2d benchmarks: the [1,3,3,1] up2 / down2 of every NCSN++ and discriminator block.

Providers eager (kernels.reference), compile (torch.compile of the reference) and triton
(kernels.upfirdn2d) on the same inputs, forward and forward+backward, float32.
Shapes are given by the block's full resolution `res`: up2 maps (N, C, res/2, res/2) to res,
down2 maps (N, C, res, res) to res/2, as in the generator's and discriminator's blocks.
Bytes moved: forward reads x and writes out; backward also reads grad_out and writes grad_x.
On a CPU-only machine two small shapes run (the Triton provider is skipped and says why).
"""

import enum

import pytest
import torch

from bench.harness import PROVIDERS, Pass, Shape, compiled, device, record, skip_unless_runnable
from kernels import reference
from kernels.upfirdn2d import upfirdn2d


class Resample(enum.Enum):
    UP2 = "up2"
    DOWN2 = "down2"


GPU_SHAPES = [
    Shape("cifar10-32", 64, 128, 32),
    Shape("cifar10-16", 64, 256, 16),
    Shape("cifar10-disc-32", 256, 128, 32),
    Shape("cifar10-disc-16", 256, 256, 16),
    Shape("cifar10-8", 256, 256, 8),
    Shape("256px-256", 8, 64, 256),
    Shape("256px-128", 8, 128, 128),
    Shape("256px-64", 8, 256, 64),
    Shape("256px-16", 8, 256, 16),
    Shape("batch1-256", 1, 128, 256),
]
CPU_SHAPES = [Shape("cpu-small", 2, 8, 16), Shape("cpu-tiny", 1, 4, 8)]
SHAPES = GPU_SHAPES if torch.cuda.is_available() else CPU_SHAPES


def _fir_1331(gain):
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k2 = torch.outer(k, k)
    return k2 / k2.sum() * gain


def _up2_reference(x, kernel):
    return reference.upfirdn2d(x, kernel, up=2, pad=(2, 1))


def _down2_reference(x, kernel):
    return reference.upfirdn2d(x, kernel, down=2, pad=(1, 1))


def _up2_triton(x, kernel):
    return upfirdn2d(x, kernel, up=2, pad=(2, 1))


def _down2_triton(x, kernel):
    return upfirdn2d(x, kernel, down=2, pad=(1, 1))


# resample -> (input resolution from res, kernel gain (upsample_2d: factor**2), reference, triton)
RESAMPLES = {
    Resample.UP2: (lambda res: res // 2, 4.0, _up2_reference, _up2_triton),
    Resample.DOWN2: (lambda res: res, 1.0, _down2_reference, _down2_triton),
}


def _op(provider, resample):
    _, _, ref, triton_op = RESAMPLES[resample]
    return {"eager": ref, "compile": compiled(ref), "triton": triton_op}[provider]


@pytest.mark.parametrize("pass_", list(Pass), ids=lambda p: p.value)
@pytest.mark.parametrize("resample", list(Resample), ids=lambda r: r.value)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_upfirdn2d(benchmark, provider, shape, resample, pass_):
    skip_unless_runnable(provider)
    in_res_of, gain, _, _ = RESAMPLES[resample]
    in_res = in_res_of(shape.res)
    dev = device()
    x = torch.randn(shape.batch, shape.channels, in_res, in_res, device=dev)
    kernel = _fir_1331(gain).to(dev)
    op = _op(provider, resample)
    out = op(x, kernel)
    nbytes = (x.numel() + out.numel()) * x.element_size()
    if pass_ is Pass.FORWARD:

        def fn():
            return op(x, kernel)

    else:
        x.requires_grad_(True)
        grad_out = torch.randn_like(out)
        nbytes *= 2

        def fn():
            return torch.autograd.grad(op(x, kernel), x, grad_out)

    record(
        benchmark,
        fn,
        provider=provider,
        nbytes=nbytes,
        op="upfirdn2d",
        resample=resample.value,
        pass_=pass_.value,
        shape=[shape.batch, shape.channels, in_res, in_res],
        out_shape=list(out.shape),
        dtype="float32",
    )
