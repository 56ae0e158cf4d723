"""What a DDGAN run configuration builds: the generator, the discriminator, the data, the loop.

train.py ddgan, sample.py ddgan and bench/e2e all build through these functions from one
ddx.train.ddgan_config.DDGANRunConfig, so the discriminator choice, the data transforms and the 2-D
networks cannot drift between them. The flags that make the configuration live in ddx.cli.
"""

from __future__ import annotations

from torch import nn

from ddx.data.factory import TOY, DataConfig, DatasetName, build_dataset
from ddx.data.toy2d import mixture_spec
from ddx.models.ncsnpp_config import NCSNppConfig
from ddx.models.toy import ToyConfig
from ddx.train.ddgan_config import DDGANRunConfig, DiscriminatorKind
from ddx.train.loop import LoopConfig, profile_window_kwargs

FILE_DATASETS = (DatasetName.IMAGE_FOLDER, DatasetName.CIFAR10, DatasetName.LMDB)
# Discriminator_small for the official 32-px datasets (cifar10, stackmnist) and ddx's small digits sets.
SMALL_D_DATASETS = (DatasetName.CIFAR10, DatasetName.STACKED_DIGITS, DatasetName.DIGITS)


def discriminator_kind(config: DDGANRunConfig) -> DiscriminatorKind:
    """--discriminator when given; else as train_ddgan.py: small for its 32-px datasets (and ddx's digits),
    large otherwise; the MLP for 2-D data."""
    if config.is_toy:
        return DiscriminatorKind.TOY
    if config.discriminator.discriminator is not None:
        return config.discriminator.discriminator
    return DiscriminatorKind.SMALL if config.data.dataset in SMALL_D_DATASETS else DiscriminatorKind.LARGE


def generator_config(config: DDGANRunConfig) -> NCSNppConfig | ToyConfig:
    """NCSN++'s config (the generator section itself) for images; the MLP's for 2-D data."""
    if config.is_toy:
        return ToyConfig(data_dim=2, nz=config.generator.nz, hidden=config.toy.toy_hidden,
                         num_layers=config.toy.toy_layers, t_emb_dim=config.discriminator.t_emb_dim,
                         num_timesteps=config.diffusion.num_timesteps)
    return config.generator


def build_generator(config: DDGANRunConfig) -> nn.Module:
    from ddx.models.ncsnpp import NCSNpp
    from ddx.models.toy import ToyGenerator

    net = generator_config(config)
    return ToyGenerator(net) if isinstance(net, ToyConfig) else NCSNpp(net)


def build_discriminator(config: DDGANRunConfig) -> nn.Module:
    from ddx.models.discriminator import Discriminator_large, Discriminator_small
    from ddx.models.toy import ToyDiscriminator

    kind = discriminator_kind(config)
    if kind is DiscriminatorKind.TOY:
        return ToyDiscriminator(generator_config(config))
    cls = Discriminator_small if kind is DiscriminatorKind.SMALL else Discriminator_large
    section = config.discriminator
    return cls(nc=2 * config.generator.num_channels, ngf=section.ngf, t_emb_dim=section.t_emb_dim,
               act=nn.LeakyReLU(0.2))


def data_config(config: DDGANRunConfig, split: str = "train") -> DataConfig:
    """The training data: file datasets flip horizontally as the official transforms do."""
    data = config.data
    return DataConfig(data.dataset, root=None if data.data_root is None else str(data.data_root),
                      image_size=None if config.is_toy else config.generator.image_size, split=split,
                      seed=config.loop.seed, random_flip=data.dataset in FILE_DATASETS and split == "train",
                      length=data.data_length)


def training_dataset(config: DDGANRunConfig):
    """The dataset the trainer draws from: x / data_scale for the 2-D data trained on a smaller range."""
    dataset = build_dataset(data_config(config))
    return dataset if config.data.data_scale == 1.0 else ScaledDataset(dataset, config.data.data_scale)


def sample_shape(config: DDGANRunConfig) -> tuple[int, ...]:
    """The shape of one sample: (2,) for 2-D data, (C, S, S) for images."""
    size = config.generator.image_size
    return (2,) if config.is_toy else (config.generator.num_channels, size, size)


def mixture_means(config: DDGANRunConfig):
    """The 2-D mixture's means (for the scatter plots), None for images."""
    return mixture_spec(TOY[config.data.dataset]).means if config.is_toy else None


def loop_config(config: DDGANRunConfig) -> LoopConfig:
    """The shared loop's settings: epochs 0..num_epoch (num_epoch + 1 epochs, as the official loop)."""
    loop = config.loop
    return LoopConfig(max_steps=loop.max_steps, max_epochs=config.train.num_epoch + 1, log_interval=loop.log_interval,
                      save_every_epochs=loop.save_content_every, keep_last=loop.keep_last,
                      **profile_window_kwargs(loop.profile_window))


class ScaledDataset:
    """Items (x / scale, label) of a dataset of (x, label) items (2-D data trained on a smaller range)."""

    def __init__(self, dataset, scale: float):
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.dataset, self.scale = dataset, float(scale)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, label = self.dataset[index]
        return x / self.scale, label


__all__ = ["FILE_DATASETS", "SMALL_D_DATASETS", "DiscriminatorKind", "ScaledDataset", "build_discriminator",
           "build_generator", "data_config", "discriminator_kind", "generator_config", "loop_config",
           "mixture_means", "sample_shape", "training_dataset"]
