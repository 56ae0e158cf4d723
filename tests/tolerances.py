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

Below the table, the named tolerances of comparisons against the official fixtures (network outputs,
diffusion terms, float64 schedules, ulp bounds where transcendental functions round differently
across CPUs), each with its reason and measured figure, and their helpers assert_close_ulps and
assert_close_of_max. Bit-exact comparisons (rtol=0, atol=0, torch.equal) stay where the values are
copies, indices or pure +, -, *, / on the same inputs (DDGAN's time schedule, FIR kernels of integer
taps, the timesteps a model receives), or the same computation twice in one process.
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


# The diffusion terms against the official fixtures (DDGAN coefficients and posterior, IDDPM q_*,
# p_mean_variance, losses, sampling steps): the fixture README's figures. float32 on both sides,
# relative because pred_xstart reaches ~1e5 and vb ~1e3 at t = T-1; the 1e-6 floor (tighter than the
# table's 5e-6: no reduction longer than an image's mean_flat here) for values near zero. It also
# holds the propagation of SCHEDULE_ULPS through the coefficients: a 1-ulp a_s moves sigmas_cum =
# sqrt(1 - a_s_cum^2) by 28 ulps (4.2e-7 at 0.145, geometric schedule, measured), within 1e-5 relative.
DIFFUSION = dict(rtol=1e-5, atol=1e-6)

# float64 schedule arrays (IDDPM betas and the GaussianDiffusion / SpacedDiffusion arrays, DDGAN's
# var_func_vp / var_func_geometric) against the fixtures. They go through libm's cos, exp, pow and
# numpy's log, which are not correctly rounded and may differ by an ulp across CPUs (numpy and torch
# pick SIMD loops by CPU) and libm builds: log_one_minus_alphas_cumprod is 1 ulp off the fixture on
# this dev machine. Cosine betas = 1 - alpha_bar(t2) / alpha_bar(t1) cancel: a 1-ulp alpha_bar
# (2 ulps of cos, squared: 4.4e-16) becomes 4.4e-16 / beta relative, and the first beta of the
# T=4000 cosine schedule is 9.9e-6 (4.4e-11). Measured by moving every cos and np.log result of the
# fixtures' schedules a random ulp (10 trials): 4.7e-11 elementwise (respaced cosine T=4000; 1.1e-11
# at T=1000; linear 4e-16). DDGAN's var_func_vp = 1 - exp(...) is 1.1e-4 at t = eps_small: 1 ulp of
# exp is 1e-12 relative there. rtol 2e-10 is a 4x margin over 4.7e-11; a 1e-4 error fails.
FLOAT64_SCHEDULE = dict(rtol=2e-10, atol=0.0)

# float32 tables that are one rounding from float64 followed by one sqrt or pow (DDGAN's betas, sigmas
# = betas**0.5, a_s = sqrt(1 - betas)). The fixture's betas are ddx's bit for bit, yet its sigmas and
# a_s are 1 ulp from ddx's, which are the correctly rounded roots, on 1 to 3 of 5 entries each (vp,
# geometric_valid): the writer's pow / sqrt path did not round correctly, so even a root of the same
# float32 input is not bit-reproducible against a fixture from another machine. Two results each within 1 ulp of the true value are at
# most 1 ulp apart; the float32 betas themselves may round 1 ulp apart when the float64 values (see
# FLOAT64_SCHEDULE) straddle a rounding boundary, and sqrt carries half of that: 2 ulps. A 1e-4
# relative error is ~840 ulps.
SCHEDULE_ULPS = 2

# torch.randn's float32 normals, seeded, against the draws the fixture recorded: Box-Muller through
# log and cos, vectorised (Sleef, 1-ulp functions, AVX2) or scalar (libm) depending on the CPU and the
# tensor's size. Each function may differ by an ulp: log moves the radius sqrt(-2 log u) by half an ulp
# plus its rounding, cos by one, two products round: at most 4 ulps. Measured here: 0. Replayed draws
# are copies and compare exactly.
RANDN_ULPS = 4

# DDIM with eta = 1 at its last step (t = T-1 to T-2 of the 1000-step cosine schedule): the eps
# coefficient sqrt(1 - alpha_bar_prev - sigma^2) takes the square root of ~1e-3 left after O(1) terms
# cancel. The terms' rounding (an ulp of 1, ~1.2e-7, e.g. a 2-ulp sigma) moves the root by
# 1.2e-7 / (2 sqrt(1e-3)) = 1.9e-6, times |eps| up to ~3: the error scales with the largest values of
# the step, not with each element (an element near zero gets the same absolute error). Measured
# against iddpm_terms.pt: max abs 1.19e-5 = 3.7e-6 of max |reference| 3.23, elementwise up to 5.0e-4
# relative (34 of 768 elements outside DIFFUSION, all at that step). Against the step in float64,
# ddx is 5.5e-6 off and the stored values 6.3e-6, in opposite directions. 1e-5 of max |reference|
# (3.2e-5 absolute) is a 2.7x margin; the step's largest value 1e-4 off still fails. (A 1e-4 error of
# alpha_bar at t = T-1 moves this sample by ~5e-6 only, inside the rounding: FLOAT64_SCHEDULE on the
# arrays the tables are rounded from catches it.)
DDIM_LAST_STEP_OF_MAX = 1e-5


def ulp_distance(actual, expected):
    """Elementwise |actual - expected| in units in the last place of their (common) float dtype, int64.

    Floats are mapped to integers in value order (sign-magnitude to two's complement), so neighbouring
    floats are 1 apart, +0 and -0 are 0 apart, and the distance across zero is the sum of both sides."""
    if actual.dtype != expected.dtype or actual.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"ulp_distance needs two float32 or two float64 tensors, got {actual.dtype} and {expected.dtype}")
    bits, magnitude = (torch.int32, 0x7FFFFFFF) if actual.dtype == torch.float32 else (torch.int64, 0x7FFFFFFFFFFFFFFF)

    def ordered(x):
        i = x.contiguous().view(bits).to(torch.int64)
        return torch.where(i < 0, -(i & magnitude), i)

    return (ordered(actual) - ordered(expected)).abs()


def assert_close_ulps(actual, expected, max_ulps, msg=None):
    """Raise AssertionError unless actual and expected (same shape and float dtype) are within
    max_ulps units in the last place elementwise; NaNs must sit at the same places."""
    if actual.shape != expected.shape:
        raise AssertionError(f"{msg or 'ulps'}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{msg or 'ulps'}: dtype {actual.dtype} != {expected.dtype}")
    nan = torch.isnan(expected)
    if not torch.equal(torch.isnan(actual), nan):
        raise AssertionError(f"{msg or 'ulps'}: NaNs at different places")
    distance = ulp_distance(actual, expected).masked_fill(nan, 0)
    if distance.numel() and int(distance.max()) > max_ulps:
        index = tuple(int(i) for i in torch.unravel_index(distance.argmax(), distance.shape))
        far = int((distance > max_ulps).sum())
        raise AssertionError(
            f"{msg or 'ulps'}: {far} of {distance.numel()} elements more than {max_ulps} ulps apart; worst "
            f"{int(distance.max())} ulps at {index}: {actual[index].item()!r} vs expected {expected[index].item()!r}"
        )


def assert_close_of_max(actual, expected, of_max, msg=None):
    """|actual - expected| <= of_max * max|expected| elementwise: for ill-conditioned formulas whose
    rounding error scales with the largest values involved, not with each element."""
    atol = of_max * expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=atol, msg=msg)


def assert_close(actual, expected, dtype=None, **override):
    """torch.testing.assert_close with the table's tolerance for `dtype` (default: expected's dtype)."""
    tol = dict(TOLERANCES[dtype or expected.dtype])
    tol.update(override)
    torch.testing.assert_close(actual.float(), expected.float(), **tol)
