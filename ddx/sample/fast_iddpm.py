"""Fast IDDPM sampling: the respaced ancestral (p_sample) loop or the DDIM loop, eager, compiled, or on CUDA graphs.

    diffusion = DiffusionConfig(steps=4000, learn_sigma=True, noise_schedule="cosine", timestep_respacing="100").build()
    sampler = FastIDDPMSampler(unet, diffusion, (3, 32, 32), loop=IDDPMLoop.P_SAMPLE, mode=SamplerMode.GRAPHS)
    images = sampler(64, seed=0)

The steps are those of ddx.diffusion.sampling (p_sample / ddim_sample) with the same random draws in
the same order (x_T, then one normal draw per step, DDIM included), so EAGER with a seed gives the
images of `torch.manual_seed(seed); diffusion.p_sample_loop(model, shape)`.

GRAPHS captures ONE step and replays it for every t: the step index lives in a static device tensor
(filled before each replay) and the step writes x_{t-1} back into the static x buffer. Per step rather
than per loop because an IDDPM step is a full UNet forward (milliseconds), which makes the ~10 us of a
replay launch and an index fill negligible, while a per-loop graph would hold K times the kernels, take
K times as long to capture, and need a new capture for every respacing. (DDGAN's 4-step loop, where
launch costs are a real share, is one graph: ddx.sample.fast.)

Class labels and other model inputs: `model_kwargs` of a call (e.g. {"y": labels}); under GRAPHS they are
copied into static buffers of the captured step. A torch.Generator (`generator=`) draws x_T and every
step's noise as the official loops' generator argument does (EAGER and COMPILED; a graph draws from
torch's graph-safe default CUDA generator, seeded by torch.manual_seed).

NVTX (ddx.profiling, when enabled): sample/step_<i> for i = K-1 .. 0 in every mode (around each replay under GRAPHS).
"""

import enum

import torch

from ddx.diffusion import sampling
from ddx.diffusion.gaussian import GaussianDiffusion
from ddx.execution import parse_precision
from ddx.profiling import nvtx_range
from ddx.sample.fast_common import (
    PreparedNetwork,
    Precision,
    SamplerMode,
    capture,
    check_graphs_supported,
    execution_settings,
    model_device,
    parse_mode,
    reseed,
)
from ddx.utils.checks import check_positive_int, parse_enum
from ddx.utils.progress import Progress


class IDDPMLoop(enum.Enum):
    P_SAMPLE = "p_sample"
    DDIM = "ddim"


class FastIDDPMSampler:
    """IDDPM's reverse chain over the steps of `diffusion` (respace it for fewer), for batches of fresh samples.

    model: model(x (N, C, H, W), timesteps (N,)) -> (N, C or 2C, H, W), on the device to sample on (in eval mode).
    diffusion: a GaussianDiffusion / SpacedDiffusion (its `fused` flag routes the arithmetic, ddx.ops.set_fused).
    sample_shape: (C, H, W). loop: IDDPMLoop (or its value). eta: DDIM's eta (DDIM only).
    mode, dtype, channels_last, compile_backend, compile_mode: as FastDDGANSampler (autocast covers the model only);
    the first three from a ddx.execution.ExecutionOptions: FastIDDPMSampler.from_execution.
    """

    def __init__(self, model, diffusion, sample_shape, loop=IDDPMLoop.P_SAMPLE, mode=SamplerMode.EAGER,
                 dtype=Precision.FP32, channels_last=False, clip_denoised=True, eta=0.0, compile_backend="inductor",
                 compile_mode=None):
        if not isinstance(diffusion, GaussianDiffusion):
            raise TypeError(f"diffusion must be a GaussianDiffusion (or SpacedDiffusion), got {type(diffusion).__name__}")
        self.loop = parse_enum(IDDPMLoop, loop, "loop")
        if self.loop is IDDPMLoop.P_SAMPLE and eta != 0.0:
            raise ValueError(f"eta applies to the DDIM loop only; got eta={eta} with loop=p_sample")
        self.mode = parse_mode(mode)
        self.precision = parse_precision(dtype, "dtype")
        self.device = model_device(model)
        check_graphs_supported(self.mode, self.device)
        self.network = PreparedNetwork(model, self.mode, self.precision, channels_last, compile_backend, compile_mode)
        self.diffusion = diffusion
        self.sample_shape = tuple(sample_shape)
        self.clip_denoised = bool(clip_denoised)
        self.eta = float(eta)
        self._graphs = {}

    @classmethod
    def from_execution(cls, model, diffusion, sample_shape, execution, **kwargs):
        """A sampler whose mode, precision and memory format are those of `execution` (an ExecutionOptions);
        kwargs: loop, clip_denoised, eta, compile_backend, compile_mode. The model and diffusion are used as
        routed (ddx.ops.prepare_model / set_fused apply execution.fused to them)."""
        return cls(model, diffusion, sample_shape, **execution_settings(execution), **kwargs)

    def step(self, x, t, model_kwargs=None, generator=None):
        """x_{t-1} (x's shape) from x_t and t (N,) int64: one p_sample or DDIM step, its noise drawn inside."""
        common = dict(clip_denoised=self.clip_denoised, model_kwargs=model_kwargs, generator=generator)
        if self.loop is IDDPMLoop.DDIM:
            out = sampling.ddim_sample(self.diffusion, self.network, x, t, eta=self.eta, **common)
        else:
            out = sampling.p_sample(self.diffusion, self.network, x, t, **common)
        return out["sample"]

    def _indices(self):
        return reversed(range(self.diffusion.num_timesteps))

    def _eager_chain(self, batch_size, model_kwargs, generator, bar):
        # Draws as sampling.p_sample_loop(..., generator=generator): x_T, then one normal draw per step.
        x = torch.randn(batch_size, *self.sample_shape, generator=generator, device=self.device)
        for i in self._indices():
            with nvtx_range(f"sample/step_{i}"):
                t = torch.full((batch_size,), i, dtype=torch.int64, device=self.device)
                x = self.step(x, t, model_kwargs, generator)
            bar.update()
        return x

    def _graph(self, batch_size, model_kwargs):
        """(graph of one step, static x, static t, static model_kwargs) for this batch size and these kwarg
        names (one private pool each)."""
        key = (batch_size, tuple(sorted(model_kwargs)))
        if key not in self._graphs:
            x = torch.zeros(batch_size, *self.sample_shape, device=self.device)
            t = torch.full((batch_size,), self.diffusion.num_timesteps - 1, dtype=torch.int64, device=self.device)
            kwargs = {name: value.clone() for name, value in model_kwargs.items()}

            def one_step():
                return x.copy_(self.step(x, t, kwargs))

            graph, _ = capture(one_step)
            self._graphs[key] = (graph, x, t, kwargs)
        return self._graphs[key]

    def _replayed_chain(self, batch_size, model_kwargs, seed, bar):
        graph, x, t, kwargs = self._graph(batch_size, model_kwargs)
        for name, value in model_kwargs.items():
            kwargs[name].copy_(value)
        reseed(seed)
        x.normal_()
        for i in self._indices():
            t.fill_(i)
            with nvtx_range(f"sample/step_{i}"):
                graph.replay()
            bar.update()
        return x.clone()

    def __call__(self, batch_size, seed=None, *, model_kwargs=None, generator=None, progress=False):
        """batch_size samples (N, *sample_shape), float32 on the sampler's device, owned by the caller.

        seed: torch.manual_seed(seed) first, else the global RNG stream goes on. model_kwargs: the model's
        other inputs, tensors with batch_size rows (e.g. {"y": labels}). generator: a torch.Generator that
        draws x_T and the steps' noise instead (not under GRAPHS). progress: a progress line over the steps.
        """
        check_positive_int(batch_size, "batch_size")
        model_kwargs = dict(model_kwargs or {})
        if generator is not None and self.mode is SamplerMode.GRAPHS:
            raise ValueError("a CUDA graph draws from torch's default CUDA generator: under --mode graphs seed with "
                             "torch.manual_seed (seed=) and pass no generator")
        bar = Progress(self.diffusion.num_timesteps, "sampling step", unit="step", enabled=progress)
        try:
            with torch.no_grad():
                if self.mode is SamplerMode.GRAPHS:
                    return self._replayed_chain(batch_size, model_kwargs, seed, bar)
                reseed(seed)
                return self._eager_chain(batch_size, model_kwargs, generator, bar)
        finally:
            bar.close()
