"""What the fast samplers (ddx.sample.fast) share: the prepared network call, mode checks, CUDA-graph capture.

SamplerMode and Precision are defined in ddx.execution (the one home of the execution switches); they are
imported here because the samplers take them, and an ExecutionOptions gives all three of mode, precision
and memory format at once (execution_settings).

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

import torch

from ddx.execution import ExecutionOptions, Precision, SamplerMode
from ddx.utils.checks import parse_enum
from ddx.utils.errors import UsageError

__all__ = ["PreparedNetwork", "Precision", "SamplerMode", "capture", "check_graphs_supported", "check_on_model_device", "execution_settings",
           "model_device", "parse_mode", "reseed"]


def parse_mode(value):
    """A SamplerMode from a member or its value ('eager', 'compiled', 'graphs')."""
    return parse_enum(SamplerMode, value, "mode")


def execution_settings(execution):
    """The keyword arguments of a fast sampler's constructor that an ExecutionOptions gives: mode, dtype,
    channels_last. (Its fused switch routes the model and the diffusion objects, ddx.ops; its device is
    the model's.)"""
    if not isinstance(execution, ExecutionOptions):
        raise TypeError(f"execution must be a ddx.execution.ExecutionOptions, got {type(execution).__name__}")
    return {"mode": execution.sampler, "dtype": execution.precision, "channels_last": execution.channels_last}


def model_device(model):
    """The device of the model's first parameter (or buffer); the CPU for a model without either."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def check_on_model_device(wanted, device, what="the model"):
    """ValueError unless `wanted` (a device, its name, or None for any) is `device`, the model's: samplers run
    where the model is ('cuda' matches 'cuda:0')."""
    if wanted is None:
        return
    wanted = torch.device(wanted)
    if wanted.type != device.type or (wanted.index is not None and device.index is not None
                                      and wanted.index != device.index):
        raise ValueError(f"sampling runs on the device of {what} ({device}), not {wanted}: move {what} there "
                         f"first (.to({str(wanted)!r}))")


def check_graphs_supported(mode, device):
    """GRAPHS needs a CUDA device: a UsageError (a ValueError; exit 2 from the CLI) naming the flag otherwise."""
    if mode is SamplerMode.GRAPHS and device.type != "cuda":
        raise UsageError(
            f"sampler mode GRAPHS needs a CUDA device (CUDA graphs record GPU kernels), but the model is on {device} "
            f"(torch.cuda.is_available() = {torch.cuda.is_available()}); use --mode compiled or --mode eager "
            "(SamplerMode.COMPILED / SamplerMode.EAGER)"
        )


class PreparedNetwork:
    """The network as the samplers call it: compiled or not, in its memory format, under autocast.

    net(x, t, *extra, **kwargs) -> the model's output (kwargs: e.g. class labels y); x is converted to channels_last first when asked (the model's
    weights were converted at construction), and a 4-D output back to NCHW (the chain's layout). compile_backend / compile_mode are torch.compile's backend
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

    def __call__(self, x, t, *extra, **kwargs):
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            out = self.call(x, t, *extra, **kwargs)
        if self.channels_last and out.dim() == 4:
            # The chain stays NCHW: its randn_like draws follow their input's layout (a channels_last x_t would get
            # its noise in another order, and on the CPU from another stretch of the stream), so the network's
            # output goes back to NCHW, one copy per call, and the samples are the NCHW ones within rounding.
            out = out.contiguous()
        return out


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
