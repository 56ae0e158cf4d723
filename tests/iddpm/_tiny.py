"""A tiny IDDPM set-up (8x8 digits, 2-level UNet, 20-step cosine diffusion) that trains in tens of ms
per step on a CPU. Every model runs the eager path (fused=False): under the test session's
TRITON_INTERPRET=1 the fused path would run the Triton interpreter, which is for the kernel tests."""

import numpy as np
import torch

from ddx.data import make_dataset
from ddx.diffusion import DiffusionConfig
from ddx.models.unet import UNetConfig, build_unet
from ddx.ops import set_fused
from ddx.train.iddpm import IddpmTrainConfig, IddpmTrainer

TINY_MODEL_FLAGS = [
    "--image_size", "8", "--channel_mult", "1,2", "--num_channels", "32",
    "--num_res_blocks", "1", "--attention_resolutions", "4", "--num_heads", "2", "--learn_sigma", "True",
    "--diffusion_steps", "20", "--noise_schedule", "cosine", "--no-fused", "--num_threads", "1",
]
TINY_FLAGS = ["--dataset", "digits"] + TINY_MODEL_FLAGS


def tiny_unet(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    config = UNetConfig(image_size=8, num_channels=32, num_res_blocks=1, learn_sigma=True, attention_resolutions=(4,),
                        num_heads=2, channel_mult=(1, 2), dropout=dropout)
    return set_fused(build_unet(config), False)


def tiny_diffusion(steps=20):
    return DiffusionConfig(steps=steps, learn_sigma=True, noise_schedule="cosine", rescale_timesteps=True,
                           rescale_learned_sigmas=True).build(fused=False)


def tiny_trainer(seed=0, execution=None, **config):
    config.setdefault("batch_size", 6)
    return IddpmTrainer(tiny_unet(seed), tiny_diffusion(), IddpmTrainConfig(**config), execution=execution)


def digits_batch(n, seed=0):
    data = make_dataset("digits", image_size=8)
    idx = np.random.default_rng(seed).choice(len(data), n, replace=False)
    x = torch.stack([data[int(i)][0] for i in idx])
    y = torch.tensor([data[int(i)][1] for i in idx])
    return x, y


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
