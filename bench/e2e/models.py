"""The networks and diffusions of the end-to-end workloads, from ddx's presets (random weights: timing only).

DDGAN cifar10 / celeba_256 are the official README recipes (ddx.presets.ddgan), laid over train_ddgan.py's
defaults as train.py ddgan lays them (ddx.train.ddgan_config.DDGANRunConfig) and built by the trainer's own
builders (ddx.train.ddgan_setup: the same generator and discriminator choice); IDDPM cifar10 is the official
L_hybrid recipe (ddx.presets.iddpm) laid over image_train.py's defaults (ddx.train.iddpm_config.IddpmRunConfig)
and built as train.py iddpm builds it. `tiny` gives
scaled-down stand-ins of the same architectures for a CPU run.
"""

import dataclasses

from ddx.models.unet import build_unet
from ddx.presets.ddgan import PRESETS as DDGAN_PRESETS
from ddx.presets.iddpm import PRESETS as IDDPM_PRESETS
from ddx.train import ddgan_setup as ddgan_builders
from ddx.train.ddgan_config import DEFAULTS as DDGAN_DEFAULTS
from ddx.train.ddgan_config import DDGANRunConfig, DiscriminatorKind
from ddx.train.iddpm_config import IDDPM_DEFAULTS, IddpmRunConfig
from ddx.utils.config_io import replace_flat

# The 8-px stand-ins take Discriminator_small (a multiple of 8), whatever the recipe's dataset picks.
TINY_NCSNPP = dict(image_size=8, num_channels_dae=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
                   nz=8, z_emb_dim=16, n_mlp=1, ngf=8, batch_size=2, discriminator=DiscriminatorKind.SMALL)
# 32 channels: the UNet's GroupNorm32 has 32 groups.
TINY_UNET = dict(image_size=8, num_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(4,),
                 num_heads=2)


@dataclasses.dataclass(frozen=True)
class DDGANSetup:
    """A DDGAN workload: its run configuration, and the networks train.py ddgan would build from it."""

    config: DDGANRunConfig

    @property
    def generator(self):
        return self.config.generator

    @property
    def diffusion(self):
        return self.config.diffusion

    @property
    def train(self):
        return self.config.train

    @property
    def batch_size(self) -> int:
        return self.config.loop.batch_size

    @property
    def sample_shape(self):
        return ddgan_builders.sample_shape(self.config)

    def build_generator(self, device):
        return ddgan_builders.build_generator(self.config).to(device)

    def build_discriminator(self, device):
        return ddgan_builders.build_discriminator(self.config).to(device)


def ddgan_setup(preset, tiny=False):
    """The DDGAN recipe `preset` ("cifar10", "celeba_256"), or its tiny stand-in."""
    values = dict(DDGAN_PRESETS[preset].defaults)
    if tiny:
        values.update(TINY_NCSNPP)
    return DDGANSetup(replace_flat(DDGAN_DEFAULTS, values, f"bench workload {preset}{' (tiny)' if tiny else ''}"))


@dataclasses.dataclass(frozen=True)
class IDDPMSetup:
    """An IDDPM workload: its run configuration, and the networks train.py iddpm would build from it."""

    config: IddpmRunConfig

    @property
    def unet(self):
        return self.config.model

    @property
    def diffusion(self):
        return self.config.diffusion_config()

    @property
    def batch_size(self) -> int:
        return self.config.train.batch_size

    @property
    def lr(self) -> float:
        return self.config.train.lr

    def train_config(self):
        return self.config.train_config()

    @property
    def sample_shape(self):
        return (self.unet.in_channels, self.unet.image_size, self.unet.image_size)

    def build_model(self, device):
        return build_unet(self.unet).to(device)

    def build_diffusion(self, timestep_respacing="", fused=True):
        return dataclasses.replace(self.diffusion, timestep_respacing=timestep_respacing).build(fused=fused)


def iddpm_setup(tiny=False):
    """IDDPM's CIFAR-10 recipe (cosine, 4,000 steps, learned sigmas, hybrid loss) laid over image_train.py's
    defaults as train.py iddpm lays it (IddpmRunConfig: rescale_timesteps and rescale_learned_sigmas on), or its
    tiny stand-in."""
    values = dict(IDDPM_PRESETS["cifar10"].defaults)
    if tiny:
        values.update(TINY_UNET, diffusion_steps=100, batch_size=2)
    return IDDPMSetup(replace_flat(IDDPM_DEFAULTS, values, f"bench workload iddpm cifar10{' (tiny)' if tiny else ''}"))
