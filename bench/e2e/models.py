"""The networks and diffusions of the end-to-end workloads, from ddx's presets (random weights: timing only).

DDGAN cifar10 / celeba_256 are the official README recipes (ddx.presets.ddgan; the flags a recipe leaves
out keep train_ddgan.py's defaults, which NCSNppConfig's defaults are); IDDPM cifar10 is the official
L_hybrid recipe (ddx.presets.iddpm) with image_train.py's model and diffusion defaults. `tiny` gives
scaled-down stand-ins of the same architectures for a CPU run.
"""

import dataclasses

from torch import nn

from ddx.diffusion import DiffusionConfig
from ddx.diffusion.ddgan import DDGANDiffusionConfig
from ddx.models.discriminator import Discriminator_large, Discriminator_small
from ddx.models.ncsnpp import NCSNpp, NCSNppConfig
from ddx.models.unet import UNetConfig, build_unet
from ddx.presets.ddgan import PRESETS as DDGAN_PRESETS
from ddx.presets.iddpm import preset_defaults as iddpm_preset_defaults
from ddx.train.ddgan import DDGANTrainConfig

# train_ddgan.py's default --t_emb_dim, which the recipes keep (the discriminator's time embedding).
DDGAN_T_EMB_DIM = 256
TINY_NCSNPP = dict(image_size=8, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                   nz=8, z_emb_dim=16, n_mlp=1)
# 32 channels: the UNet's GroupNorm32 has 32 groups.
TINY_UNET = dict(image_size=8, num_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(4,),
                 num_heads=2)


@dataclasses.dataclass(frozen=True)
class DDGANSetup:
    generator: NCSNppConfig
    diffusion: DDGANDiffusionConfig
    train: DDGANTrainConfig
    ngf: int
    batch_size: int

    @property
    def sample_shape(self):
        return (self.generator.num_channels, self.generator.image_size, self.generator.image_size)

    def build_generator(self, device):
        return NCSNpp(self.generator).to(device)

    def build_discriminator(self, device):
        # train_ddgan.py: Discriminator_small for its 32-px datasets, Discriminator_large otherwise.
        cls = Discriminator_small if self.generator.image_size <= 32 else Discriminator_large
        return cls(nc=2 * self.generator.num_channels, ngf=self.ngf, t_emb_dim=DDGAN_T_EMB_DIM, act=nn.LeakyReLU(0.2)).to(device)


def _fields_of(cls, values):
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def ddgan_setup(preset, tiny=False):
    """The DDGAN recipe `preset` ("cifar10", "celeba_256"), or its tiny stand-in."""
    values = dict(DDGAN_PRESETS[preset].defaults)
    if tiny:
        values.update(TINY_NCSNPP, ngf=8, batch_size=2)
    diffusion = DDGANDiffusionConfig(num_timesteps=values["num_timesteps"])
    return DDGANSetup(
        generator=NCSNppConfig(**_fields_of(NCSNppConfig, values)),
        diffusion=diffusion,
        train=DDGANTrainConfig(**_fields_of(DDGANTrainConfig, values)),
        ngf=values["ngf"],
        batch_size=values["batch_size"],
    )


@dataclasses.dataclass(frozen=True)
class IDDPMSetup:
    unet: UNetConfig
    diffusion: DiffusionConfig
    batch_size: int
    lr: float

    @property
    def sample_shape(self):
        return (self.unet.in_channels, self.unet.image_size, self.unet.image_size)

    def build_model(self, device):
        return build_unet(self.unet).to(device)

    def build_diffusion(self, timestep_respacing="", fused=True):
        return dataclasses.replace(self.diffusion, timestep_respacing=timestep_respacing).build(fused=fused)


def iddpm_setup(tiny=False):
    """IDDPM's CIFAR-10 recipe (cosine, 4,000 steps, learned sigmas, hybrid loss), or its tiny stand-in."""
    values = iddpm_preset_defaults("cifar10")
    unet = dict(image_size=values["image_size"], num_channels=values["num_channels"],
                num_res_blocks=values["num_res_blocks"], learn_sigma=values["learn_sigma"], dropout=values["dropout"])
    steps, batch = values["diffusion_steps"], values["batch_size"]
    if tiny:
        unet.update(TINY_UNET)
        steps, batch = 100, 2
    # image_train.py's defaults for what the recipe does not set: rescale_timesteps and rescale_learned_sigmas on.
    diffusion = DiffusionConfig(steps=steps, learn_sigma=values["learn_sigma"], noise_schedule=values["noise_schedule"],
                                rescale_timesteps=True, rescale_learned_sigmas=True)
    return IDDPMSetup(unet=UNetConfig(**unet), diffusion=diffusion, batch_size=batch, lr=values["lr"])
