"""Fused FIR resampling: zero-insert upsample, pad (negative pads crop), FIR filter, downsample.

Semantics of the official DDGAN op (score_sde/op/upfirdn2d.py, from rosinality/stylegan2-pytorch):
the kernel is applied as a true convolution (flipped), and the output of x (N, C, H, W) is
(N, C, (H*up_y + pad_y0 + pad_y1 - kh) // down_y + 1, (W*up_x + pad_x0 + pad_x1 - kw) // down_x + 1).

Polyphase formulation, per axis: output row oy covers the padded, upsampled rows
oy*down + j (tap j = 0..kh-1), i.e. upsampled row oy*down + j - pad0, which is a real sample
(not an inserted zero) only when divisible by up. So each output row reads ceil(kh / up) input rows,
iy = (oy*down + j - pad0) / up, each with kernel row kh-1-j; inserted zeros are never touched.

The backward is the same op with the kernel flipped, up and down swapped and the pads of the
official `UpFirDn2d.backward`; since the backward calls the same autograd Function, the op is
differentiable to any order (DDGAN's R1 penalty differentiates through it twice).
"""

import torch
import triton
import triton.language as tl

from kernels import reference
from kernels._checks import FLOAT_DTYPES, check_same_device, check_tensor, use_triton
from kernels._library import launcher_op

X_DTYPES = FLOAT_DTYPES + (torch.float64,)
# Elements per program: output pixels for the generic and down2 kernels, input positions for up2
# (each of which produces a 2x2 block of outputs).
OUTPUTS_PER_PROGRAM = 1024
INPUTS_PER_PROGRAM_UP2 = 256
MAX_BLOCK_W = 64


@triton.jit
def _program_tile(planes, tiles_h, tiles_w, BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's tile of a 1-D grid over (plane blocks, tiles_h, tiles_w).

    Returns its planes (BLOCK_C,), their in-bounds mask, and the first row and column of its
    (BLOCK_H, BLOCK_W) tile (of outputs, or for the up2 kernel of inputs).
    """
    pid = tl.program_id(0).to(tl.int64)
    tile_x = pid % tiles_w
    tile_y = (pid // tiles_w) % tiles_h
    plane = (pid // (tiles_w * tiles_h)) * BLOCK_C + tl.arange(0, BLOCK_C)
    return plane, plane < planes, tile_y * BLOCK_H, tile_x * BLOCK_W


@triton.jit
def _load_tile(x_ptr, plane, plane_ok, rows, row_ok, cols, col_ok, in_h, in_w, ACC_DTYPE: tl.constexpr):
    """x[plane, rows, cols] of x (planes, in_h, in_w) as a (BLOCK_C, BLOCK_H, BLOCK_W) ACC_DTYPE tile, 0 where masked."""
    ptrs = x_ptr + (plane * in_h * in_w)[:, None, None] + (rows * in_w)[None, :, None] + cols[None, None, :]
    mask = plane_ok[:, None, None] & row_ok[None, :, None] & col_ok[None, None, :]
    return tl.load(ptrs, mask=mask, other=0.0).to(ACC_DTYPE)


@triton.jit
def _store_tile(out_ptr, value, plane, plane_ok, rows, cols, out_h, out_w):
    """Store the (BLOCK_C, BLOCK_H, BLOCK_W) value at out[plane, rows, cols] of out (planes, out_h, out_w), in bounds only."""
    ptrs = out_ptr + (plane * out_h * out_w)[:, None, None] + (rows * out_w)[None, :, None] + cols[None, None, :]
    mask = plane_ok[:, None, None] & (rows < out_h)[None, :, None] & (cols < out_w)[None, None, :]
    tl.store(ptrs, value.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _upfirdn2d_fwd_kernel(
    x_ptr,
    kernel_ptr,
    out_ptr,
    planes,
    in_h,
    in_w,
    out_h,
    out_w,
    tiles_h,
    tiles_w,
    shift_y,
    shift_x,
    lead_y,
    lead_x,
    UP_Y: tl.constexpr,
    UP_X: tl.constexpr,
    DOWN_Y: tl.constexpr,
    DOWN_X: tl.constexpr,
    KERNEL_H: tl.constexpr,
    KERNEL_W: tl.constexpr,
    TAPS_Y: tl.constexpr,
    TAPS_X: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
):
    """Any up/down/pad/kernel: one (BLOCK_C planes, BLOCK_H, BLOCK_W) tile of outputs per program.

    shift = up*lead - pad0 >= 0 (lead = ceil(max(pad0, 0) / up)) keeps every index nonnegative,
    so % and // need no care for negative operands.
    """
    plane, plane_ok, row0, col0 = _program_tile(planes, tiles_h, tiles_w, BLOCK_C, BLOCK_H, BLOCK_W)
    out_y = row0 + tl.arange(0, BLOCK_H)  # (BLOCK_H,)
    out_x = col0 + tl.arange(0, BLOCK_W)  # (BLOCK_W,)

    # Upsampled row of tap 0 (plus up*lead); the first tap on a real sample, and its input row.
    tap0_y = out_y * DOWN_Y + shift_y
    first_tap_y = (UP_Y - tap0_y % UP_Y) % UP_Y
    first_in_y = (tap0_y + first_tap_y) // UP_Y - lead_y
    tap0_x = out_x * DOWN_X + shift_x
    first_tap_x = (UP_X - tap0_x % UP_X) % UP_X
    first_in_x = (tap0_x + first_tap_x) // UP_X - lead_x

    acc = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    for step_y in tl.static_range(TAPS_Y):
        tap_y = first_tap_y + step_y * UP_Y
        in_y = first_in_y + step_y
        tap_y_ok = tap_y < KERNEL_H
        row_ok = tap_y_ok & (in_y >= 0) & (in_y < in_h)
        for step_x in tl.static_range(TAPS_X):
            tap_x = first_tap_x + step_x * UP_X
            in_x = first_in_x + step_x
            tap_x_ok = tap_x < KERNEL_W
            col_ok = tap_x_ok & (in_x >= 0) & (in_x < in_w)
            # True convolution: tap j meets kernel element kh-1-j. (BLOCK_H, BLOCK_W) gather.
            weight_ptr = kernel_ptr + (KERNEL_H - 1 - tap_y)[:, None] * KERNEL_W + (KERNEL_W - 1 - tap_x)[None, :]
            weight = tl.load(weight_ptr, mask=tap_y_ok[:, None] & tap_x_ok[None, :], other=0.0)
            x_tile = _load_tile(x_ptr, plane, plane_ok, in_y, row_ok, in_x, col_ok, in_h, in_w, ACC_DTYPE)
            acc += x_tile * weight[None, :, :]

    _store_tile(out_ptr, acc, plane, plane_ok, out_y, out_x, out_h, out_w)


@triton.jit
def _upfirdn2d_up2_kernel(
    x_ptr,
    kernel_ptr,
    out_ptr,
    planes,
    in_h,
    in_w,
    out_h,
    out_w,
    tiles_h,
    tiles_w,
    BLOCK_C: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
):
    """up=2, down=1, 4x4 kernel, pad0=2 on both axes (pad1 free: it only sets the output size).

    A program owns (BLOCK_C, BLOCK_H, BLOCK_W) input positions (iy, ix) and writes the outputs
    (2*iy + py, 2*ix + px), py, px in {0, 1}: a (BLOCK_C, 2*BLOCK_H, 2*BLOCK_W) output tile.
    Output phase (py, px) reads inputs (iy + dy - 1, ix + dx - 1) with kernel element
    (3 + py - 2*dy, 3 + px - 2*dx) where that lies in 0..3, so each of the 9 shifted input tiles
    is loaded once and feeds every phase that uses it: 16 multiply-adds per input position.
    """
    plane, plane_ok, row0, col0 = _program_tile(planes, tiles_h, tiles_w, BLOCK_C, BLOCK_H, BLOCK_W)
    in_y = row0 + tl.arange(0, BLOCK_H)  # (BLOCK_H,)
    in_x = col0 + tl.arange(0, BLOCK_W)  # (BLOCK_W,)

    acc_even_even = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    acc_even_odd = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    acc_odd_even = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    acc_odd_odd = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    for dy in tl.static_range(3):
        src_y = in_y + (dy - 1)
        row_ok = (src_y >= 0) & (src_y < in_h)
        for dx in tl.static_range(3):
            src_x = in_x + (dx - 1)
            col_ok = (src_x >= 0) & (src_x < in_w)
            x_tile = _load_tile(x_ptr, plane, plane_ok, src_y, row_ok, src_x, col_ok, in_h, in_w, ACC_DTYPE)
            if dy < 2:
                if dx < 2:
                    acc_even_even += x_tile * tl.load(kernel_ptr + (3 - 2 * dy) * 4 + (3 - 2 * dx))
                if dx > 0:
                    acc_even_odd += x_tile * tl.load(kernel_ptr + (3 - 2 * dy) * 4 + (4 - 2 * dx))
            if dy > 0:
                if dx < 2:
                    acc_odd_even += x_tile * tl.load(kernel_ptr + (4 - 2 * dy) * 4 + (3 - 2 * dx))
                if dx > 0:
                    acc_odd_odd += x_tile * tl.load(kernel_ptr + (4 - 2 * dy) * 4 + (4 - 2 * dx))

    # Interleave the column phases so each output row segment is stored contiguously:
    # (BLOCK_C, BLOCK_H, 2*BLOCK_W) tiles of the even and the odd output rows.
    out_x = 2 * col0 + tl.arange(0, 2 * BLOCK_W)  # (2*BLOCK_W,)
    out_even_y = 2 * in_y
    _store_tile(out_ptr, tl.interleave(acc_even_even, acc_even_odd), plane, plane_ok, out_even_y, out_x, out_h, out_w)
    _store_tile(out_ptr, tl.interleave(acc_odd_even, acc_odd_odd), plane, plane_ok, out_even_y + 1, out_x, out_h, out_w)


@triton.jit
def _upfirdn2d_down2_kernel(
    x_ptr,
    kernel_ptr,
    out_ptr,
    planes,
    in_h,
    in_w,
    out_h,
    out_w,
    tiles_h,
    tiles_w,
    BLOCK_C: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
    ACC_DTYPE: tl.constexpr,
):
    """up=1, down=2, 4x4 kernel, pad0=1 on both axes (pad1 free: it only sets the output size).

    A program owns a (BLOCK_C, BLOCK_H, BLOCK_W) output tile; output (oy, ox) reads the 4x4 input
    window starting at (2*oy - 1, 2*ox - 1), tap (ty, tx) with kernel element (3 - ty, 3 - tx).
    """
    plane, plane_ok, row0, col0 = _program_tile(planes, tiles_h, tiles_w, BLOCK_C, BLOCK_H, BLOCK_W)
    out_y = row0 + tl.arange(0, BLOCK_H)  # (BLOCK_H,)
    out_x = col0 + tl.arange(0, BLOCK_W)  # (BLOCK_W,)

    acc = tl.zeros((BLOCK_C, BLOCK_H, BLOCK_W), dtype=ACC_DTYPE)
    for ty in tl.static_range(4):
        src_y = 2 * out_y + (ty - 1)
        row_ok = (src_y >= 0) & (src_y < in_h)
        for tx in tl.static_range(4):
            src_x = 2 * out_x + (tx - 1)
            col_ok = (src_x >= 0) & (src_x < in_w)
            x_tile = _load_tile(x_ptr, plane, plane_ok, src_y, row_ok, src_x, col_ok, in_h, in_w, ACC_DTYPE)
            acc += x_tile * tl.load(kernel_ptr + (3 - ty) * 4 + (3 - tx))

    _store_tile(out_ptr, acc, plane, plane_ok, out_y, out_x, out_h, out_w)


def output_size(in_h, in_w, kernel_h, kernel_w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    """(out_h, out_w) of the official op; either may be <= 0 for impossible arguments."""
    out_h = (in_h * up_y + pad_y0 + pad_y1 - kernel_h) // down_y + 1
    out_w = (in_w * up_x + pad_x0 + pad_x1 - kernel_w) // down_x + 1
    return out_h, out_w


def _tile(planes, rows, cols, elements):
    """(BLOCK_C, BLOCK_H, BLOCK_W): about `elements` per program, several planes when images are small."""
    block_w = min(triton.next_power_of_2(cols), MAX_BLOCK_W)
    block_h = min(triton.next_power_of_2(rows), max(1, elements // block_w))
    block_c = min(triton.next_power_of_2(planes), max(1, elements // (block_h * block_w)))
    return block_c, block_h, block_w


def _grid(planes, rows, cols, block_c, block_h, block_w):
    tiles_h, tiles_w = triton.cdiv(rows, block_h), triton.cdiv(cols, block_w)
    return (triton.cdiv(planes, block_c) * tiles_h * tiles_w,), tiles_h, tiles_w


def _upfirdn2d_fwd_fake(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    n, c, in_h, in_w = x.shape
    out_h, out_w = output_size(in_h, in_w, *kernel.shape, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
    return x.new_empty((n, c, out_h, out_w))


@launcher_op(
    "upfirdn2d_fwd",
    "(Tensor x, Tensor kernel, int up_x, int up_y, int down_x, int down_y, int pad_x0, int pad_x1, int pad_y0, "
    "int pad_y1) -> Tensor",
    fake=_upfirdn2d_fwd_fake,
)
def upfirdn2d_fwd(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    """Launch the Triton kernel (no autograd, arguments assumed valid); per-axis up/down/pad.

    x (N, C, H, W) float16/bfloat16/float32/float64; kernel (kh, kw) on x's device.
    Returns (N, C, out_h, out_w) in x's dtype, computed in float32 (float64 for float64 x).
    Dispatches up=2 / down=2 with a 4x4 kernel and the pads of upsample_2d / downsample_2d
    to the specialised kernels, everything else to the generic one.
    """
    n, c, in_h, in_w = x.shape
    kernel_h, kernel_w = kernel.shape
    out_h, out_w = output_size(in_h, in_w, kernel_h, kernel_w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
    x = x.contiguous()
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    kernel = kernel.to(dtype=acc_dtype).contiguous()
    out = torch.empty((n, c, out_h, out_w), dtype=x.dtype, device=x.device)
    planes = n * c
    if out.numel() == 0:
        return out
    acc_tl = tl.float64 if acc_dtype == torch.float64 else tl.float32
    square4 = kernel_h == 4 and kernel_w == 4
    if square4 and (up_x, up_y, down_x, down_y, pad_x0, pad_y0) == (2, 2, 1, 1, 2, 2):
        rows, cols = triton.cdiv(out_h, 2), triton.cdiv(out_w, 2)
        blocks = _tile(planes, rows, cols, INPUTS_PER_PROGRAM_UP2)
        grid, tiles_h, tiles_w = _grid(planes, rows, cols, *blocks)
        _upfirdn2d_up2_kernel[grid](
            x, kernel, out, planes, in_h, in_w, out_h, out_w, tiles_h, tiles_w,
            BLOCK_C=blocks[0], BLOCK_H=blocks[1], BLOCK_W=blocks[2], ACC_DTYPE=acc_tl,
        )
        return out
    blocks = _tile(planes, out_h, out_w, OUTPUTS_PER_PROGRAM)
    grid, tiles_h, tiles_w = _grid(planes, out_h, out_w, *blocks)
    if square4 and (up_x, up_y, down_x, down_y, pad_x0, pad_y0) == (1, 1, 2, 2, 1, 1):
        _upfirdn2d_down2_kernel[grid](
            x, kernel, out, planes, in_h, in_w, out_h, out_w, tiles_h, tiles_w,
            BLOCK_C=blocks[0], BLOCK_H=blocks[1], BLOCK_W=blocks[2], ACC_DTYPE=acc_tl,
        )
        return out
    lead_y, lead_x = triton.cdiv(max(pad_y0, 0), up_y), triton.cdiv(max(pad_x0, 0), up_x)
    _upfirdn2d_fwd_kernel[grid](
        x, kernel, out, planes, in_h, in_w, out_h, out_w, tiles_h, tiles_w,
        up_y * lead_y - pad_y0, up_x * lead_x - pad_x0, lead_y, lead_x,
        UP_Y=up_y, UP_X=up_x, DOWN_Y=down_y, DOWN_X=down_x, KERNEL_H=kernel_h, KERNEL_W=kernel_w,
        TAPS_Y=triton.cdiv(kernel_h, up_y), TAPS_X=triton.cdiv(kernel_w, up_x),
        BLOCK_C=blocks[0], BLOCK_H=blocks[1], BLOCK_W=blocks[2], ACC_DTYPE=acc_tl,
    )
    return out


class UpFirDn2dFunction(torch.autograd.Function):
    """upfirdn2d with per-axis arguments; differentiable in x to any order, never in the kernel.

    The backward is this same Function applied to grad_out with the kernel flipped, up and down
    swapped and the official g_pad (UpFirDn2d.backward), so autograd records it for higher orders.
    The kernel gets no gradient (None), as in the official op: it is a fixed FIR filter.
    """

    @staticmethod
    def forward(ctx, x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
        out = upfirdn2d_fwd(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
        ctx.save_for_backward(kernel)
        ctx.geometry = (x.shape[2], x.shape[3], out.shape[2], out.shape[3], up_x, up_y, down_x, down_y, pad_x0, pad_y0)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (kernel,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,) * 10
        in_h, in_w, out_h, out_w, up_x, up_y, down_x, down_y, pad_x0, pad_y0 = ctx.geometry
        kernel_h, kernel_w = kernel.shape
        g_pad_x0 = kernel_w - pad_x0 - 1
        g_pad_y0 = kernel_h - pad_y0 - 1
        g_pad_x1 = in_w * up_x - out_w * down_x + pad_x0 - up_x + 1
        g_pad_y1 = in_h * up_y - out_h * down_y + pad_y0 - up_y + 1
        grad_x = UpFirDn2dFunction.apply(
            grad_out.contiguous(), torch.flip(kernel, [0, 1]),
            down_x, down_y, up_x, up_y, g_pad_x0, g_pad_x1, g_pad_y0, g_pad_y1,
        )
        return (grad_x,) + (None,) * 9


def _check_factor(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_pad(pad):
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad must be a tuple (p0, p1) or (x0, x1, y0, y1) of ints, got {type(pad).__name__}")
    if len(pad) not in (2, 4):
        raise ValueError(f"pad must have 2 entries (p0, p1) or 4 (x0, x1, y0, y1), got {len(pad)}: {tuple(pad)}")
    for value in pad:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"pad entries must be ints, got {type(value).__name__} {value!r} in {tuple(pad)}")


def upfirdn2d_xy(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    """Per-axis upfirdn2d, the signature of the official `upfirdn2d_native`; validates and dispatches.

    x (N, C, H, W); kernel (kh, kw). Returns
    (N, C, (H*up_y + pad_y0 + pad_y1 - kh) // down_y + 1, (W*up_x + pad_x0 + pad_x1 - kw) // down_x + 1)
    in x's dtype. Triton for CUDA (or the CPU under TRITON_INTERPRET=1), else the reference.
    Differentiable in x to any order; the kernel receives no gradient on the Triton path.
    """
    check_tensor("x", x, ndim=4, dtypes=X_DTYPES)
    check_tensor("kernel", kernel, ndim=2, dtypes=X_DTYPES)
    check_same_device(x=x, kernel=kernel)
    if kernel.numel() == 0:
        raise ValueError(f"kernel must not be empty, got shape {tuple(kernel.shape)}")
    for name, value in (("up_x", up_x), ("up_y", up_y), ("down_x", down_x), ("down_y", down_y)):
        _check_factor(name, value)
    _check_pad((pad_x0, pad_x1, pad_y0, pad_y1))
    in_h, in_w = x.shape[2:]
    kernel_h, kernel_w = kernel.shape
    out_h, out_w = output_size(in_h, in_w, kernel_h, kernel_w, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
    empty = [
        f"{dim} = ({size}*{up} + {p0} + {p1} - {k}) // {down} + 1 = {out}"
        for dim, size, up, p0, p1, k, down, out in (
            ("out_h", in_h, up_y, pad_y0, pad_y1, kernel_h, down_y, out_h),
            ("out_w", in_w, up_x, pad_x0, pad_x1, kernel_w, down_x, out_w),
        )
        if out <= 0
    ]
    if empty:
        raise ValueError(f"upfirdn2d output would be empty: {'; '.join(empty)} (pads crop too much or kernel too large)")
    if use_triton(x):
        return UpFirDn2dFunction.apply(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
    return reference.upfirdn2d_native(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """The official DDGAN `upfirdn2d(input, kernel, up, down, pad)`.

    x (N, C, H, W) float16/bfloat16/float32/float64; kernel (kh, kw) FIR filter, applied as a true
    convolution (flipped); up, down ints >= 1 for both axes; pad (p0, p1) for both axes or
    (x0, x1, y0, y1), negative entries crop. Returns
    (N, C, (H*up + y0 + y1 - kh) // down + 1, (W*up + x0 + x1 - kw) // down + 1) in x's dtype,
    computed in float32 (float64 for float64 x). Differentiable in x to any order; like the
    official op, the kernel receives no gradient on the Triton path.
    NCSN++ upsample_2d: up=2, pad=(2, 1), kernel outer([1,3,3,1])/64 * 4; downsample_2d: down=2, pad=(1, 1).
    """
    _check_factor("up", up)
    _check_factor("down", down)
    _check_pad(pad)
    pad_x0, pad_x1, pad_y0, pad_y1 = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
    return upfirdn2d_xy(x, kernel, up, up, down, down, pad_x0, pad_x1, pad_y0, pad_y1)
