"""Fused AdaGN: GroupNorm (no own affine, fp32 statistics) -> `* gamma + beta` -> optional SiLU.

x is read as (N, C, HW), NCHW-contiguous: the group g of sample n is one contiguous run of
Cg = C / G channels x HW positions, starting at element (n * G + g) * Cg * HW. Kernels walk a
group in [BLOCK_C, BLOCK_HW] tiles (channels x positions), so the per-channel gamma/beta are a
[BLOCK_C] vector and the per-channel gradient sums are row sums of the tile.

Three ways to run a call (`Path`), chosen by `make_plan` (kernels/_adagn_plan.py):
    FUSED   the whole group fits one tile (<= TUNING.fused_max_elems elements): one program per
            (sample, group) reads x once, computes mean and variance in registers (two passes
            over the registers, not over memory), normalises and writes y once.
    LOOPED  the group is too big for one tile but the N * G programs fill the GPU: a stats
            kernel loops over the group (per-tile mean and M2 merged with Chan's formula), then an
            apply kernel loops again to normalise; x is read twice.
    SPLIT   N * G programs cannot fill the GPU (batch 1 at 256x256, C=128, G=32: 32 programs):
            each group's HW range is cut into S chunks, so both kernels run N * G * S programs;
            the stats kernel writes one (mean, M2) per chunk, the apply kernel merges the S
            partials of its group (Chan's formula, exact and stable) and normalises its chunk.
            LOOPED is SPLIT with S = 1.
The choice and its heuristic are in kernels/_adagn_plan.py; the backward follows the forward's plan.

Statistics and every accumulation are fp32 whatever the dtypes; the variance is biased and eps
sits inside the rsqrt, as in torch.nn.functional.group_norm.

Statistics are of x / 2^k, 2^k the power of two <= max |x| of the group (k clamped to [0, 126]), so
that sums of squares cannot overflow however large x is (fp32 squares overflow from |x| ~ 1.8e19;
torch's own fp32 group norm then returns rstd 0 and a finite, wrong output). Dividing by a power of
two is exact, so for max |x| < 2 (k = 0) the arithmetic is unchanged, and above it only the
exponents differ: the result is the same up to underflow of values 2^126 below the group's largest.
eps scales with the statistics (eps / 4^k), floored at the smallest normal fp32. kernels/reference.py
(_scaled_group_norm) computes huge groups the same way. The LOOPED/SPLIT stats kernel keeps a running
k per chunk (rescaling its running mean and M2 when a tile raises it, as online softmax rescales by a
running max), and the apply kernel brings the chunks to the group's largest k before merging.

The loops over a group are `while` loops, not `range` with runtime bounds: Triton 3.6's interpreter
turns a range bound into a Python int with int() of a 1-element array, which NumPy 2.4 rejects
(3.7+ squeezes it first). Compiled, the two spell the same loop: the sm_90 PTX of every looping
kernel is the same instructions for both, on Triton 3.6 and 3.8.
"""

import math

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from kernels import reference
from kernels._adagn_plan import Path, plan_for
from kernels._checks import FLOAT_DTYPES, check_bool, check_same_device, check_tensor, use_triton
from kernels._library import launcher_op

PARAM_DTYPES = FLOAT_DTYPES + (torch.float64,)
X_DTYPES = PARAM_DTYPES  # float64 x goes to the reference (see adagn)


_TINY = tl.constexpr(1.1754943508222875e-38)  # the smallest normal fp32: the floor of the scaled eps


@triton.jit
def _pow2(k):
    """2^k as fp32, for an int32 k in [-126, 127], built from its exponent bits (exact, unlike exp2)."""
    return ((k + 127) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _scale_exponent(amax):
    """k in [0, 126] with 2^k <= amax (k = 0 below 2): the statistics are of x * 2^-k (see the module docstring)."""
    exponent = ((amax.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    return tl.minimum(tl.maximum(exponent, 0), 126)


@triton.jit
def _group_tile(group_start, c0, hw0, Cg, HW, hw_stop, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr):
    """Offsets of the [BLOCK_C, BLOCK_HW] tile at (channel c0, position hw0) of a group, and its in-bounds mask."""
    c_in_group = c0 + tl.arange(0, BLOCK_C)
    hw = hw0 + tl.arange(0, BLOCK_HW)
    tile_in_bounds = (c_in_group < Cg)[:, None] & (hw[None, :] < hw_stop)
    offs = group_start + c_in_group[:, None] * HW + hw[None, :]
    return offs, tile_in_bounds


@triton.jit
def _group_params(gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n):
    """Pointers to gamma and beta at the first channel of group pid_group = n * G + g.

    gamma and beta have unit stride over C (the launcher sees to it); stride_n is 0 for a (C,) parameter.
    """
    n = pid_group // G
    first_channel = (pid_group % G) * Cg
    return gamma_ptr + n * gamma_stride_n + first_channel, beta_ptr + n * beta_stride_n + first_channel


@triton.jit
def _load_channel_param(group_ptr, c_in_group, channel_valid, HAS: tl.constexpr, DEFAULT: tl.constexpr):
    """gamma or beta of these channels of the group as fp32 (DEFAULT where the parameter is None)."""
    if HAS:
        value = tl.load(group_ptr + c_in_group, mask=channel_valid, other=DEFAULT).to(tl.float32)
    else:
        value = tl.zeros_like(c_in_group).to(tl.float32) + DEFAULT
    return value


@triton.jit
def _group_affine(gamma_group_ptr, beta_group_ptr, c0, Cg, HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    """gamma and beta [BLOCK_C], fp32, of channels c0.. of a group (pointers from _group_params).

    1 and 0 where the parameter is None.
    """
    c_in_group = c0 + tl.arange(0, BLOCK_C)
    channel_in_group = c_in_group < Cg
    gamma = _load_channel_param(gamma_group_ptr, c_in_group, channel_in_group, HAS_GAMMA, 1.0)
    beta = _load_channel_param(beta_group_ptr, c_in_group, channel_in_group, HAS_BETA, 0.0)
    return gamma, beta


@triton.jit
def _store_channel_rows(rows_ptr, pid_group, c0, Cg, value, BLOCK_C: tl.constexpr):
    """Store value [BLOCK_C] at channels c0.. of group pid_group in an (N, C) buffer (row n*C + g*Cg = pid_group*Cg)."""
    c_in_group = c0 + tl.arange(0, BLOCK_C)
    tl.store(rows_ptr + pid_group * Cg + c_in_group, value, mask=c_in_group < Cg)


@triton.jit
def _affine_activation(xhat, gamma, beta, SILU: tl.constexpr):
    """xhat [BLOCK_C, BLOCK_HW] * gamma [BLOCK_C] + beta [BLOCK_C], then SiLU if asked."""
    y = xhat * gamma[:, None] + beta[:, None]
    if SILU:
        y = y * tl.sigmoid(y)
    return y


@triton.jit
def _load_grad_tile(x_ptr, dy_ptr, offs, tile_in_bounds, mean, rstd, gamma, beta, SILU: tl.constexpr):
    """xhat and dy' of one [BLOCK_C, BLOCK_HW] tile, fp32, 0 outside the group.

    dy' is the gradient w.r.t. xhat * gamma + beta: dy itself, or dy * silu'(y_pre) when SiLU follows.
    """
    x = tl.load(x_ptr + offs, mask=tile_in_bounds, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offs, mask=tile_in_bounds, other=0.0).to(tl.float32)
    xhat = tl.where(tile_in_bounds, (x - mean) * rstd, 0.0)
    if SILU:
        y_pre = xhat * gamma[:, None] + beta[:, None]
        sig = tl.sigmoid(y_pre)
        dy = dy * sig * (1.0 + y_pre * (1.0 - sig))
    return xhat, dy


@triton.jit
def _chunk_bounds(chunk, HW_PER_CHUNK, HW):
    """The positions [hw_start, hw_stop) of a group that chunk `chunk` of a LOOPED/SPLIT launch covers."""
    hw_start = chunk * HW_PER_CHUNK
    return hw_start, tl.minimum(hw_start + HW_PER_CHUNK, HW)


@triton.jit
def _adagn_fwd_kernel(
    x_ptr, y_ptr, gamma_ptr, beta_ptr, mean_ptr, rstd_ptr,
    G, Cg, HW, gamma_stride_n, beta_stride_n, eps,
    HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, SILU: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
):
    """FUSED path, grid (N * G,): the whole group is one [BLOCK_C, BLOCK_HW] tile; x read once.

    Statistics are of (x - shift) * 2^-k, shift being the group's first value: the sums then stay of
    the order of the spread, not of the offset, so the fp32 mean is accurate when |mean| >> std; the
    power of two 2^-k keeps their squares finite (module docstring).
    """
    pid_group = tl.program_id(0).to(tl.int64)
    gamma_group_ptr, beta_group_ptr = _group_params(
        gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n
    )
    group_start = pid_group * Cg * HW
    offs, tile_in_bounds = _group_tile(group_start, 0, 0, Cg, HW, HW, BLOCK_C, BLOCK_HW)
    x = tl.load(x_ptr + offs, mask=tile_in_bounds, other=0.0).to(tl.float32)
    k = _scale_exponent(tl.max(tl.abs(x)))
    inv_scale = _pow2(-k)
    # x * 2^-k - shift * 2^-k, not (x - shift) * 2^-k: x - shift can overflow where both are near fp32's max
    shift = tl.load(x_ptr + group_start).to(tl.float32) * inv_scale
    x = tl.where(tile_in_bounds, x * inv_scale - shift, 0.0)
    count = Cg * HW * 1.0  # a float whether or not Triton specialised Cg or HW to 1
    mean = tl.sum(x) / count
    diff = tl.where(tile_in_bounds, x - mean, 0.0)
    rstd = tl.rsqrt(tl.sum(diff * diff) / count + tl.maximum(eps * inv_scale * inv_scale, _TINY))
    tl.store(mean_ptr + pid_group, (shift + mean) * _pow2(k))
    tl.store(rstd_ptr + pid_group, rstd * inv_scale)

    gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, 0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
    y = _affine_activation(diff * rstd, gamma, beta, SILU)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=tile_in_bounds)


@triton.jit
def _adagn_stats_kernel(
    x_ptr, part_mean_ptr, part_m2_ptr, part_k_ptr,
    Cg, HW, HW_PER_CHUNK, S,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
):
    """LOOPED/SPLIT pass 1, grid (N * G, S): mean and M2 (sum of squared deviations) of one chunk.

    The chunk is the group's Cg channels x positions [chunk * HW_PER_CHUNK, +HW_PER_CHUNK); each
    tile's own mean and M2 are merged into the running ones with Chan's formula, which keeps
    full fp32 accuracy where a running sum of squares would cancel. As in the FUSED kernel, the
    statistics are of (x - shift) * 2^-k (shift the group's first value); k is the chunk's running
    exponent, raised by a tile with larger values (the running mean and M2 are then rescaled, exactly,
    by a power of two), and stored with the partials. The apply kernel adds shift back.
    """
    pid_group = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1).to(tl.int64)
    group_start = pid_group * Cg * HW
    hw_start, hw_stop = _chunk_bounds(chunk, HW_PER_CHUNK, HW)
    shift = tl.load(x_ptr + group_start).to(tl.float32)
    count = tl.zeros((), tl.float32)
    mean = tl.zeros((), tl.float32)
    m2 = tl.zeros((), tl.float32)
    k = tl.zeros((), tl.int32)
    c0 = 0
    while c0 < Cg:
        hw0 = hw_start
        while hw0 < hw_stop:
            offs, tile_in_bounds = _group_tile(group_start, c0, hw0, Cg, HW, hw_stop, BLOCK_C, BLOCK_HW)
            x = tl.load(x_ptr + offs, mask=tile_in_bounds, other=0.0).to(tl.float32)
            tile_k = tl.maximum(_scale_exponent(tl.max(tl.abs(x))), k)
            rescale = _pow2(k - tile_k)  # 1 unless this tile raised the exponent
            mean = mean * rescale
            m2 = m2 * rescale * rescale
            k = tile_k
            inv_scale = _pow2(-k)
            x = tl.where(tile_in_bounds, x * inv_scale - shift * inv_scale, 0.0)
            tile_count = tl.sum(tile_in_bounds.to(tl.float32))
            tile_mean = tl.sum(x) / tile_count
            tile_diff = tl.where(tile_in_bounds, x - tile_mean, 0.0)
            tile_m2 = tl.sum(tile_diff * tile_diff)
            new_count = count + tile_count
            delta = tile_mean - mean
            mean += delta * (tile_count / new_count)
            m2 += tile_m2 + delta * delta * (count * tile_count / new_count)
            count = new_count
            hw0 += BLOCK_HW
        c0 += BLOCK_C
    tl.store(part_mean_ptr + pid_group * S + chunk, mean)
    tl.store(part_m2_ptr + pid_group * S + chunk, m2)
    tl.store(part_k_ptr + pid_group * S + chunk, k)


@triton.jit
def _adagn_fwd_apply_kernel(
    x_ptr, y_ptr, gamma_ptr, beta_ptr, part_mean_ptr, part_m2_ptr, part_k_ptr, mean_ptr, rstd_ptr,
    G, Cg, HW, HW_PER_CHUNK, S, gamma_stride_n, beta_stride_n, eps,
    HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, SILU: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """LOOPED/SPLIT pass 2, grid (N * G, S): merge the group's S partial (mean, M2), normalise one chunk."""
    pid_group = tl.program_id(0).to(tl.int64)
    gamma_group_ptr, beta_group_ptr = _group_params(
        gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n
    )
    chunk = tl.program_id(1).to(tl.int64)
    group_start = pid_group * Cg * HW

    # Chan's parallel merge of the S chunks: tile [BLOCK_S]; a chunk's count follows from its bounds.
    chunk_ids = tl.arange(0, BLOCK_S)
    chunk_valid = chunk_ids < S
    chunk_len = tl.minimum((chunk_ids + 1) * HW_PER_CHUNK, HW) - chunk_ids * HW_PER_CHUNK
    chunk_count = tl.where(chunk_valid, Cg * chunk_len, 0).to(tl.float32)
    chunk_mean = tl.load(part_mean_ptr + pid_group * S + chunk_ids, mask=chunk_valid, other=0.0)
    chunk_m2 = tl.load(part_m2_ptr + pid_group * S + chunk_ids, mask=chunk_valid, other=0.0)
    # Bring every chunk to the group's largest exponent k: a factor 2^(k_chunk - k) in [2^-126, 1].
    chunk_k = tl.load(part_k_ptr + pid_group * S + chunk_ids, mask=chunk_valid, other=0)
    k = tl.max(chunk_k)
    rescale = _pow2(chunk_k - k)
    chunk_mean = chunk_mean * rescale
    chunk_m2 = chunk_m2 * rescale * rescale
    inv_scale = _pow2(-k)
    count = Cg * HW * 1.0  # a float whether or not Triton specialised Cg or HW to 1
    mean = tl.sum(chunk_count * chunk_mean) / count
    chunk_delta = chunk_mean - mean
    m2 = tl.sum(chunk_m2 + chunk_count * chunk_delta * chunk_delta)
    rstd = tl.rsqrt(m2 / count + tl.maximum(eps * inv_scale * inv_scale, _TINY))
    shift = tl.load(x_ptr + group_start).to(tl.float32) * inv_scale
    if chunk == 0:
        tl.store(mean_ptr + pid_group, (shift + mean) * _pow2(k))
        tl.store(rstd_ptr + pid_group, rstd * inv_scale)

    hw_start, hw_stop = _chunk_bounds(chunk, HW_PER_CHUNK, HW)
    c0 = 0
    while c0 < Cg:
        gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, c0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
        hw0 = hw_start
        while hw0 < hw_stop:
            offs, tile_in_bounds = _group_tile(group_start, c0, hw0, Cg, HW, hw_stop, BLOCK_C, BLOCK_HW)
            x = tl.load(x_ptr + offs, mask=tile_in_bounds, other=0.0).to(tl.float32)
            y = _affine_activation(((x * inv_scale - shift) - mean) * rstd, gamma, beta, SILU)
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=tile_in_bounds)
            hw0 += BLOCK_HW
        c0 += BLOCK_C


@triton.jit
def _adagn_bwd_kernel(
    x_ptr, dy_ptr, mean_ptr, rstd_ptr, gamma_ptr, beta_ptr, dx_ptr, dgamma_ptr, dbeta_ptr,
    G, Cg, HW, gamma_stride_n, beta_stride_n,
    HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, SILU: tl.constexpr, STORE_DX: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
):
    """FUSED backward, grid (N * G,): x and dy read once as [BLOCK_C, BLOCK_HW] tiles.

    With g = dy' * gamma (dy' the gradient before SiLU): dbeta_c = sum_hw dy', dgamma_c =
    sum_hw dy' * xhat, and dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) over the group,
    where the two group means are sum_c gamma_c dbeta_c / count and sum_c gamma_c dgamma_c / count.
    dgamma/dbeta are written per sample, fp32, (N, C).
    """
    pid_group = tl.program_id(0).to(tl.int64)
    gamma_group_ptr, beta_group_ptr = _group_params(
        gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n
    )
    group_start = pid_group * Cg * HW
    offs, tile_in_bounds = _group_tile(group_start, 0, 0, Cg, HW, HW, BLOCK_C, BLOCK_HW)
    mean = tl.load(mean_ptr + pid_group)
    rstd = tl.load(rstd_ptr + pid_group)
    gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, 0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
    xhat, dy = _load_grad_tile(x_ptr, dy_ptr, offs, tile_in_bounds, mean, rstd, gamma, beta, SILU)
    dbeta = tl.sum(dy, axis=1)
    dgamma = tl.sum(dy * xhat, axis=1)
    _store_channel_rows(dbeta_ptr, pid_group, 0, Cg, dbeta, BLOCK_C)
    _store_channel_rows(dgamma_ptr, pid_group, 0, Cg, dgamma, BLOCK_C)
    if STORE_DX:
        count = Cg * HW * 1.0  # a float whether or not Triton specialised Cg or HW to 1
        mean_g = tl.sum(gamma * dbeta) / count
        mean_g_xhat = tl.sum(gamma * dgamma) / count
        dx = rstd * (dy * gamma[:, None] - mean_g - xhat * mean_g_xhat)
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=tile_in_bounds)


@triton.jit
def _adagn_bwd_reduce_kernel(
    x_ptr, dy_ptr, mean_ptr, rstd_ptr, gamma_ptr, beta_ptr, part_dgamma_ptr, part_dbeta_ptr,
    G, Cg, HW, HW_PER_CHUNK, S, gamma_stride_n, beta_stride_n,
    HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, SILU: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
):
    """LOOPED/SPLIT backward pass 1, grid (N * G, S): per-channel sums of dy' and dy' * xhat over one chunk.

    Partials are laid out (N, C, S) in fp32: entry ((n * C + channel) * S + chunk).
    """
    pid_group = tl.program_id(0).to(tl.int64)
    gamma_group_ptr, beta_group_ptr = _group_params(
        gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n
    )
    chunk = tl.program_id(1).to(tl.int64)
    group_start = pid_group * Cg * HW
    mean = tl.load(mean_ptr + pid_group)
    rstd = tl.load(rstd_ptr + pid_group)
    hw_start, hw_stop = _chunk_bounds(chunk, HW_PER_CHUNK, HW)
    c0 = 0
    while c0 < Cg:
        gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, c0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
        dbeta = tl.zeros((BLOCK_C,), tl.float32)
        dgamma = tl.zeros((BLOCK_C,), tl.float32)
        hw0 = hw_start
        while hw0 < hw_stop:
            offs, tile_in_bounds = _group_tile(group_start, c0, hw0, Cg, HW, hw_stop, BLOCK_C, BLOCK_HW)
            xhat, dy = _load_grad_tile(x_ptr, dy_ptr, offs, tile_in_bounds, mean, rstd, gamma, beta, SILU)
            dbeta += tl.sum(dy, axis=1)
            dgamma += tl.sum(dy * xhat, axis=1)
            hw0 += BLOCK_HW
        c_in_group = c0 + tl.arange(0, BLOCK_C)
        part_offs = (pid_group * Cg + c_in_group) * S + chunk
        tl.store(part_dbeta_ptr + part_offs, dbeta, mask=c_in_group < Cg)
        tl.store(part_dgamma_ptr + part_offs, dgamma, mask=c_in_group < Cg)
        c0 += BLOCK_C


@triton.jit
def _adagn_bwd_apply_kernel(
    x_ptr, dy_ptr, mean_ptr, rstd_ptr, gamma_ptr, beta_ptr, part_dgamma_ptr, part_dbeta_ptr, dx_ptr, dgamma_ptr, dbeta_ptr,
    G, Cg, HW, HW_PER_CHUNK, S, gamma_stride_n, beta_stride_n,
    HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, SILU: tl.constexpr, STORE_DX: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """LOOPED/SPLIT backward pass 2, grid (N * G, S): sum the partials, then dx over one chunk.

    Every program of a group sums the same partials (Cg x S floats, small next to the chunk);
    chunk 0 writes the per-sample dgamma/dbeta (N, C) fp32.
    """
    pid_group = tl.program_id(0).to(tl.int64)
    gamma_group_ptr, beta_group_ptr = _group_params(
        gamma_ptr, beta_ptr, pid_group, G, Cg, gamma_stride_n, beta_stride_n
    )
    chunk = tl.program_id(1).to(tl.int64)
    group_start = pid_group * Cg * HW
    mean = tl.load(mean_ptr + pid_group)
    rstd = tl.load(rstd_ptr + pid_group)
    chunk_ids = tl.arange(0, BLOCK_S)
    sum_g = tl.zeros((), tl.float32)
    sum_g_xhat = tl.zeros((), tl.float32)
    c0 = 0
    while c0 < Cg:
        c_in_group = c0 + tl.arange(0, BLOCK_C)
        # partials tile [BLOCK_C, BLOCK_S]: these channels x every chunk of the group
        part_offs = (pid_group * Cg + c_in_group)[:, None] * S + chunk_ids[None, :]
        part_valid = (c_in_group < Cg)[:, None] & (chunk_ids < S)[None, :]
        dbeta = tl.sum(tl.load(part_dbeta_ptr + part_offs, mask=part_valid, other=0.0), axis=1)
        dgamma = tl.sum(tl.load(part_dgamma_ptr + part_offs, mask=part_valid, other=0.0), axis=1)
        if chunk == 0:
            _store_channel_rows(dbeta_ptr, pid_group, c0, Cg, dbeta, BLOCK_C)
            _store_channel_rows(dgamma_ptr, pid_group, c0, Cg, dgamma, BLOCK_C)
        gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, c0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
        sum_g += tl.sum(gamma * dbeta)
        sum_g_xhat += tl.sum(gamma * dgamma)
        c0 += BLOCK_C

    if STORE_DX:
        count = Cg * HW * 1.0  # a float whether or not Triton specialised Cg or HW to 1
        mean_g = sum_g / count
        mean_g_xhat = sum_g_xhat / count
        hw_start, hw_stop = _chunk_bounds(chunk, HW_PER_CHUNK, HW)
        c0 = 0
        while c0 < Cg:
            gamma, beta = _group_affine(gamma_group_ptr, beta_group_ptr, c0, Cg, HAS_GAMMA, HAS_BETA, BLOCK_C)
            hw0 = hw_start
            while hw0 < hw_stop:
                offs, tile_in_bounds = _group_tile(group_start, c0, hw0, Cg, HW, hw_stop, BLOCK_C, BLOCK_HW)
                xhat, dy = _load_grad_tile(x_ptr, dy_ptr, offs, tile_in_bounds, mean, rstd, gamma, beta, SILU)
                dx = rstd * (dy * gamma[:, None] - mean_g - xhat * mean_g_xhat)
                tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=tile_in_bounds)
                hw0 += BLOCK_HW
            c0 += BLOCK_C


def _param_args(param, x):
    """(pointer tensor, stride over N, present) for a gamma/beta of shape (N, C), (C,) or None.

    The kernels read a parameter with unit stride over C: the (N, C) halves of one Linear output
    (Linear(z).chunk(2, 1), row stride 2C) pass as they are; a parameter strided over C is copied.
    """
    if param is None:
        return x, 0, False
    if param.stride(-1) != 1 and param.shape[-1] > 1:
        param = param.contiguous()
    return param, (param.stride(0) if param.dim() == 2 else 0), True


def _launch_args(x, gamma, beta, silu, plan):
    """What every launch passes: gamma and beta pointers, their strides over N, the constexpr flags and tiles."""
    gamma_ptr, gamma_stride_n, has_gamma = _param_args(gamma, x)
    beta_ptr, beta_stride_n, has_beta = _param_args(beta, x)
    flags = dict(HAS_GAMMA=has_gamma, HAS_BETA=has_beta, SILU=silu, BLOCK_C=plan.block_c, BLOCK_HW=plan.block_hw)
    return gamma_ptr, beta_ptr, (gamma_stride_n, beta_stride_n), flags


def _adagn_fwd_fake(x, gamma, beta, num_groups, eps, silu):
    mean = x.new_empty((x.shape[0], num_groups), dtype=torch.float32)
    return torch.empty_like(x, memory_format=torch.contiguous_format), mean, torch.empty_like(mean)


@launcher_op(
    "adagn_fwd",
    "(Tensor x, Tensor? gamma, Tensor? beta, int num_groups, float eps, bool silu) -> (Tensor, Tensor, Tensor)",
    fake=_adagn_fwd_fake,
    contiguous_inputs=False,
)
def adagn_fwd(x, gamma, beta, num_groups, eps, silu):
    """Launch the forward. x (N, C, *spatial) (made contiguous); gamma, beta (N, C) / (C,) any strides, or None.

    Returns y (x's shape and dtype), mean, rstd (N, G) fp32. The plan is plan_for(x, num_groups) (cached).
    """
    x = x.contiguous()
    n, c = x.shape[:2]
    hw = math.prod(x.shape[2:])
    cg = c // num_groups
    plan = plan_for(x, num_groups)
    y = torch.empty_like(x)
    mean = torch.empty(n, num_groups, device=x.device, dtype=torch.float32)
    rstd = torch.empty_like(mean)
    gamma_ptr, beta_ptr, affine, flags = _launch_args(x, gamma, beta, silu, plan)
    if plan.path is Path.FUSED:
        _adagn_fwd_kernel[(n * num_groups,)](
            x, y, gamma_ptr, beta_ptr, mean, rstd, num_groups, cg, hw, *affine, eps, num_warps=plan.num_warps, **flags
        )
        return y, mean, rstd
    grid = (n * num_groups, plan.splits)
    part_mean = torch.empty(n * num_groups * plan.splits, device=x.device, dtype=torch.float32)
    part_m2 = torch.empty_like(part_mean)
    part_k = torch.empty(part_mean.shape, device=x.device, dtype=torch.int32)
    _adagn_stats_kernel[grid](
        x, part_mean, part_m2, part_k, cg, hw, plan.hw_per_chunk, plan.splits,
        BLOCK_C=plan.block_c, BLOCK_HW=plan.block_hw, num_warps=plan.num_warps,
    )
    _adagn_fwd_apply_kernel[grid](
        x, y, gamma_ptr, beta_ptr, part_mean, part_m2, part_k, mean, rstd,
        num_groups, cg, hw, plan.hw_per_chunk, plan.splits, *affine, eps,
        BLOCK_S=triton.next_power_of_2(plan.splits), num_warps=plan.num_warps, **flags,
    )
    return y, mean, rstd


def _param_grad(rows, param):
    """Per-sample fp32 grad rows (N, C) reduced to param's shape ((C,): summed over N) and dtype."""
    if param is None:
        return None
    grad = rows if param.dim() == 2 else rows.sum(0)
    return grad.to(param.dtype)


def _adagn_bwd_fake(dy, x, gamma, beta, mean, rstd, num_groups, silu, needs_dx):
    dx = torch.empty_like(x, memory_format=torch.contiguous_format) if needs_dx else None
    return dx, *(None if p is None else torch.empty_like(p, memory_format=torch.contiguous_format) for p in (gamma, beta))


@launcher_op(
    "adagn_bwd",
    "(Tensor dy, Tensor x, Tensor? gamma, Tensor? beta, Tensor mean, Tensor rstd, int num_groups, bool silu, "
    "bool needs_dx) -> (Tensor?, Tensor?, Tensor?)",
    fake=_adagn_bwd_fake,
    contiguous_inputs=False,
)
def adagn_bwd(dy, x, gamma, beta, mean, rstd, num_groups, silu, needs_dx):
    """Launch the backward. dy, x (N, C, *spatial) (made contiguous); mean, rstd (N, G) fp32 from adagn_fwd.

    Returns (dx or None, dgamma, dbeta): dx in x's dtype; dgamma/dbeta in gamma's/beta's shape
    and dtype, None where that parameter is None. Runs the forward's plan (plan_for is deterministic).
    """
    dy, x = dy.contiguous(), x.contiguous()
    n, c = x.shape[:2]
    hw = math.prod(x.shape[2:])
    cg = c // num_groups
    plan = plan_for(x, num_groups)
    dx = torch.empty_like(x) if needs_dx else x
    dgamma_rows = torch.empty(n, c, device=x.device, dtype=torch.float32)
    dbeta_rows = torch.empty_like(dgamma_rows)
    gamma_ptr, beta_ptr, affine, flags = _launch_args(x, gamma, beta, silu, plan)
    if plan.path is Path.FUSED:
        _adagn_bwd_kernel[(n * num_groups,)](
            x, dy, mean, rstd, gamma_ptr, beta_ptr, dx, dgamma_rows, dbeta_rows,
            num_groups, cg, hw, *affine, STORE_DX=needs_dx, num_warps=plan.num_warps, **flags,
        )
    else:
        grid = (n * num_groups, plan.splits)
        part_dgamma = torch.empty(n * c * plan.splits, device=x.device, dtype=torch.float32)
        part_dbeta = torch.empty_like(part_dgamma)
        _adagn_bwd_reduce_kernel[grid](
            x, dy, mean, rstd, gamma_ptr, beta_ptr, part_dgamma, part_dbeta,
            num_groups, cg, hw, plan.hw_per_chunk, plan.splits, *affine, num_warps=plan.num_warps, **flags,
        )
        _adagn_bwd_apply_kernel[grid](
            x, dy, mean, rstd, gamma_ptr, beta_ptr, part_dgamma, part_dbeta, dx, dgamma_rows, dbeta_rows,
            num_groups, cg, hw, plan.hw_per_chunk, plan.splits, *affine,
            STORE_DX=needs_dx, BLOCK_S=triton.next_power_of_2(plan.splits), num_warps=plan.num_warps, **flags,
        )
    return (dx if needs_dx else None), _param_grad(dgamma_rows, gamma), _param_grad(dbeta_rows, beta)


class AdaGNFunction(torch.autograd.Function):
    """Autograd of the Triton AdaGN; x must be contiguous. Differentiable once (double backward raises)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, num_groups, eps, silu):
        y, mean, rstd = adagn_fwd(x, gamma, beta, num_groups, eps, silu)
        ctx.save_for_backward(x, gamma, beta, mean, rstd)
        ctx.num_groups, ctx.silu = num_groups, silu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, gamma, beta, mean, rstd = ctx.saved_tensors
        needs_dx, needs_dgamma, needs_dbeta = ctx.needs_input_grad[:3]
        dx, dgamma, dbeta = adagn_bwd(
            dy.contiguous(), x, gamma, beta, mean, rstd, ctx.num_groups, ctx.silu, needs_dx
        )
        return dx, (dgamma if needs_dgamma else None), (dbeta if needs_dbeta else None), None, None, None


def _check_param(name, param, x):
    if param is None:
        return
    check_tensor(name, param, dtypes=PARAM_DTYPES)
    n, c = x.shape[:2]
    if tuple(param.shape) not in ((n, c), (c,)):
        raise ValueError(
            f"{name} has shape {tuple(param.shape)}; expected (N, C) = {(n, c)} or (C,) = {(c,)} for x of shape {tuple(x.shape)}"
        )


def _validate(x, gamma, beta, num_groups, eps, silu):
    check_tensor("x", x, dtypes=X_DTYPES)
    if x.dim() < 3:
        raise ValueError(f"x must have at least 3 dimensions (N, C, *spatial), got shape {tuple(x.shape)}")
    if x.shape[0] > 0 and 0 in x.shape[1:]:
        raise ValueError(
            f"x has shape {tuple(x.shape)}: C and every spatial dimension must be > 0 (only the batch may be empty)"
        )
    channels = x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int):
        raise TypeError(f"num_groups must be an int, got {type(num_groups).__name__}")
    if num_groups < 1 or channels % num_groups != 0:
        raise ValueError(f"num_groups={num_groups} must be >= 1 and divide the C={channels} channels of x")
    _check_param("gamma", gamma, x)
    _check_param("beta", beta, x)
    check_same_device(x=x, gamma=gamma, beta=beta)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    check_bool("silu", silu)


def _memory_format(x):
    """The channels-last format x is laid out in, or None when it is NCHW-contiguous or neither."""
    if x.is_contiguous():
        return None
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return None


def adagn(x, gamma, beta, num_groups, eps=1e-6, silu=False):
    """GroupNorm without affine (fp32 statistics), then `* gamma + beta`, then SiLU if silu.

    x: (N, C, *spatial), fp32/fp16/bf16 (or fp64, see below); gamma, beta: (N, C) per sample, (C,)
    per channel, or None, each independently, any float dtype (computed in fp32); num_groups divides
    C; silu a bool. A group of one element normalises to 0 (the output is beta).
    Returns x's shape and dtype. A CUDA tensor runs the Triton kernels, a CPU tensor the
    reference (the Triton interpreter under TRITON_INTERPRET=1). The kernels read NCHW: any other
    layout is copied to it first, and a channels_last input gets a channels_last output (a
    second copy; keep x NCHW-contiguous on hot paths). Differentiable once w.r.t. x, gamma, beta.
    float64 x runs the reference in float64 on every device (for gradcheck and fp64 models; the
    kernels accumulate in fp32, so they would not give fp64 results).
    """
    _validate(x, gamma, beta, num_groups, eps, silu)
    if not use_triton(x) or x.numel() == 0 or x.dtype == torch.float64:
        return reference.adagn(x, gamma, beta, num_groups, eps=eps, silu=silu)
    memory_format = _memory_format(x)
    y = AdaGNFunction.apply(x.contiguous(), gamma, beta, num_groups, float(eps), silu)
    return y if memory_format is None else y.contiguous(memory_format=memory_format)
