"""Backbones: tensors to tensors, knowing nothing of betas.

    UNetModel / build_unet / create_model   IDDPM's UNet (official state_dict layout)
    NCSNpp                                  DDGAN's NCSN++ generator (official state_dict layout)
    Discriminator_small / Discriminator_large   DDGAN's time-conditioned discriminators
    ToyGenerator / ToyDiscriminator         MLPs for DDGAN on 2-D data
"""

from ddx.models.discriminator import Discriminator_large, Discriminator_small
from ddx.models.ncsnpp import NCSNpp, NCSNppConfig
from ddx.models.toy import ToyConfig, ToyDiscriminator, ToyGenerator
from ddx.models.unet import UNetModel, build_unet, create_model
from ddx.models.unet_config import UNetConfig

__all__ = [
    "Discriminator_large",
    "Discriminator_small",
    "NCSNpp",
    "NCSNppConfig",
    "ToyConfig",
    "ToyDiscriminator",
    "ToyGenerator",
    "UNetConfig",
    "UNetModel",
    "build_unet",
    "create_model",
]
