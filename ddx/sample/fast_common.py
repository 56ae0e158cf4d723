"""What the fast samplers (ddx.sample.fast) share: modes, precisions, the prepared network call, CUDA-graph capture.

Modes (SamplerMode):
    EAGER     the network and the diffusion arithmetic op by op (Triton kernels where the model is fused).
    COMPILED  the network through torch.compile(fullgraph=True, dynamic=False): the Triton ops are
              torch.library custom ops, so the whole forward is one graph; repeated calls with the
              same batch size reuse it (no recompiles). The diffusion arithmetic between network calls
              is one fused kernel per step already, so it stays outside the compiled region.
    GRAPHS    COMPILED, then captured in a CUDA graph that is replayed on every call. Random draws are
              made inside the captured region by torch's graph-safe CUDA generator (each replay advances
              its Philox offset, so every call gets fresh noise, and torch.manual_seed before a call
              reproduces it); the result is cloned out of the graph's static output before returning.
"""

import contextlib
import enum

import torch


class SamplerMode(enum.Enum):
    EAGER = "eager"
    COMPILED = "compiled"
    GRAPHS = "graphs"


class Precision(enum.Enum):
    """The network's compute precision: fp32, or bf16 / fp16 autocast (the chain itself stays fp32)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @property
    def autocast_dtype(self):
        return {Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[self]


def coerce(kind, value, name):
    """value as the enum `kind` (an instance, or its value string, case-insensitive); ValueError naming the choices."""
    if isinstance(value, kind):
        return value
    if isinstance(value, torch.dtype):
        by_dtype = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        value = by_dtype.get(value, value)
    try:
        return kind(value.lower() if isinstance(value, str) else value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None


def model_device(model):
    """The device of the model's first parameter (or buffer); the CPU for a model without either."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def check_graphs_supported(mode, device):
    """GRAPHS needs a CUDA device: ValueError naming the requirement otherwise."""
    if mode is SamplerMode.GRAPHS and device.type != "cuda":
        raise ValueError(
            f"SamplerMode.GRAPHS needs a CUDA device (CUDA graphs record GPU kernels), but the model is on {device} "
            f"(torch.cuda.is_available() = {torch.cuda.is_available()}); use SamplerMode.COMPILED or SamplerMode.EAGER"
        )


def check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


class PreparedNetwork:
    """The network as the samplers call it: compiled or not, in its memory format, under autocast.

    net(x, t, *extra) -> the model's output; x is converted to channels_last first when asked (the model's
    weights were converted at construction). compile_backend / compile_mode are torch.compile's backend
    ("inductor", or e.g. "aot_eager" for tests) and mode (None, "max-autotune-no-cudagraphs", ...).
    """

    def __init__(self, model, mode, precision, channels_last, compile_backend="inductor", compile_mode=None):
        self.model = model
        self.device = model_device(model)
        self.precision = precision
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.call = model
        if mode is not SamplerMode.EAGER:
            self.call = torch.compile(model, backend=compile_backend, mode=compile_mode, fullgraph=True, dynamic=False)

    def autocast(self):
        dtype = self.precision.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def __call__(self, x, t, *extra):
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            return self.call(x, t, *extra)


def capture(fn, warmup=2):
    """(graph, output): fn() run `warmup` times on a side stream (compilation, Triton JIT, cuDNN and
    autotuning choices happen there), then captured once. Replaying the graph reruns fn's kernels and
    rewrites `output` in place (the graph's static output)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = fn()
    return graph, output


def reseed(seed):
    """torch.manual_seed(seed) (all devices, graph replays included) unless seed is None."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__} {seed!r}")
    torch.manual_seed(seed)
