"""DDGAN presets: the official README's training recipes and ddx's CPU presets.

The official recipes (NVlabs/denoising-diffusion-gan readme.md, "Training Denoising Diffusion GANs") set the
flags below; the rest keep train_ddgan.py's defaults. --batch_size is per process, as there: CIFAR-10 ran on
4 GPUs, LSUN and CelebA-HQ on 8 (launch with torchrun --nproc_per_node to match the global batch).
LSUN church and CelebA-HQ 256 are read from LMDB folders (--data_root); CIFAR-10 from its python batches.
Each preset is a typed partial DDGANRunConfig (its keys are the configuration's flat field names), checked
against the defaults when it is defined.
"""

from ddx.data.factory import DatasetName
from ddx.presets import Preset
from ddx.train.ddgan_config import DEFAULTS

_SAVE = dict(save_content=True)

CIFAR10 = Preset(
    "cifar10",
    "official CIFAR-10 recipe: 4 steps, NCSN++ 128 ch (1,2,2,2), batch 64 per GPU x 4, 1800 epochs",
    dict(dataset=DatasetName.CIFAR10, exp="ddgan_cifar10_exp1", num_channels=3, num_channels_dae=128,
         num_timesteps=4, num_res_blocks=2, batch_size=64, num_epoch=1800, ngf=64, nz=100, z_emb_dim=256,
         n_mlp=4, embedding_type="positional", use_ema=True, ema_decay=0.9999, r1_gamma=0.02, lr_d=1.25e-4,
         lr_g=1.6e-4, lazy_reg=15, ch_mult=(1, 2, 2, 2), **_SAVE),
    base=DEFAULTS,
)

LSUN = Preset(
    "lsun",
    "official LSUN church 256 recipe: 4 steps, NCSN++ 64 ch (1,1,2,2,4,4), batch 8 per GPU x 8, 500 epochs",
    dict(dataset=DatasetName.LMDB, image_size=256, exp="ddgan_lsun_exp1", num_channels=3, num_channels_dae=64,
         ch_mult=(1, 1, 2, 2, 4, 4), num_timesteps=4, num_res_blocks=2, batch_size=8, num_epoch=500, ngf=64,
         embedding_type="positional", use_ema=True, ema_decay=0.999, r1_gamma=1.0, z_emb_dim=256, lr_d=1e-4,
         lr_g=1.6e-4, lazy_reg=10, **_SAVE),
    base=DEFAULTS,
)

CELEBA_256 = Preset(
    "celeba_256",
    "official CelebA-HQ 256 recipe: 2 steps, NCSN++ 64 ch (1,1,2,2,4,4), batch 4 per GPU x 8, 800 epochs",
    dict(dataset=DatasetName.LMDB, image_size=256, exp="ddgan_celebahq_exp1", num_channels=3,
         num_channels_dae=64, ch_mult=(1, 1, 2, 2, 4, 4), num_timesteps=2, num_res_blocks=2, batch_size=4,
         num_epoch=800, ngf=64, embedding_type="positional", use_ema=True, r1_gamma=2.0, z_emb_dim=256,
         lr_d=1e-4, lr_g=2e-4, lazy_reg=10, **_SAVE),
    base=DEFAULTS,
)

# stacked_digits: an epoch of 20 x 1,437 draws holds every one of the 1,000 modes (~29 times on average; the
# default 2 x 1,437 would leave ~57 modes out of the data). ngf 16 keeps D (0.8M parameters) near G (1.5M):
# with the CPU upfirdn2d as a depthwise conv a step costs ~0.8 s of 2 idle cores (ngf 32: ~1.1 s, D 3.1M).
# Measured (EMA G, 10,000 samples; bench/results/cpu-ddgan-stacked_digits-2026-11-23.json), modes / KL:
#   10 epochs (4,490 steps): 562 / 1.71;   12 epochs (this preset, 5,388 steps, ~70 min): 769 / 1.13.
#   Real stacked digits: 1,000 / 0.05. Paper (StackedMNIST): 1,000 / 0.071. Longer runs: --num_epoch.
STACKED_DIGITS = Preset(
    "stacked_digits",
    "CPU preset: stacked 16x16 digits (1,000 modes), 4 steps, small NCSN++ (32 ch, (1,2,2)) + Discriminator_small",
    dict(dataset=DatasetName.STACKED_DIGITS, exp="ddgan_stacked_digits", image_size=16, num_channels=3,
         data_length=20 * 1437, num_channels_dae=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(8,),
         n_mlp=2, nz=32, z_emb_dim=64, t_emb_dim=64, ngf=16, num_timesteps=4, batch_size=64, num_epoch=11,
         lr_g=1.6e-4, lr_d=1.25e-4, r1_gamma=0.02, lazy_reg=15, use_ema=True, ema_decay=0.999, save_content=True,
         save_content_every=1, save_ckpt_every=1, log_interval=50),
    base=DEFAULTS,
)

# toy25: the chain does its generating in the noisiest step and denoises in the others when the modes are
# far apart relative to the unit-variance noise, so the data are trained at four times their size
# (data_scale 0.25: x / 0.25, spacing 8, std 0.2; sample.py scales back). Measured (2,000 samples, cosine
# LR to 1e-5 over the run, batch 256, width 256, nz 2), modes / high-quality fraction (within 3 sigma):
#   x / 4 (data in [-1, 1]), lr 2e-4, r1 0.01:          3,000 steps: 19 / 6.4%            (raw G)
#   x / 1,                   lr 2e-4, r1 0.01:          4,000 steps: 21 / 7.9%            (raw G)
#   x / 0.5, lr_g 2e-4, lr_d 5e-4, r1 0.001, full run (19,890 steps):
#       epoch 10: 22 / 9%;  20: 24 / 40%;  30: 24 / 63%;  40: 24 / 71%;  50 (end): 23 / 73%   (EMA G)
#   x / 0.25, same otherwise (this preset), full run: ~8,700 steps: 25 / 55%;
#       end (19,890 steps): 25 / 83.9% (EMA G), 25 / 83.7% (raw G)
# A step costs ~25 ms of one idle core (single thread: the MLPs are too small for two), so the 51 epochs
# of 390 batches take ~8-9 minutes; the measured run took ~22 minutes beside other work on 2 cores.
TOY25 = Preset(
    "toy25",
    "CPU preset: 2-D grid of 25 Gaussians, 4 steps, MLP generator and discriminator (data trained at 4x size)",
    dict(dataset=DatasetName.TOY25, exp="ddgan_toy25", num_timesteps=4, nz=2, t_emb_dim=64, toy_hidden=256,
         toy_layers=3, data_scale=0.25, batch_size=256, num_epoch=50, lr_g=2e-4, lr_d=5e-4, r1_gamma=0.001,
         use_ema=True, ema_decay=0.999, save_content_every=10, save_ckpt_every=10, log_interval=100),
    base=DEFAULTS,
)

PRESETS = {p.name: p for p in (CIFAR10, LSUN, CELEBA_256, STACKED_DIGITS, TOY25)}
