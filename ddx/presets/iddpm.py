"""IDDPM presets: typed partial run configurations for `train.py iddpm --preset NAME` (explicit flags override
them; sample.py iddpm takes their model, diffusion and data fields).

cifar10 and imagenet64 are the unconditional L_hybrid runs of the official README (cosine schedule,
4,000 steps, learned sigmas); digits is DESIGN.md's small CPU preset, whose definition is fixed so that
its figures compare with the official code trained the same way. Keys are flat fields of
ddx.train.iddpm_config.IddpmRunConfig; each preset is laid over the defaults when this module is imported
(replace_flat), so an unknown key or a bad value fails at import, and the values kept are the typed ones
(enums, tuples).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ddx.presets import Preset
from ddx.train.iddpm_config import IDDPM_DEFAULTS

_CIFAR10 = {
    "image_size": 32, "num_channels": 128, "num_res_blocks": 3, "learn_sigma": True, "dropout": 0.3,
    "diffusion_steps": 4000, "noise_schedule": "cosine", "lr": 1e-4, "batch_size": 128,
    # The released checkpoint is cifar10_uncond_50M_500K: 500K steps.
    "max_steps": 500_000,
}

_IMAGENET64 = {
    "image_size": 64, "num_channels": 128, "num_res_blocks": 3, "learn_sigma": True,
    "diffusion_steps": 4000, "noise_schedule": "cosine", "lr": 1e-4, "batch_size": 128,
    # The released checkpoint is imagenet64_uncond_100M_1500K: 1.5M steps.
    "max_steps": 1_500_000,
}

_DIGITS = {
    "dataset": "digits", "image_size": 16, "num_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 2,
    "attention_resolutions": (8,), "num_heads": 4, "use_scale_shift_norm": True, "dropout": 0.0,
    "learn_sigma": True, "diffusion_steps": 1000, "noise_schedule": "cosine", "use_kl": False,
    "rescale_learned_sigmas": True, "schedule_sampler": "uniform", "rescale_timesteps": True,
    "lr": 2e-4, "weight_decay": 0.0, "batch_size": 64, "ema_rate": (0.999,),
    # ddx additions (DESIGN.md reports figures at 3,000 steps).
    "max_steps": 3000, "log_interval": 50, "save_interval": 1000,
}



PRESETS: Mapping[str, Preset] = MappingProxyType({
    "cifar10": Preset("cifar10", "unconditional CIFAR-10, L_hybrid, cosine 4,000 steps (official README)",
                      _CIFAR10, base=IDDPM_DEFAULTS),
    "imagenet64": Preset("imagenet64", "unconditional ImageNet-64, L_hybrid, cosine 4,000 steps (official README)",
                         _IMAGENET64, base=IDDPM_DEFAULTS),
    "digits": Preset("digits", "16x16 digits on a CPU, L_hybrid, cosine 1,000 steps (DESIGN.md)",
                     _DIGITS, base=IDDPM_DEFAULTS),
})

