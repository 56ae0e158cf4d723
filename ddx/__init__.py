"""ddx: few-step diffusion (DDGAN, Improved DDPM) on Triton-fused kernels."""

__version__ = "0.1.0"
