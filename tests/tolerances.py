"""The one dtype -> tolerance table of the tests that compare two computations of the same values.

Each entry is torch.testing.assert_close's |actual - expected| <= atol + rtol * |expected|.

float32: both sides compute in fp32 (kernels vs kernels/reference.py and the official fixtures, fused
vs eager layers) and differ only in the order of the operations (tree vs pairwise or Welford
reductions, folded affines). rtol 1e-5 is about 80 ulps (2^-23 = 1.2e-7), room for reductions over
thousands of terms. A result near zero that comes from O(1) terms cancelling carries the error of
the terms, a few of their ulps, not of the result: hence an absolute floor. Measured worst needs at
rtol 1e-5: 3.6e-7 for kernels/ against its references (1e-7 fails), 1.7e-6 for GroupNorm32 on
two-element groups with eps 1e-5 against F.group_norm (both 6e-6 to 8e-6 from fp64) and 2.7e-6 for
NCSN++'s upsample_conv_2d through upfirdn2d against the official conv formula
(tests/models/test_unet_layers.py, test_ncsnpp.py); atol 5e-6 is the largest with a 2x margin.
float16 / bfloat16: values are stored in half precision and all math is fp32, so each side rounds
its fp32 result once. Two fp32 results that agree to float32's tolerance round to the same or to
neighbouring half values: at most one ulp apart, 2^-10 = 9.8e-4 relative for fp16's 11-bit
significand and 2^-7 = 7.8e-3 for bf16's 8-bit one (measured: 9.1e-4 and 7.8e-3), hence rtol 1e-3
and 8e-3. Near zero the rounding keeps the fp32 results' absolute difference: atol is float32's.
"""

import torch

TOLERANCES = {
    torch.float32: dict(rtol=1e-5, atol=5e-6),
    torch.float16: dict(rtol=1e-3, atol=5e-6),
    torch.bfloat16: dict(rtol=8e-3, atol=5e-6),
}


# Network outputs and gradients against the official code (the fixture README's suggestion): the
# official outputs themselves move by up to ~1e-5 relative between CPU kernel paths (thread count,
# oneDNN on/off), and ddx regroups some arithmetic (GroupNorm affines folded into one per-sample
# gamma/beta, attention as one SDPA call), so 1e-4 relative with a 1e-5 absolute floor.
NETWORK = dict(rtol=1e-4, atol=1e-5)


def assert_close(actual, expected, dtype=None, **override):
    """torch.testing.assert_close with the table's tolerance for `dtype` (default: expected's dtype)."""
    tol = dict(TOLERANCES[dtype or expected.dtype])
    tol.update(override)
    torch.testing.assert_close(actual.float(), expected.float(), **tol)
