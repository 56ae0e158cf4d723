"""kernels.upfirdn2d against the reference, the official op's fixture, autograd checks and bad input.

Runs the Triton kernels on the `device` fixture (tests/conftest.py: the CPU through TRITON_INTERPRET=1,
or a CUDA GPU), on small shapes.
"""

import importlib
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import reference
from kernels.upfirdn2d import UpFirDn2dFunction, output_size, upfirdn2d, upfirdn2d_fwd, upfirdn2d_xy
from tests.tolerances import assert_close

# kernels/__init__ binds the name kernels.upfirdn2d to the function; the module is in sys.modules.
upfirdn2d_module = importlib.import_module("kernels.upfirdn2d")

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "upfirdn2d.pt"
FIR_1331 = [1.0, 3.0, 3.0, 1.0]

SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (1, 2, 8, 8)]
# (id, kernel shape, up, down, pad): pad is (p0, p1) or (x0, x1, y0, y1)
CASES = [
    ("k1x1", (1, 1), 1, 1, (0, 0)),
    ("k3x3-up3-pad1,1", (3, 3), 3, 1, (1, 1)),
    ("k4x4-up2-pad2,1-fast", (4, 4), 2, 1, (2, 1)),
    ("k4x4-down2-pad1,1-fast", (4, 4), 1, 2, (1, 1)),
    ("k4x4-up2-pad2,2-fast-odd", (4, 4), 2, 1, (2, 2)),
    ("k4x4-down2-pad1,2-fast-odd", (4, 4), 1, 2, (1, 2)),
    ("k3x3-up2-down2-pad1,2", (3, 3), 2, 2, (1, 2)),
    ("k2x3-up2-down3-aniso", (2, 3), 2, 3, (1, 0, 2, 1)),
    ("k3x3-down2-negpad", (3, 3), 1, 2, (-1, 2, 0, -1)),
    ("k4x4-up3-down2-negpad", (4, 4), 3, 2, (3, -1, 2, 0)),
    ("k2x3-down3-pad3", (2, 3), 1, 3, (3, 3)),
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _full_pad(pad):
    return (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)


def _valid(shape, kernel_shape, up, down, pad):
    pad_x0, pad_x1, pad_y0, pad_y1 = _full_pad(pad)
    out_h, out_w = output_size(*shape[2:], *kernel_shape, up, up, down, down, pad_x0, pad_x1, pad_y0, pad_y1)
    return out_h > 0 and out_w > 0


# Only combinations with a nonempty output (a 1x1 image cannot be cropped); chosen at collection.
FORWARD_PARAMS = [
    pytest.param(shape, case, id=f"{'x'.join(map(str, shape))}-{case[0]}")
    for shape in SHAPES
    for case in CASES
    if _valid(shape, *case[1:])
]


def _fir_kernel(k, gain=1.0, device="cpu"):
    """up_or_down_sampling._setup_kernel(k) * gain: outer(k, k) / sum."""
    k = torch.tensor(k, dtype=torch.float32, device=device)
    k2 = torch.outer(k, k)
    return k2 / k2.sum() * gain


@pytest.fixture(scope="module")
def fixture(device):
    return torch.load(FIXTURE, weights_only=True, map_location=device)


def test_dispatch_runs_triton(device):
    """--device cpu: the interpreter runs Triton on CPU tensors; --device cuda: compiled, no interpreter."""
    assert kernels.INTERPRET == (device.type == "cpu")
    assert upfirdn2d_module.use_triton(torch.zeros(1, device=device))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("shape, case", FORWARD_PARAMS)
def test_forward_and_grad_match_reference(device, shape, case, dtype):
    _, kernel_shape, up, down, pad = case
    x = torch.randn(shape, device=device).to(dtype)
    kernel = torch.randn(kernel_shape, device=device)
    x_triton = x.clone().requires_grad_(True)
    x_ref = x.clone().requires_grad_(True)
    out = upfirdn2d(x_triton, kernel, up=up, down=down, pad=pad)
    expected = reference.upfirdn2d(x_ref, kernel, up=up, down=down, pad=pad)
    assert out.dtype == dtype and out.shape == expected.shape
    assert_close(out, expected)
    grad_out = torch.randn(expected.shape, device=device).to(dtype)
    (grad_x,) = torch.autograd.grad(out, x_triton, grad_out)
    (expected_grad_x,) = torch.autograd.grad(expected, x_ref, grad_out)
    assert grad_x.dtype == dtype
    assert_close(grad_x, expected_grad_x)


@pytest.mark.parametrize(
    "up_x, up_y, down_x, down_y",
    [(2, 1, 1, 2), (1, 3, 2, 1), (3, 2, 2, 3)],
    ids=["up2x-down2y", "up3y-down2x", "up3x2y-down2x3y"],
)
def test_per_axis_factors_match_reference(device, up_x, up_y, down_x, down_y):
    x = torch.randn(2, 3, 5, 7, device=device, requires_grad=True)
    kernel = torch.randn(2, 3, device=device)
    pads = (1, 0, 2, -1)
    out = upfirdn2d_xy(x, kernel, up_x, up_y, down_x, down_y, *pads)
    expected = reference.upfirdn2d_native(x, kernel, up_x, up_y, down_x, down_y, *pads)
    assert_close(out, expected)
    grad_out = torch.randn(expected.shape, device=device)
    assert_close(torch.autograd.grad(out, x, grad_out)[0], torch.autograd.grad(expected, x, grad_out)[0])


def test_non_contiguous_input(device):
    x = torch.randn(2, 3, 7, 5, device=device).transpose(2, 3)
    kernel = _fir_kernel(FIR_1331, device=device)
    assert not x.is_contiguous()
    assert_close(upfirdn2d(x, kernel, down=2, pad=(1, 1)), reference.upfirdn2d(x, kernel, down=2, pad=(1, 1)))
    assert_close(upfirdn2d(x, kernel, up=3, pad=(0, 1)), reference.upfirdn2d(x, kernel, up=3, pad=(0, 1)))


def test_empty_batch(device):
    out = upfirdn2d(torch.randn(0, 3, 4, 4, device=device), _fir_kernel(FIR_1331, device=device), up=2, pad=(2, 1))
    assert out.shape == (0, 3, 8, 8)


def test_float64_computes_in_float64(device):
    # Entries of 1 + 2^-40 would round away in float32; a float64 path keeps them exactly.
    x = torch.full((1, 1, 3, 3), 1.0 + 2.0**-40, dtype=torch.float64, device=device)
    out = upfirdn2d(x, torch.ones(1, 1, dtype=torch.float64, device=device))
    assert out.dtype == torch.float64
    assert torch.equal(out, x)


def test_kernel_gets_no_gradient(device):
    x = torch.randn(1, 2, 4, 4, device=device, requires_grad=True)
    kernel = _fir_kernel(FIR_1331, device=device).requires_grad_(True)
    upfirdn2d(x, kernel, up=2, pad=(2, 1)).sum().backward()
    assert x.grad is not None and kernel.grad is None


def test_double_backward_matches_reference(device):
    """The R1 penalty's pattern: differentiate a function of grad_x with respect to x."""
    kernel = _fir_kernel(FIR_1331, device=device)
    x = torch.randn(2, 2, 5, 6, device=device)

    def r1(fn, **kw):
        x_req = x.clone().requires_grad_(True)
        out = fn(x_req, kernel, **kw)
        (grad_x,) = torch.autograd.grad((out**3).sum(), x_req, create_graph=True)
        return torch.autograd.grad(grad_x.square().sum(), x_req)[0]

    for kw in (dict(up=2, pad=(2, 1)), dict(down=2, pad=(1, 1)), dict(up=3, down=2, pad=(1, -1, 2, 0))):
        assert_close(r1(upfirdn2d, **kw), r1(reference.upfirdn2d, **kw))


GRADCHECK_CASES = [
    pytest.param((1, 1, 2, 3), (4, 4), (2, 2, 1, 1, 2, 1, 2, 1), id="up2-fast"),
    pytest.param((1, 1, 5, 4), (4, 4), (1, 1, 2, 2, 1, 1, 1, 1), id="down2-fast"),
    pytest.param((1, 2, 3, 2), (2, 3), (2, 1, 1, 3, 1, -1, 2, 0), id="generic-aniso-negpad"),
]


@pytest.mark.parametrize("shape, kernel_shape, args", GRADCHECK_CASES)
def test_gradcheck_and_gradgradcheck_float64(device, shape, kernel_shape, args):
    x = torch.randn(shape, dtype=torch.float64, device=device, requires_grad=True)
    kernel = torch.randn(kernel_shape, dtype=torch.float64, device=device)

    def fn(x):
        return UpFirDn2dFunction.apply(x, kernel, *args)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# Case names, arguments and shapes all come from the fixture file (a hidden set holds other cases), loaded
# here on the CPU to parametrise at collection; the tests use the `fixture` copy on the test device.
COLLECTED = torch.load(FIXTURE, weights_only=True)

# The stored `function` of each upfirdn2d case says which official call made it; the stored keys are its arguments.
NATIVE_FUNCTION = "score_sde.op.upfirdn2d.upfirdn2d_native"
PUBLIC_FUNCTION = "score_sde.op.upfirdn2d.upfirdn2d"
NATIVE_KEYS = ("up_x", "up_y", "down_x", "down_y", "pad_x0", "pad_x1", "pad_y0", "pad_y1")


def _official_function(case):
    """The official function's dotted name: the first word of `function` ('... (CPU -> upfirdn2d_native)' follows
    the public one's name)."""
    return case["function"].split()[0]


@pytest.mark.parametrize("name", list(COLLECTED["upfirdn2d"]))
def test_fixture_official_upfirdn2d(fixture, name):
    case = fixture["upfirdn2d"][name]
    x = fixture["x"].clone().requires_grad_(True)
    function = _official_function(case)
    if function == NATIVE_FUNCTION:
        out = upfirdn2d_xy(x, case["kernel"], *[case[k] for k in NATIVE_KEYS])
    elif function == PUBLIC_FUNCTION:
        out = upfirdn2d(x, case["kernel"], up=case["up"], down=case["down"], pad=tuple(case["pad"]))
    else:
        raise AssertionError(f"case {name}: unknown official function {case['function']!r}")
    assert out.shape == case["out"].shape
    assert_close(out, case["out"])
    (grad_x,) = torch.autograd.grad(out, x, case["grad_out"])
    assert_close(grad_x, case["grad_x"])


def _upsample_2d(x, k, factor=2, gain=1):
    """NCSN++ upsample_2d: the exact upfirdn2d call of score_sde/models/up_or_down_sampling.py."""
    kernel = _fir_kernel(k, gain * factor**2, x.device)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def _downsample_2d(x, k, factor=2, gain=1):
    kernel = _fir_kernel(k, gain, x.device)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))


def _conv_downsample_2d(x, w, k, factor=2, gain=1):
    kernel = _fir_kernel(k, gain, x.device)
    p = (kernel.shape[0] - factor) + (w.shape[-1] - 1)
    return F.conv2d(upfirdn2d(x, kernel, pad=((p + 1) // 2, p // 2)), w, stride=factor)


# up_or_down_sampling functions built on upfirdn2d, called as the stored `call` string says (k, factor, gain).
SAMPLING_FUNCTIONS = {
    "upsample_2d": lambda x, case, **kw: _upsample_2d(x, **kw),
    "downsample_2d": lambda x, case, **kw: _downsample_2d(x, **kw),
    "conv_downsample_2d": lambda x, case, **kw: _conv_downsample_2d(x, case["w"], **kw),
}
# The other recorded functions do not involve upfirdn2d (naive_*), cannot run (the official upsample_conv_2d),
# or are not official code (the harness's fixed upsample_conv_2d).
NOT_UPFIRDN2D = {"naive_upsample_2d", "naive_downsample_2d", "upsample_conv_2d", "upsample_conv_2d_fixed"}


def _parse_call(call):
    """(function name, k, factor, gain) of a stored call such as 'conv_downsample_2d(x, w, k=[1,3,3,1], factor=2)';
    k=None becomes the official default [1] * factor, a missing factor / gain the official defaults 2 / 1."""
    name = re.match(r"(?:harness )?(\w+)\(", call).group(1)
    factor = re.search(r"factor=(\d+)", call)
    factor = int(factor.group(1)) if factor else 2
    gain = re.search(r"gain=([-\d.e]+)", call)
    gain = float(gain.group(1)) if gain else 1.0
    k = re.search(r"\[([-\d.,\s]+)\]", call)
    k = [float(v) for v in k.group(1).split(",")] if k else [1.0] * factor
    return name, k, factor, gain


SAMPLING_CASES = [
    name for name, case in COLLECTED["up_or_down_sampling"].items() if _parse_call(case["call"])[0] in SAMPLING_FUNCTIONS
]


def test_fixture_sampling_calls_all_known():
    """Every recorded call is either checked below or known not to need upfirdn2d, and at least one is checked."""
    names = {_parse_call(case["call"])[0] for case in COLLECTED["up_or_down_sampling"].values()}
    assert names <= SAMPLING_FUNCTIONS.keys() | NOT_UPFIRDN2D, names
    assert SAMPLING_CASES


SETUP_KERNELS = [key for key in COLLECTED if key.startswith("setup_kernel_")]


@pytest.mark.parametrize("key", SETUP_KERNELS)
def test_fixture_setup_kernel(fixture, device, key):
    """`setup_kernel_1331` is _setup_kernel([1, 3, 3, 1]): the taps are the digits of the key."""
    taps = [float(digit) for digit in key[len("setup_kernel_"):]]
    assert_close(_fir_kernel(taps, device=device), fixture[key], rtol=0, atol=0)


@pytest.mark.parametrize("name", SAMPLING_CASES)
def test_fixture_ncsnpp_sampling_calls(fixture, name):
    case = fixture["up_or_down_sampling"][name]
    function, k, factor, gain = _parse_call(case["call"])
    x = fixture["x"].clone().requires_grad_(True)
    out = SAMPLING_FUNCTIONS[function](x, case, k=k, factor=factor, gain=gain)
    assert out.shape == case["out"].shape
    assert_close(out, case["out"])
    (grad_x,) = torch.autograd.grad(out, x, case["grad_out"])
    assert_close(grad_x, case["grad_x"])


def test_reference_path_supports_double_backward(monkeypatch):
    """Without the interpreter a CPU tensor takes the reference, which must also differentiate twice.

    CPU tensors under either --device."""
    monkeypatch.setattr(upfirdn2d_module, "use_triton", lambda *tensors: False)
    calls = []
    monkeypatch.setattr(upfirdn2d_module, "upfirdn2d_fwd", lambda *args: calls.append(args))
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    out = upfirdn2d(x, _fir_kernel(FIR_1331), up=2, pad=(2, 1))
    (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (grad_grad,) = torch.autograd.grad(grad_x.sum(), x)
    assert not calls and grad_grad.shape == x.shape


def test_upfirdn2d_fwd_dispatches_fast_paths(monkeypatch, device):
    launched = []
    for name in ("_upfirdn2d_fwd_kernel", "_upfirdn2d_up2_kernel", "_upfirdn2d_down2_kernel"):
        original = getattr(upfirdn2d_module, name)
        monkeypatch.setattr(upfirdn2d_module, name, _Recorder(original, name, launched))
    x = torch.randn(1, 1, 4, 4, device=device)
    kernel = _fir_kernel(FIR_1331, device=device)
    upfirdn2d_fwd(x, kernel, 2, 2, 1, 1, 2, 1, 2, 1)
    upfirdn2d_fwd(x, kernel, 1, 1, 2, 2, 1, 1, 1, 1)
    upfirdn2d_fwd(x, kernel, 2, 2, 1, 1, 1, 2, 1, 2)
    upfirdn2d_fwd(x, kernel[:3, :3], 1, 1, 2, 2, 1, 1, 1, 1)
    assert launched == ["_upfirdn2d_up2_kernel", "_upfirdn2d_down2_kernel", "_upfirdn2d_fwd_kernel", "_upfirdn2d_fwd_kernel"]


class _Recorder:
    """Stands in for a jitted kernel: records its name on launch, then launches the real one."""

    def __init__(self, kernel, name, log):
        self.kernel, self.name, self.log = kernel, name, log

    def __getitem__(self, grid):
        self.log.append(self.name)
        return self.kernel[grid]


# Validation happens before dispatch, the same on every device: checked on CPU tensors under either --device.
X = torch.zeros(1, 1, 4, 4)
K = torch.ones(2, 2)
BAD_INPUTS = [
    pytest.param(lambda: upfirdn2d(torch.zeros(4, 4), K), ValueError, "x must have 4 dimensions", id="x-2d"),
    pytest.param(lambda: upfirdn2d(torch.zeros(1, 1, 1, 4, 4), K), ValueError, "x must have 4 dimensions", id="x-5d"),
    pytest.param(lambda: upfirdn2d(X.long(), K), TypeError, "x has dtype int64", id="x-int"),
    pytest.param(lambda: upfirdn2d(X.numpy(), K), TypeError, "x must be a torch.Tensor", id="x-numpy"),
    pytest.param(lambda: upfirdn2d(X, [[1.0, 1.0]]), TypeError, "kernel must be a torch.Tensor", id="kernel-list"),
    pytest.param(lambda: upfirdn2d(X, torch.ones(4)), ValueError, "kernel must have 2 dimensions", id="kernel-1d"),
    pytest.param(lambda: upfirdn2d(X, torch.ones(2, 2, 2)), ValueError, "kernel must have 2 dimensions", id="kernel-3d"),
    pytest.param(lambda: upfirdn2d(X, torch.ones(2, 2, dtype=torch.int32)), TypeError, "kernel has dtype int32", id="kernel-int"),
    pytest.param(lambda: upfirdn2d(X, torch.ones(0, 2)), ValueError, "kernel must not be empty", id="kernel-empty"),
    pytest.param(lambda: upfirdn2d(X, K, up=0), ValueError, "up must be >= 1", id="up-0"),
    pytest.param(lambda: upfirdn2d(X, K, down=-1), ValueError, "down must be >= 1", id="down-negative"),
    pytest.param(lambda: upfirdn2d(X, K, up=2.0), TypeError, "up must be an int", id="up-float"),
    pytest.param(lambda: upfirdn2d(X, K, down=True), TypeError, "down must be an int", id="down-bool"),
    pytest.param(lambda: upfirdn2d(X, K, pad=(1,)), ValueError, "pad must have 2 entries", id="pad-len1"),
    pytest.param(lambda: upfirdn2d(X, K, pad=(1, 1, 1)), ValueError, "pad must have 2 entries", id="pad-len3"),
    pytest.param(lambda: upfirdn2d(X, K, pad=1), TypeError, "pad must be a tuple", id="pad-int"),
    pytest.param(lambda: upfirdn2d(X, K, pad=(1.5, 0)), TypeError, "pad entries must be ints", id="pad-float"),
    pytest.param(lambda: upfirdn2d(X, torch.ones(5, 2)), ValueError, r"empty: out_h = \(4\*1 \+ 0 \+ 0 - 5\)", id="out-h-empty"),
    pytest.param(lambda: upfirdn2d(X, K, pad=(0, -3, 0, 0)), ValueError, r"empty: out_w = ", id="out-w-crop"),
    pytest.param(lambda: upfirdn2d(X, K, pad=(-4, 0)), ValueError, r"out_h = .*; out_w = ", id="out-both-empty"),
    pytest.param(lambda: upfirdn2d_xy(X, K, 1, 0, 1, 1, 0, 0, 0, 0), ValueError, "up_y must be >= 1", id="xy-up_y-0"),
    pytest.param(lambda: upfirdn2d(X, K.to("meta")), ValueError, "must be on one device", id="mixed-devices"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
