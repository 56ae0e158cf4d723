"""The compiled-kernel gate: every Triton kernel specialisation the launchers choose, compiled for Hopper
(sm_90a) and Ampere (sm_80) with Triton's own compiler and no GPU, and what the machine code says.

`python -m bench.kernel_gate --out bench/results/kernel-gate-sm90-<date>.json` writes the static report
(JSON, and a markdown table beside it); `--ci` compiles the subset tests/kernels/test_compiled_gate.py
asserts on (one aligned and one odd shape per kernel and dtype class).

How a specialisation is obtained: each case calls the public op of kernels/ (kernels.adagn, kernels.upfirdn2d,
kernels.q_sample, ...: its validation, layout handling and autograd Function, so the backward runs the
launches the dispatch picks for it) on CPU tensors made with torch.empty, with `use_triton` answering True as
it does for CUDA tensors, while every @triton.jit kernel of kernels/ has its `run` replaced by a recorder.
The recorder keeps what the launcher passed: grid, arguments, constexprs, num_warps, enable_fp_fusion.
Triton's own binder for a CUDA backend then turns those arguments into the launch's signature (pointer
dtypes), its 16-divisibility attributes (pointers 16-byte aligned, integers divisible by 16; the CPU
allocator aligns to 64 bytes and CUDA's to 512, so base tensors are aligned in both and views keep their
offsets) and its constexprs, exactly as JITFunction.run would, and
`triton.compile(ASTSource(...), target=GPUTarget(...))` compiles it. Nothing is launched.
AdaGN's plan depends on the GPU's SM count: the cases plan for a 132-SM H100 SXM / H200 (HOPPER_SMS).

From each compiled kernel: the -v log of Triton's own ptxas run (the ptxas that ships with Triton, Triton's
flags, the cubin it would load) gives registers, spill stores/loads, stack and ptxas' static shared memory; Triton's metadata its shared memory;
the PTX the width of every global load and store instruction. From each launch: the bytes it moves (every
distinct tensor argument once: the minimum traffic; optional outputs that are absent are passed as another
argument's pointer and so count once) and that many bytes' time at the DRAM bandwidth of an H100 and an
H200, a floor that a GPU run compares its measured time with.

Kernels run as interpreted functions under TRITON_INTERPRET=1 and cannot be compiled then: the gate runs in
a process without it (the test starts one). Written against the JITFunction API that triton 3.6 to 3.8 share
(create_function_from_signature, _pack_args, knobs.nvidia.dump_ptxas_log); run here on 3.8 only. A Triton
without _pack_args is refused with a message.
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime
import enum
import hashlib
import importlib
import io
import json
import math
import os
import pathlib
import pkgutil
import platform
import re
import subprocess
import sys
import tempfile
import time

import torch
import triton
from triton.backends.compiler import GPUTarget

import kernels
from bench.bench_adagn import GPU_SHAPES as ADAGN_BENCH_SHAPES
from bench.bench_diffusion import GPU_SHAPES as DIFFUSION_BENCH_SHAPES
from bench.bench_upfirdn2d import GPU_SHAPES as UPFIRDN2D_BENCH_SHAPES
from bench.harness import Shape
from kernels import _adagn_plan

ROOT = pathlib.Path(__file__).resolve().parent

# DRAM bandwidth, bytes/s, from NVIDIA's data sheets: "NVIDIA H100 Tensor Core GPU" (H100 SXM: 3.35 TB/s HBM3;
# the PCIe card has 2 TB/s) and "NVIDIA H200 Tensor Core GPU" (H200 SXM: 4.8 TB/s HBM3e). TB = 10^12 bytes.
DRAM_BANDWIDTH = {"H100 SXM": 3.35e12, "H200 SXM": 4.8e12}
DRAM_BANDWIDTH_SOURCE = "NVIDIA H100 and H200 Tensor Core GPU data sheets (SXM parts)"
# H100 SXM5 and H200 SXM both have 132 SMs; AdaGN's plan aims at TUNING.programs_per_sm programs per SM.
HOPPER_SMS = 132
TARGETS = {"sm_90": GPUTarget("cuda", 90, 32), "sm_80": GPUTarget("cuda", 80, 32)}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Pass(enum.Enum):
    FORWARD = "fwd"
    BACKWARD = "bwd"


@dataclasses.dataclass
class Launch:
    """One kernel launch as the launcher made it."""

    kernel: triton.runtime.jit.JITFunction
    grid: tuple
    args: tuple
    kwargs: dict


@dataclasses.dataclass(frozen=True)
class Case:
    """One op call: its launches in the forward and in the backward come from `run` (a callable
    that takes a `record(pass_)` context factory). aligned: every size the kernels index by is a
    multiple of 16 elements (the benchmark shapes); odd cases are not."""

    name: str
    op: str
    dtype: str
    aligned: bool
    ci: bool
    run: object = dataclasses.field(compare=False, repr=False)


# ---------------------------------------------------------------------------------------------- recording


def _kernel_modules():
    return [importlib.import_module(f"kernels.{m.name}") for m in pkgutil.iter_modules(kernels.__path__)]


def triton_kernels():
    """{qualified name: JITFunction} of every @triton.jit *_kernel defined in kernels/ (the launch entry points)."""
    found = {}
    for module in _kernel_modules():
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or not name.endswith("_kernel"):
                continue
            if not isinstance(obj, triton.runtime.jit.JITFunction):
                raise RuntimeError(
                    f"{module.__name__}.{name} is a {type(obj).__name__}, not a JITFunction: kernels/ was imported "
                    "under TRITON_INTERPRET=1; run the gate in a process without it"
                )
            found[f"{module.__name__}.{name}"] = obj
    return found


def _always_triton(*tensors):
    return True


class Recorder:
    """Replaces `run` on every kernel of kernels/ (JITFunction.__getitem__ calls self.run) with a recorder."""

    def __init__(self):
        self.kernels = triton_kernels()
        self.launches = []

    @contextlib.contextmanager
    def recording(self):
        self.launches = []

        def recorder(kernel):
            def run(*args, grid, warmup, **kwargs):
                self.launches.append(Launch(kernel, tuple(grid), args, kwargs))

            return run

        for kernel in self.kernels.values():
            kernel.run = recorder(kernel)
        # The public ops send CPU tensors to the reference unless Triton interprets; here they go to the
        # launchers, as CUDA tensors would.
        dispatch = [(m, m.use_triton) for m in _kernel_modules() if "use_triton" in vars(m)]
        for module, _ in dispatch:
            module.use_triton = _always_triton
        # AdaGN plans for the GPU's SM count; CPU tensors would get the interpreter's target instead.
        hopper = dataclasses.replace(
            _adagn_plan.TUNING, interpreter_programs=_adagn_plan.TUNING.programs_per_sm * HOPPER_SMS
        )
        saved = _adagn_plan.TUNING
        _adagn_plan.TUNING = hopper
        try:
            yield self.launches
        finally:
            for module, use_triton in dispatch:
                module.use_triton = use_triton
            _adagn_plan.TUNING = saved
            for kernel in self.kernels.values():
                del kernel.run


def record_case(recorder, case):
    """{pass: [Launch]} of one case."""
    launches = {}

    @contextlib.contextmanager
    def record(pass_):
        with recorder.recording() as recorded:
            yield
        launches[pass_] = list(recorded)

    case.run(record)
    return launches


# -------------------------------------------------------------------------------------- specialisation


def qualname(kernel):
    return f"{kernel.fn.__module__}.{kernel.fn.__name__}"


def specialise(launch, target):
    """(options, signature, constexprs, attrs) of the launch for target, computed as JITFunction.run does."""
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = launch.kernel
    if not hasattr(kernel, "_pack_args"):
        raise RuntimeError(f"triton {triton.__version__}: JITFunction has no _pack_args (the gate supports 3.6-3.8)")
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = dict(launch.kwargs)
    # What JITFunction.run adds to the keyword arguments before binding them.
    knobs = getattr(triton, "knobs", None)
    debug = bool(getattr(getattr(knobs, "runtime", None), "debug", False))
    kwargs["debug"] = kwargs.get("debug", kernel.debug) or debug
    instrumentation = getattr(getattr(knobs, "compilation", None), "instrumentation_mode", None)
    if instrumentation is not None and "instrumentation_mode" in backend.parse_options({}).__dict__:
        kwargs["instrumentation_mode"] = instrumentation
    bound, specialization, options = binder(*launch.args, **kwargs)
    return kernel._pack_args(backend, kwargs, bound, specialization, options)


def _jsonable(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A compile job: what triton.compile gets, in a picklable form (the kernel by module and name)."""

    target: str
    module: str
    name: str
    signature: tuple  # ((arg, type), ...)
    constexprs: tuple  # ((arg, value), ...), values as Triton takes them
    divisible: tuple  # args with tt.divisibility 16
    options: tuple  # ((option, value), ...) that differ from the backend's defaults

    @property
    def key(self):
        text = json.dumps([self.target, self.module, self.name, self.signature, _jsonable(self.constexprs),
                           self.divisible, _jsonable(self.options)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_spec(launch, target_name):
    target = TARGETS[target_name]
    options, signature, constexprs, attrs = specialise(launch, target)
    names = list(signature)
    from triton.compiler.compiler import make_backend

    defaults = make_backend(target).parse_options({}).__dict__
    chosen = tuple((k, v) for k, v in options.__dict__.items() if v != defaults.get(k) and k != "extern_libs")
    divisible = tuple(
        names[path[0]] for path, values in attrs.items() if any(a[0] == "tt.divisibility" for a in values)
    )
    kernel = launch.kernel
    return Spec(
        target_name, kernel.fn.__module__, kernel.fn.__name__,
        tuple((k, v) for k, v in signature.items() if v != "constexpr"),
        tuple((names[path[0]], value) for path, value in sorted(constexprs.items())),
        divisible, chosen,
    )


# -------------------------------------------------------------------------------------- compiling


def _ptxas_path():
    explicit = os.environ.get("TRITON_PTXAS_PATH")
    if explicit:
        return explicit
    return str(pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas")


def ptxas_version():
    try:
        out = subprocess.run([_ptxas_path(), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return f"unavailable: {error}"
    return out.strip().splitlines()[-1]


_PTXAS_USED = re.compile(r"Used (\d+) registers")
_PTXAS_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(log):
    """Registers, stack, spill stores/loads and static shared memory from a `ptxas -v` log."""
    used, frame, smem = _PTXAS_USED.search(log), _PTXAS_FRAME.search(log), _PTXAS_SMEM.search(log)
    if used is None or frame is None:
        return None
    return {
        "registers": int(used.group(1)),
        "stack_bytes": int(frame.group(1)),
        "spill_store_bytes": int(frame.group(2)),
        "spill_load_bytes": int(frame.group(3)),
        "ptxas_smem_bytes": int(smem.group(1)) if smem else 0,
    }


def run_ptxas(ptx, arch, fmad):
    """ptxas -v on the PTX with the flags every Triton 3.6-3.8 passes (-lineinfo, --fmad=false where fp fusion
    is off); the fallback where Triton's own ptxas log could not be captured."""
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        cmd = [_ptxas_path(), "-lineinfo", *([] if fmad else ["--fmad=false"]), "-v", f"--gpu-name={arch}",
               str(src), "-o", str(pathlib.Path(tmp) / "kernel.cubin")]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stderr


# ld.global[.cache hints][.vN].type  /  st.global[...]; vN x type bits is the access width of one thread.
_GLOBAL_ACCESS = re.compile(r"\b(ld|st)\.global((?:\.[A-Za-z0-9_:]+)+)")
_TYPE_BITS = re.compile(r"^[bsuf](8|16|32|64|128)$")


def global_access_widths(ptx):
    """({bits: count} of global loads, of global stores): static instruction counts in the PTX."""
    widths = {"ld": {}, "st": {}}
    for kind, suffixes in _GLOBAL_ACCESS.findall(ptx):
        parts = suffixes.strip(".").split(".")
        vector = next((int(p[1:]) for p in parts if re.fullmatch(r"v\d+", p)), 1)
        bits = next((int(m.group(1)) for p in parts if (m := _TYPE_BITS.match(p))), None)
        if bits is None:
            continue
        width = vector * bits
        widths[kind][width] = widths[kind].get(width, 0) + 1
    return widths["ld"], widths["st"]


@contextlib.contextmanager
def _knobs_set(*names):
    """Set these boolean triton.knobs (group, name) to True for the block, where this Triton has them."""
    saved = []
    for group, name in names:
        holder = getattr(getattr(triton, "knobs", None), group, None)
        if holder is not None and hasattr(holder, name):
            saved.append((holder, name, getattr(holder, name)))
            setattr(holder, name, True)
    try:
        yield
    finally:
        for holder, name, value in saved:
            setattr(holder, name, value)


def compile_spec(spec):
    """Compile one Spec; returns its measurements (run in a worker process).

    Triton's own ptxas run (the cubin it would load) prints its -v log with knobs.nvidia.dump_ptxas_log;
    always_compile keeps Triton's cache from skipping that run (and makes "it compiles" true of this run).
    """
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(spec.module), spec.name)
    names = list(kernel.arg_names)
    signature = {name: "constexpr" for name in names}
    signature.update(dict(spec.signature))
    constexprs = {(names.index(name),): value for name, value in spec.constexprs}
    attrs = {(names.index(name),): [["tt.divisibility", 16]] for name in spec.divisible}
    source = ASTSource(kernel, signature, constexprs, attrs)
    log = io.StringIO()
    with _knobs_set(("nvidia", "dump_ptxas_log"), ("compilation", "always_compile")), contextlib.redirect_stdout(log):
        compiled = triton.compile(source, target=TARGETS[spec.target], options=dict(spec.options))
    ptx = compiled.asm["ptx"]
    arch = re.search(r"^\.target\s+(\w+)", ptx, re.MULTILINE).group(1)
    loads, stores = global_access_widths(ptx)
    result = {
        "arch": arch,
        "cubin_bytes": len(compiled.asm.get("cubin", b"")),
        "num_warps": compiled.metadata.num_warps,
        "num_stages": compiled.metadata.num_stages,
        "triton_shared_bytes": compiled.metadata.shared,
        "ld_global_bits": {str(k): v for k, v in sorted(loads.items())},
        "st_global_bits": {str(k): v for k, v in sorted(stores.items())},
        "widest_load_bits": max(loads, default=0),
        "widest_store_bits": max(stores, default=0),
    }
    ptxas = parse_ptxas_log(log.getvalue())
    result["ptxas_log"] = "triton's ptxas run"
    if ptxas is None:
        try:
            ptxas = parse_ptxas_log(run_ptxas(ptx, arch, dict(spec.options).get("enable_fp_fusion", True)))
            result["ptxas_log"] = "the gate's ptxas run (Triton's log was not captured)"
        except (OSError, subprocess.CalledProcessError) as error:
            result["ptxas_log"] = f"none ({error}): PTX-level checks only"
    result.update(ptxas or {})
    return result


# -------------------------------------------------------------------------------------- cases
# Each case calls the public op of kernels/ (its validation, layout handling and autograd Function: the
# dispatch), with `use_triton` answering True for CPU tensors while recording, then differentiates it.


def _e(*shape, dtype=torch.float32, channels_last=False):
    x = torch.empty(shape, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _groups(channels):
    return min(channels // 4, 32)


def _layout_suffix(channels_last):
    return "-nhwc" if channels_last else ""


def _adagn_case(shape, dtype_name, variant, aligned, ci, channels_last=False):
    dtype = DTYPES[dtype_name]
    n, c, res = shape.batch, shape.channels, shape.res

    def run(record):
        x = _e(n, c, res, res, dtype=dtype, channels_last=channels_last).requires_grad_(True)
        if variant == "ddgan":  # AdaptiveGroupNorm: Linear(z).chunk(2, 1), in x's dtype (autocast)
            style = _e(n, 2 * c, dtype=dtype).requires_grad_(True)
            gamma, beta = style.chunk(2, dim=1)
            leaves = [x, style]
        elif variant == "groupnorm":  # GroupNorm32 + SiLU: (C,) fp32 module parameters
            gamma, beta = (_e(c).requires_grad_(True) for _ in range(2))
            leaves = [x, gamma, beta]
        else:  # IDDPM scale-shift: fp32 (N, C) gamma = weight * (1 + scale), beta = bias * (1 + scale) + shift
            gamma, beta = (_e(n, c).requires_grad_(True) for _ in range(2))
            leaves = [x, gamma, beta]
        with record(Pass.FORWARD):
            y = kernels.adagn(x, gamma, beta, _groups(c), eps=1e-6, silu=True)
        with record(Pass.BACKWARD):
            torch.autograd.grad(y, leaves, torch.empty_like(y))

    name = f"adagn-{variant}-{shape.name}{_layout_suffix(channels_last)}-{dtype_name}"
    return Case(name, "adagn", dtype_name, aligned, ci, run)


def _upfirdn2d_case(name, shape, dtype_name, up, down, pad, aligned, ci, channels_last=False):
    dtype = torch.float64 if dtype_name == "fp64" else DTYPES[dtype_name]

    def run(record):
        x = _e(shape.batch, shape.channels, shape.res, shape.res, dtype=dtype, channels_last=channels_last)
        x.requires_grad_(True)
        kernel = _e(4, 4)
        with record(Pass.FORWARD):
            out = kernels.upfirdn2d(x, kernel, up=up, down=down, pad=pad)
        # The backward is this op again (flipped kernel, up/down swapped), so R1's double backward
        # launches the forward's kernels once more: the forward and backward specialisations cover it.
        with record(Pass.BACKWARD):
            torch.autograd.grad(out, x, torch.empty_like(out))

    full = f"upfirdn2d-{name}-{shape.name}{_layout_suffix(channels_last)}-{dtype_name}"
    return Case(full, "upfirdn2d", dtype_name, aligned, ci, run)


def _tables(count, length=1000):
    return [_e(length) for _ in range(count)]


def _t(batch):
    return torch.zeros(batch, dtype=torch.int64)


def _diffusion_case(op, shape, dtype_name, aligned, ci, variant="bench"):
    """The op's forward and the backward of what bench/bench_diffusion.py differentiates (variant "bench");
    p_mean_variance "training": IDDPM's hybrid loss uses only mean and log_variance, clip_denoised=False."""
    dtype = DTYPES[dtype_name]
    n, c, res = shape.batch, shape.channels, shape.res

    def image(channels=c):
        return _e(n, channels, res, res, dtype=dtype)

    def run(record):
        kwargs, grad_outputs = {}, None
        if op == "q_sample":
            args, leaves, fn = [image().requires_grad_(True), _t(n), image(), *_tables(2)], [0], kernels.q_sample
        elif op == "q_sample_pairs":
            args, leaves = [image().requires_grad_(True), _t(n), image(), image(), *_tables(4)], [0]
            fn = kernels.q_sample_pairs
        elif op == "sample_posterior":
            args, leaves = [image().requires_grad_(True), image(), _t(n), image(), *_tables(3)], [0]
            fn = kernels.sample_posterior
        elif op == "p_mean_variance":
            args, leaves = [image(2 * c).requires_grad_(True), image(), _t(n), *_tables(6)], [0]
            fn, kwargs = kernels.p_mean_variance_learned_range, {"clip_denoised": variant != "training"}
            grad_outputs = (0, 2) if variant == "training" else (0, 1, 2, 3)
        else:
            args = [image(), image(), _t(n), image().requires_grad_(True), image().requires_grad_(True), *_tables(3)]
            leaves, fn = [3, 4], kernels.vb_terms_bpd
        with record(Pass.FORWARD):
            outputs = fn(*args, **kwargs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        if grad_outputs is not None:
            outputs = tuple(outputs[i] for i in grad_outputs)
        with record(Pass.BACKWARD):
            torch.autograd.grad(outputs, [args[i] for i in leaves], [torch.empty_like(o) for o in outputs])

    suffix = "" if variant == "bench" else f"-{variant}"
    return Case(f"{op}{suffix}-{shape.name}-{dtype_name}", op, dtype_name, aligned, ci, run)


# Odd shapes: sizes that are not multiples of 16 (no divisibility attributes, masked tails).
ADAGN_ODD = [
    Shape("odd-fused-3x12x7", 3, 12, 7),  # 3 groups of 4 channels x 49 positions
    Shape("odd-looped-64x96x63", 64, 96, 63),  # 1536 groups >= 8 x 132 programs: LOOPED
    Shape("odd-split-1x64x127", 1, 64, 127),  # 16 groups: SPLIT
]
ADAGN_EXTRA = [Shape("looped-64x128x64", 64, 128, 64)]  # aligned LOOPED (no benchmark shape loops)
UPFIRDN2D_ODD = [Shape("odd-3x5x15", 3, 5, 15)]
DIFFUSION_ODD = [Shape("odd-5x3x7", 5, 3, 7)]
# NCSN++'s fir_upsample_conv / fir_conv_downsample filter with up = down = 1 (the generic kernel):
# conv_transpose2d(stride 2) of 16x16 gives 33x33, pad (1, 1) filters it to 32x32; pad (2, 2) takes 32 to 33.
UPFIRDN2D_GENERIC = [("upconv-filter", Shape("cifar10-33", 64, 128, 33), (1, 1)),
                     ("convdown-filter", Shape("cifar10-32", 64, 128, 32), (2, 2))]
DIFFUSION_OPS = ("q_sample", "q_sample_pairs", "sample_posterior", "p_mean_variance", "vb_terms_bpd")

# The CI subset: per kernel and dtype class, one aligned benchmark shape and one odd shape.
CI_ADAGN = {"cifar10-n64-32", "256px-256", "odd-fused-3x12x7", "odd-split-1x64x127", "looped-64x128x64",
            "odd-looped-64x96x63"}
CI_UPFIRDN2D = {"cifar10-32", "odd-3x5x15"}
CI_DIFFUSION = {"cifar10-n128", "odd-5x3x7"}
CI_DTYPES = {"fp32", "bf16"}  # fp16 compiles as bf16 does (16-bit loads and stores, fp32 arithmetic)
# channels_last inputs go through the same public ops (today they copy to NCHW, so their launches are the
# NCHW ones; NHWC-native kernels, when they land, appear here with their own specialisations).
CHANNELS_LAST_ADAGN = {"cifar10-n64-32", "odd-fused-3x12x7"}
CHANNELS_LAST_UPFIRDN2D = {"cifar10-32", "odd-3x5x15"}


def _shape_dtypes(shape):
    """Every dtype, or only the shape's own where the benchmark fixes one (its target case is bf16)."""
    if shape.dtype == torch.float32:
        return list(DTYPES)
    return [name for name, dtype in DTYPES.items() if dtype == shape.dtype]


def all_cases():
    cases = []
    for shapes, aligned in ((ADAGN_BENCH_SHAPES + ADAGN_EXTRA, True), (ADAGN_ODD, False)):
        for shape in shapes:
            for dtype_name in _shape_dtypes(shape):
                ci = shape.name in CI_ADAGN and dtype_name in CI_DTYPES
                cases.append(_adagn_case(shape, dtype_name, "ddgan", aligned, ci))
                if shape.name in CHANNELS_LAST_ADAGN:
                    cases.append(_adagn_case(shape, dtype_name, "ddgan", aligned, ci, channels_last=True))
    for shape in (ADAGN_BENCH_SHAPES[0], ADAGN_BENCH_SHAPES[1], ADAGN_ODD[0]):
        for variant in ("groupnorm", "scale-shift"):
            for dtype_name in DTYPES:
                ci = variant == "groupnorm" and shape.name == "cifar10-n64-32" and dtype_name == "bf16"
                cases.append(_adagn_case(shape, dtype_name, variant, shape is not ADAGN_ODD[0], ci))
    for shapes, aligned in ((UPFIRDN2D_BENCH_SHAPES, True), (UPFIRDN2D_ODD, False)):
        for shape in shapes:
            for dtype_name in (*DTYPES, "fp64"):
                if dtype_name == "fp64" and shape.name not in CI_UPFIRDN2D:
                    continue
                ci = shape.name in CI_UPFIRDN2D and dtype_name in CI_DTYPES
                # bench/bench_upfirdn2d.py: up2 maps res/2 to res, down2 maps res to res/2
                half = dataclasses.replace(shape, res=max(shape.res // 2, 1)) if aligned else shape
                layouts = (False, True) if shape.name in CHANNELS_LAST_UPFIRDN2D else (False,)
                for channels_last in layouts:
                    cases.append(_upfirdn2d_case("up2", half, dtype_name, 2, 1, (2, 1), aligned, ci, channels_last))
                    cases.append(_upfirdn2d_case("down2", shape, dtype_name, 1, 2, (1, 1), aligned, ci,
                                                 channels_last))
    for name, shape, pad in UPFIRDN2D_GENERIC:
        for dtype_name in DTYPES:
            cases.append(_upfirdn2d_case(name, shape, dtype_name, 1, 1, pad, False, dtype_name in CI_DTYPES))
    for op in DIFFUSION_OPS:
        for shapes, aligned in ((DIFFUSION_BENCH_SHAPES, True), (DIFFUSION_ODD, False)):
            for shape in shapes:
                for dtype_name in DTYPES:
                    ci = shape.name in CI_DIFFUSION and dtype_name in CI_DTYPES
                    cases.append(_diffusion_case(op, shape, dtype_name, aligned, ci))
    for dtype_name in DTYPES:
        cases.append(_diffusion_case("p_mean_variance", DIFFUSION_BENCH_SHAPES[0], dtype_name, True,
                                     dtype_name == "bf16", variant="training"))
    return cases


# -------------------------------------------------------------------------------------- the report


def launch_bytes(launch):
    """Bytes the launch moves at least: each distinct tensor argument (by address and size) read or written once."""
    seen = set()
    total = 0
    for arg in launch.args:
        if isinstance(arg, torch.Tensor):
            key = (arg.data_ptr(), arg.numel() * arg.element_size())
            if key not in seen:
                seen.add(key)
                total += key[1]
    return total


def _seconds_at(nbytes):
    return {gpu: round(nbytes / bandwidth * 1e6, 3) for gpu, bandwidth in DRAM_BANDWIDTH.items()}


def build_report(cases, targets, workers, command):
    recorder = Recorder()
    case_rows, jobs = [], {}
    for case in cases:
        launches = record_case(recorder, case)
        passes = {}
        for pass_, recorded in launches.items():
            rows = []
            for launch in recorded:
                specs = {t: make_spec(launch, t) for t in targets}
                for spec in specs.values():
                    jobs.setdefault(spec.key, spec)
                nbytes = launch_bytes(launch)
                rows.append({
                    "kernel": qualname(launch.kernel),
                    "spec": {t: s.key for t, s in specs.items()},
                    "grid": list(launch.grid),
                    "programs": math.prod(launch.grid),
                    "bytes": nbytes,
                    "us_at_dram_bandwidth": _seconds_at(nbytes),
                })
            total = sum(r["bytes"] for r in rows)
            passes[pass_.value] = {"launches": rows, "bytes": total, "us_at_dram_bandwidth": _seconds_at(total)}
        case_rows.append({"name": case.name, "op": case.op, "dtype": case.dtype, "aligned": case.aligned,
                          "passes": passes})
    aligned_specs = {
        spec_key
        for row in case_rows if row["aligned"]
        for p in row["passes"].values() for launch in p["launches"] for spec_key in launch["spec"].values()
    }
    odd_specs = {
        spec_key
        for row in case_rows if not row["aligned"]
        for p in row["passes"].values() for launch in p["launches"] for spec_key in launch["spec"].values()
    }
    started = time.perf_counter()
    ordered = sorted(jobs.values(), key=lambda s: (s.target, s.module, s.name, s.key))
    if workers > 1:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(compile_spec, ordered))
    else:
        results = [compile_spec(spec) for spec in ordered]
    spec_rows = []
    for spec, result in zip(ordered, results):
        spec_rows.append({
            "id": spec.key,
            "target": spec.target,
            "kernel": f"{spec.module}.{spec.name}",
            "signature": dict(spec.signature),
            "constexprs": {k: _jsonable(v) for k, v in spec.constexprs},
            "divisible_by_16": list(spec.divisible),
            "options": {k: _jsonable(v) for k, v in spec.options},
            "from_aligned_case": spec.key in aligned_specs,
            "from_odd_case": spec.key in odd_specs,
            **result,
        })
    launched = {launch["kernel"] for row in case_rows for p in row["passes"].values() for launch in p["launches"]}
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"triton": triton.__version__, "torch": torch.__version__, "python": platform.python_version(),
                     "ptxas": ptxas_version()},
        "targets": {name: f"GPUTarget('cuda', {TARGETS[name].arch}, {TARGETS[name].warp_size})" for name in targets},
        "dram_bandwidth_bytes_per_s": DRAM_BANDWIDTH,
        "dram_bandwidth_source": DRAM_BANDWIDTH_SOURCE,
        "adagn_plan_sms": HOPPER_SMS,
        "bytes_rule": "each distinct tensor argument of a launch read or written once (its minimum DRAM traffic)",
        "kernels": sorted(recorder.kernels),
        "kernels_not_launched": sorted(set(recorder.kernels) - launched),
        "compile_wall_s": round(time.perf_counter() - started, 1),
        "specialisations": spec_rows,
        "cases": case_rows,
    }


def _dtype_of(signature):
    """The dtype of the first pointer argument (the streamed tensor's, in every kernel of kernels/)."""
    return next((v[1:] for v in signature.values() if v.startswith("*")), "?")


def _widths(rows, key):
    """The widest global access of each row, as a compact set, e.g. "128" or "32/64"."""
    return "/".join(str(w) for w in sorted({row[key] for row in rows})) or "-"


def _range(values):
    values = sorted(values)
    return "-" if not values else (f"{values[0]}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}")


# Cases the markdown's time table shows (the JSON has every case).
HEADLINE_SHAPES = {"cifar10-n64-32", "target-n128-c256-32-bf16", "batch1-256", "cifar10-32", "256px-256",
                   "cifar10-n128", "256px-n32"}


def markdown(report):
    """Per kernel and target: registers, spills, shared memory, widest loads/stores (aligned and odd shapes);
    then the bytes and DRAM-bound time of the headline cases."""
    lines = [
        f"# Compiled-kernel gate, {report['date']}",
        "",
        f"`{report['command']}`: triton {report['versions']['triton']}, torch {report['versions']['torch']}, "
        f"{report['versions']['ptxas']}; {len(report['specialisations'])} specialisations of "
        f"{len(report['kernels'])} kernels. Registers and spills from ptxas -v; widths are the widest global "
        "load/store instruction of each specialisation (bits per thread; 128 = a 16-byte vector access), "
        "over the specialisations of aligned and of odd cases (in the per-sample ops a 64-bit load is the int64 "
        "timestep, one a program).",
        "",
        "| kernel | target | specs | registers | max spill (B) | max smem (B) | ld aligned | st aligned | ld odd "
        "| st odd |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_kernel = {}
    for row in report["specialisations"]:
        by_kernel.setdefault((row["kernel"].split(".")[-1], row["target"]), []).append(row)
    for (kernel, target), rows in sorted(by_kernel.items()):
        aligned = [r for r in rows if r["from_aligned_case"]]
        odd = [r for r in rows if r["from_odd_case"]]
        lines.append(
            f"| {kernel} | {target} | {len(rows)} | {_range([r.get('registers', 0) for r in rows])} | "
            f"{max(r.get('spill_store_bytes', 0) for r in rows)} | {max(r['triton_shared_bytes'] for r in rows)} | "
            f"{_widths(aligned, 'widest_load_bits')} | {_widths(aligned, 'widest_store_bits')} | "
            f"{_widths(odd, 'widest_load_bits')} | {_widths(odd, 'widest_store_bits')} |"
        )
    flagged = [r for r in report["specialisations"] if r.get("spill_store_bytes") or r.get("registers", 0) >= 200]
    if flagged:
        lines += ["", "Specialisations that spill or use 200 registers or more:", ""]
        for r in flagged:
            tiles = ", ".join(f"{k}={v}" for k, v in r["constexprs"].items() if k.startswith("BLOCK"))
            lines.append(f"- {r['target']} {r['kernel'].split('.')[-1]} {_dtype_of(r['signature'])} ({tiles}, "
                         f"{r['num_warps']} warps): {r['registers']} registers, {r['spill_store_bytes']} B spill "
                         f"stores, {r['spill_load_bytes']} B spill loads")
    lines += ["", "| case | pass | launches | MB moved | µs at H100 SXM 3.35 TB/s | µs at H200 SXM 4.8 TB/s |",
              "|---|---|---|---|---|---|"]
    for case in report["cases"]:
        if not any(f"-{shape}-" in case["name"] for shape in HEADLINE_SHAPES) or case["dtype"] == "fp16":
            continue
        for pass_, p in case["passes"].items():
            t = p["us_at_dram_bandwidth"]
            lines.append(f"| {case['name']} | {pass_} | {len(p['launches'])} | {p['bytes'] / 1e6:.2f} | "
                         f"{t['H100 SXM']:.1f} | {t['H200 SXM']:.1f} |")
    return "\n".join(lines) + "\n"


def dump_report(report):
    """The report as JSON with one specialisation or case per line (a readable diff, a third of indent=1's size)."""
    lines = ["{"]
    items = list(report.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in value)
            lines.append(f"{json.dumps(key)}: [\n{rows}\n]{comma}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "\n".join(lines) + "\n}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON report path (the markdown table goes beside it, .md)")
    parser.add_argument("--ci", action="store_true", help="only the CI subset of cases")
    parser.add_argument("--targets", default="sm_90,sm_80", help="comma-separated, of: " + ", ".join(TARGETS))
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("-k", default=None, help="only cases whose name contains this")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {sorted(TARGETS)}")
    cases = [c for c in all_cases() if (c.ci or not args.ci) and (args.k is None or args.k in c.name)]
    command = "python -m bench.kernel_gate " + " ".join(argv if argv is not None else sys.argv[1:])
    report = build_report(cases, targets, args.workers, command)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_report(report))
    out.with_suffix(".md").write_text(markdown(report))
    print(f"{len(report['specialisations'])} specialisations of {len(report['kernels'])} kernels compiled in "
          f"{report['compile_wall_s']} s; report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
