"""Fast DDGAN sampling: the whole T-step reverse chain eager, compiled, or compiled and replayed as one CUDA graph.

    sampler = FastDDGANSampler(generator, PosteriorCoefficients(config, device), nz=100, num_timesteps=4,
                               mode=SamplerMode.GRAPHS, dtype=Precision.BF16)
    sampler = FastDDGANSampler.from_execution(generator, coeff, 100, 4, ExecutionOptions(sampler="graphs"))
    images = sampler(100, seed=0)         # (100, 3, 32, 32) float32, a fresh tensor

The chain IS ddx.diffusion.ddgan.sample_from_model (the one DDGAN reverse chain, the trainer's too), called
with the prepared network as its generator after drawing x_T, so its random draws come in the same order
(x_T, then per step the latent z and the posterior noise): EAGER with a seed gives the images of
`torch.manual_seed(seed); sample_from_model(coeff, G, T, torch.randn(N, *shape), nz)`, COMPILED gives
them up to the compiler's rounding, and GRAPHS draws the same numbers from the graph-safe generator.
The posterior runs on the Triton kernel or the eager reference as the coefficient object is routed
(ddx.ops.set_fused(coeff, ...)); the generator's own routing is its own (ddx.ops.prepare_model).

Why the generator, not the unrolled loop, is what torch.compile sees: one compiled graph serves every
step (t is a tensor input), so compilation costs one network instead of T, while the per-step work
outside it is a single fused posterior kernel. Under GRAPHS the T steps, the draws and the posterior
kernels are one CUDA graph (per batch size), so nothing of the Python loop remains at replay.

NVTX (ddx.profiling, when enabled): sample/generator around each network call (T per chain, in EAGER and
COMPILED calls and while a graph is captured); a GRAPHS call is one range, sample/replay (the steps inside
are GPU work of a single graph launch). The per-step ranges sample/step_<i> and sample/posterior belong
to the chain's loop, in ddx.diffusion.ddgan.sample_from_model.
The IDDPM counterpart is ddx.sample.fast_iddpm.FastIDDPMSampler (re-exported here).
"""

import torch

from ddx.diffusion.ddgan import PosteriorCoefficients, sample_from_model
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
from ddx.sample.fast_iddpm import FastIDDPMSampler, IDDPMLoop
from ddx.utils.checks import check_positive_int

__all__ = ["FastDDGANSampler", "FastIDDPMSampler", "IDDPMLoop", "Precision", "SamplerMode", "sample_shape_of"]


def sample_shape_of(generator):
    """The per-sample shape a DDGAN generator produces: (C, S, S) for NCSN++, (D,) for the toy MLP."""
    config = getattr(generator, "config", None)
    if hasattr(config, "image_size") and hasattr(config, "num_channels"):
        return (config.num_channels, config.image_size, config.image_size)
    if hasattr(config, "data_dim"):
        return (config.data_dim,)
    raise ValueError(f"cannot tell the sample shape of a {type(generator).__name__}; pass sample_shape=(C, H, W)")


class FastDDGANSampler:
    """DDGAN's reverse chain for batches of fresh samples.

    generator: G(x_tp1 (N, *shape), t (N,) int64, z (N, nz)) -> x_0 (N, *shape), on the device to sample on
        (it is called as given: put it in eval mode; its fused/eager routing is its own, ddx.ops.set_fused).
    coeff: PosteriorCoefficients of the diffusion (tables of length num_timesteps, on that device); its
        `fused` attribute routes the posterior sample (Triton kernel or eager reference).
    mode: SamplerMode (or its value); GRAPHS needs CUDA. dtype: Precision or "fp32" / "bf16" / "fp16"
        (or a torch dtype): autocast of the generator. channels_last: run the generator in channels_last.
    sample_shape: per-sample shape, by default read from the generator's config.
    compile_backend, compile_mode: passed to torch.compile (COMPILED, GRAPHS).
    The same three settings from a ddx.execution.ExecutionOptions: FastDDGANSampler.from_execution.
    """

    def __init__(self, generator, coeff, nz, num_timesteps, mode=SamplerMode.EAGER, dtype=Precision.FP32,
                 channels_last=False, sample_shape=None, compile_backend="inductor", compile_mode=None):
        if not isinstance(coeff, PosteriorCoefficients):
            raise TypeError(f"coeff must be a ddx.diffusion.ddgan.PosteriorCoefficients, got {type(coeff).__name__}")
        self.nz = check_positive_int(nz, "nz")
        self.num_timesteps = check_positive_int(num_timesteps, "num_timesteps")
        if coeff.posterior_mean_coef1.shape[0] != num_timesteps:
            raise ValueError(
                f"coeff has tables for {coeff.posterior_mean_coef1.shape[0]} steps but num_timesteps is {num_timesteps}"
            )
        self.mode = parse_mode(mode)
        self.precision = parse_precision(dtype, "dtype")
        self.device = model_device(generator)
        check_graphs_supported(self.mode, self.device)
        if coeff.posterior_mean_coef1.device != self.device:
            # Moving them on every call would cost a copy per step, and a host copy cannot be graph-captured.
            raise ValueError(
                f"coeff's tables are on {coeff.posterior_mean_coef1.device} but the generator is on {self.device}: "
                f"build PosteriorCoefficients(config, device={str(self.device)!r})"
            )
        self.coeff = coeff
        self.sample_shape = tuple(sample_shape) if sample_shape is not None else sample_shape_of(generator)
        self.network = PreparedNetwork(generator, self.mode, self.precision, channels_last, compile_backend, compile_mode)
        self._graphs = {}

    @classmethod
    def from_execution(cls, generator, coeff, nz, num_timesteps, execution, **kwargs):
        """A sampler whose mode, precision and memory format are those of `execution` (an ExecutionOptions);
        kwargs: sample_shape, compile_backend, compile_mode. The generator and coeff are used as routed
        (ddx.ops.prepare_model / set_fused apply execution.fused to them)."""
        return cls(generator, coeff, nz, num_timesteps, **execution_settings(execution), **kwargs)

    def _generator_call(self, x, t, latent_z):
        with nvtx_range("sample/generator"):
            return self.network(x, t, latent_z)

    def chain(self, batch_size):
        """One pass of the T-step chain from a fresh x_T: (batch_size, *sample_shape) float32 (no grad)."""
        with torch.no_grad():
            x_init = torch.randn(batch_size, *self.sample_shape, device=self.device)
            return sample_from_model(self.coeff, self._generator_call, self.num_timesteps, x_init, self.nz)

    def _graph(self, batch_size):
        # One graph and private memory pool per batch size: a shared pool would let one graph's replay
        # overwrite memory another graph's static output lives in.
        if batch_size not in self._graphs:
            self._graphs[batch_size] = capture(lambda: self.chain(batch_size))
        return self._graphs[batch_size]

    def __call__(self, batch_size, seed=None):
        """batch_size samples (N, *sample_shape), float32 on the sampler's device, owned by the caller.

        seed: torch.manual_seed(seed) first (as the official scripts), else the global RNG stream goes on.
        """
        check_positive_int(batch_size, "batch_size")
        if self.mode is not SamplerMode.GRAPHS:
            reseed(seed)
            return self.chain(batch_size)
        graph, output = self._graph(batch_size)
        reseed(seed)
        with nvtx_range("sample/replay"):
            graph.replay()
        return output.clone()
