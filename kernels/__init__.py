"""Triton kernels for ddx's hot paths, one file per fused op, with pure-PyTorch references.

Public ops (shapes in each docstring); each file adds its import below when it lands:
    adagn            GroupNorm + per-sample/per-channel affine (+ SiLU)
    upfirdn2d        FIR upsample / filter / downsample (official DDGAN semantics)
    q_sample         coef_start[t] x_start + coef_noise[t] noise
    q_sample_pairs   DDGAN's (x_t, x_{t+1}) in one pass
    sample_posterior DDGAN's posterior sample
    p_mean_variance_learned_range   IDDPM's eps / learned-range p_mean_variance
    vb_terms_bpd     IDDPM's variational-bound term in bits/dim
"""

from kernels import reference
from kernels._checks import INTERPRET
from kernels.adagn import adagn
from kernels.upfirdn2d import upfirdn2d
from kernels.q_sample import q_sample
from kernels.q_sample_pairs import q_sample_pairs
from kernels.sample_posterior import sample_posterior
from kernels.p_mean_variance import p_mean_variance_learned_range
from kernels.vb_terms import vb_terms_bpd

__all__ = [
    "INTERPRET",
    "reference",
    "adagn",
    "upfirdn2d",
    "q_sample",
    "q_sample_pairs",
    "sample_posterior",
    "p_mean_variance_learned_range",
    "vb_terms_bpd",
]
