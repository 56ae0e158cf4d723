"""DDGAN flags shared by train.py and sample.py, their cross-checks, and what they build.

Flag names and defaults are train_ddgan.py's (the store_false flags keep the official meaning: giving
`--centered`, `--resamp_with_conv`, `--conditional`, `--fir` or `--skip_rescale` switches that feature
off). ddx adds --preset, --dataset names of its own (official names map onto them), --data_root,
--data_scale, --toy_hidden/--toy_layers (the MLPs of the 2-D datasets), --device, --nvtx, --fused/--no-fused.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from torch import nn

from ddx.cli.validators import (
    NONE_WORDS,
    FlagChecks,
    FlagValueError,
    enum_choice,
    existing_dir,
    given_dests,
    non_negative_int,
    positive_float,
    positive_int,
    preset_sources,
    probability,
)
from ddx.data.factory import DRAWN, TOY, DataConfig, DatasetName
from ddx.diffusion.ddgan import DDGANDiffusionConfig, get_sigma_schedule
from ddx.models.ncsnpp_config import (
    EmbeddingType,
    NCSNppConfig,
    Progressive,
    ProgressiveCombine,
    ProgressiveInput,
    ResblockType,
)
from ddx.models.toy import ToyConfig
from ddx.presets import Preset, get_preset, presets

# The official --dataset values and the ddx datasets that stand for them.
OFFICIAL_DATASETS = {"stackmnist": DatasetName.STACKED_DIGITS, "lsun": DatasetName.LMDB,
                     "celeba_256": DatasetName.LMDB}
FILE_DATASETS = (DatasetName.IMAGE_FOLDER, DatasetName.CIFAR10, DatasetName.LMDB)
# Discriminator_small for the official 32-px datasets (cifar10, stackmnist) and ddx's small digits sets.
SMALL_D_DATASETS = (DatasetName.CIFAR10, DatasetName.STACKED_DIGITS, DatasetName.DIGITS)
# Preset values that belong to the preset's dataset, and the flag defaults they return to on another one.
DATASET_SPECIFIC = {"data_length": None, "data_scale": 1.0}


class DiscriminatorKind(enum.Enum):
    TOY = "toy"
    SMALL = "small"
    LARGE = "large"


def dataset_name(text: str) -> DatasetName:
    """A ddx dataset name, or an official one (stackmnist, lsun, celeba_256) mapped to its ddx dataset."""
    key = text.strip().lower()
    if key in OFFICIAL_DATASETS:
        return OFFICIAL_DATASETS[key]
    try:
        return DatasetName(key)
    except ValueError:
        valid = [d.value for d in DatasetName] + list(OFFICIAL_DATASETS)
        raise FlagValueError(f"unknown dataset {text!r}; choose from: {', '.join(valid)}") from None


def resolution_or_none(text: str) -> int | None:
    """A positive resolution, or None for '' / none (no attention)."""
    return None if text.strip().lower() in NONE_WORDS else positive_int(text)


class ResolutionsAction(argparse.Action):
    """Stores the resolutions given as a tuple, without the '' / none words (`--attn_resolutions none`: ())."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(v for v in values if v is not None))


def is_toy(args: argparse.Namespace) -> bool:
    return args.dataset in TOY


def add_preset_flag(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(presets("ddgan"))
    parser.add_argument("--preset", default=None, help=f"flag defaults of a recipe ({names}); explicit flags win")


def apply_preset(parser: argparse.ArgumentParser, argv: Sequence[str], ignore: Collection[str] = ()) -> Preset | None:
    """Install the defaults of the --preset named in argv (if any) on the parser, but those named in `ignore`;
    returns that preset."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--preset", default=None)
    known, _ = probe.parse_known_args(list(argv))
    if known.preset is None:
        return None
    try:
        preset = get_preset("ddgan", known.preset)
    except ValueError as err:
        parser.error(f"argument --preset: {err}")
    parser.set_defaults(**{dest: value for dest, value in preset.defaults.items() if dest not in ignore})
    return preset


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str], recorded: Mapping[str, Any] | None = None,
                recorded_from: str = "", ignore: Collection[str] = ()) -> tuple[argparse.Namespace, FlagChecks]:
    """Parse argv over the --preset's defaults (and, above them, `recorded` values, e.g. a run's config.json).

    Returns the flags and a FlagChecks whose messages say which values came from the preset (or from
    `recorded_from`) rather than from the command line; the preset's values named in `ignore` are not used
    (sampling's --batch_size is not the preset's training batch). A preset value that only applies to the preset's
    own dataset (data_length of a drawn dataset, data_scale of a 2-D one) is dropped when the user chose a
    dataset where it does not apply and did not give that flag.
    """
    preset = apply_preset(parser, argv, ignore)
    if recorded:
        parser.set_defaults(**recorded)
    args = parser.parse_args(list(argv))
    given = given_dests(parser, argv)
    sources = preset_sources(None if preset is None else preset.name,
                             {} if preset is None else {k: v for k, v in preset.defaults.items() if k not in ignore},
                             given)
    sources.update({dest: f"from {recorded_from}" for dest in (recorded or {}) if dest not in given})
    if preset is not None and args.dataset is not preset.defaults.get("dataset", args.dataset):
        for dest, unset in DATASET_SPECIFIC.items():
            if dest in preset.defaults and dest not in given and dest not in (recorded or {}):
                setattr(args, dest, unset)
                sources.pop(dest, None)
    return args, FlagChecks(args, sources)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Data, diffusion and network flags (what both training and sampling need to rebuild G)."""
    group = parser.add_argument_group("data and diffusion")
    group.add_argument("--dataset", type=dataset_name, default=DatasetName.CIFAR10,
                       help="digits, stacked_digits, toy25, rings, image_folder, cifar10, lmdb "
                            "(official names stackmnist, lsun, celeba_256 also accepted)")
    group.add_argument("--data_root", type=existing_dir, default=None,
                       help="folder of the dataset's files (image_folder, cifar10, lmdb)")
    group.add_argument("--data_scale", type=positive_float, default=1.0,
                       help="train on x / data_scale (2-D datasets); samples are scaled back")
    group.add_argument("--data_length", type=positive_int, default=None,
                       help="items per epoch of the drawn datasets (stacked_digits, toy25, rings); default: "
                            "the dataset's own (stacked_digits: 2 x the 1,437 training digits)")
    group.add_argument("--image_size", type=positive_int, default=32)
    group.add_argument("--num_channels", type=positive_int, default=3)
    group.add_argument("--centered", action="store_false", default=True, help="(official) give to switch off")
    group.add_argument("--use_geometric", action="store_true", default=False)
    group.add_argument("--beta_min", type=positive_float, default=0.1)
    group.add_argument("--beta_max", type=positive_float, default=20.0)
    group.add_argument("--num_timesteps", type=positive_int, default=4)

    net = parser.add_argument_group("generator (NCSN++) and the 2-D MLPs")
    net.add_argument("--num_channels_dae", type=positive_int, default=128)
    net.add_argument("--n_mlp", type=non_negative_int, default=3)
    net.add_argument("--ch_mult", nargs="+", type=positive_int, default=None,
                     help="channel multipliers, e.g. 1 2 2 2 (no official default: required for image data)")
    net.add_argument("--num_res_blocks", type=positive_int, default=2)
    net.add_argument("--attn_resolutions", nargs="*", type=resolution_or_none, default=(16,),
                     action=ResolutionsAction,
                     help="feature-map sizes with self-attention, e.g. 16; none (or '', or no value) for none "
                          "(NCSN++'s middle block keeps its attention, as the official)")
    net.add_argument("--dropout", type=probability, default=0.0)
    net.add_argument("--resamp_with_conv", action="store_false", default=True, help="(official) give to switch off")
    net.add_argument("--conditional", action="store_false", default=True, help="(official) give to switch off")
    net.add_argument("--fir", action="store_false", default=True, help="(official) give to switch off")
    net.add_argument("--fir_kernel", nargs="+", type=positive_int, default=(1, 3, 3, 1))
    net.add_argument("--skip_rescale", action="store_false", default=True, help="(official) give to switch off")
    net.add_argument("--resblock_type", type=enum_choice(ResblockType), default=ResblockType.BIGGAN)
    net.add_argument("--progressive", type=enum_choice(Progressive), default=Progressive.NONE)
    net.add_argument("--progressive_input", type=enum_choice(ProgressiveInput), default=ProgressiveInput.RESIDUAL)
    net.add_argument("--progressive_combine", type=enum_choice(ProgressiveCombine), default=ProgressiveCombine.SUM)
    net.add_argument("--embedding_type", type=enum_choice(EmbeddingType), default=EmbeddingType.POSITIONAL)
    net.add_argument("--fourier_scale", type=positive_float, default=16.0)
    net.add_argument("--not_use_tanh", action="store_true", default=False)
    net.add_argument("--nz", type=positive_int, default=100)
    net.add_argument("--z_emb_dim", type=positive_int, default=256)
    net.add_argument("--t_emb_dim", type=positive_int, default=256)
    net.add_argument("--toy_hidden", type=positive_int, default=256, help="width of the 2-D MLPs (G and D)")
    net.add_argument("--toy_layers", type=positive_int, default=3, help="hidden layers of the 2-D MLPs")

    run = parser.add_argument_group("execution")
    run.add_argument("--seed", type=non_negative_int, default=1024)
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    run.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                     help="Triton kernels (--no-fused: the eager PyTorch reference path)")
    run.add_argument("--nvtx", action="store_true", default=False, help="NVTX ranges for Nsight")


def check_model_flags(args: argparse.Namespace, checks: FlagChecks, reads_data: bool = True,
                      builds_discriminator: bool = True) -> None:
    """Cross-flag checks of add_model_flags' flags (recorded in `checks`).

    reads_data: the command reads the dataset (training, FID), so a file dataset needs --data_root.
    builds_discriminator: the command builds D (training), so the image size must suit it.
    """
    checks.require(args.beta_min <= args.beta_max, ["beta_min", "beta_max"], "need beta_min <= beta_max")
    if args.use_geometric and args.beta_min <= args.beta_max:
        try:
            get_sigma_schedule(diffusion_config(args))
        except ValueError as err:
            checks.require(False, ["use_geometric", "beta_max"], str(err))
    needs_root = args.dataset in FILE_DATASETS
    checks.require(not (needs_root and reads_data) or args.data_root is not None, ["dataset", "data_root"],
                   f"dataset {args.dataset.value} reads files: give --data_root")
    checks.require(needs_root or args.data_root is None, ["dataset", "data_root"],
                   f"dataset {args.dataset.value} is built in and takes no --data_root")
    checks.require(args.data_length is None or args.dataset in DRAWN, ["dataset", "data_length"],
                   f"dataset {args.dataset.value} has a fixed number of items and takes no --data_length")
    checks.require(is_toy(args) or args.data_scale == 1.0, ["dataset", "data_scale"],
                   "--data_scale applies to the 2-D datasets only (images are already in [-1, 1])")
    if builds_discriminator and getattr(args, "discriminator", None) is not None:
        checks.require(not is_toy(args), ["discriminator", "dataset"],
                       "the 2-D datasets train with the MLP discriminator: --discriminator is for image data")
    if is_toy(args):
        return
    checks.require(args.ch_mult is not None, ["dataset", "ch_mult"], "image data needs --ch_mult (e.g. 1 2 2 2)")
    checks.require(args.num_channels == 3, ["num_channels"], "ddx image datasets have 3 channels")
    if args.ch_mult is None:
        return
    levels = len(args.ch_mult)
    checks.require(args.image_size % 2 ** (levels - 1) == 0, ["image_size", "ch_mult"],
                   f"{levels} levels of ch_mult halve the image {levels - 1} times: image_size must be "
                   f"divisible by {2 ** (levels - 1)}")
    resolutions = [args.image_size // 2**i for i in range(levels)]
    stray = [r for r in args.attn_resolutions if r not in resolutions]
    checks.require(not stray, ["attn_resolutions", "image_size"],
                   f"attention at {stray} but the generator's resolutions are {resolutions}")
    checks.require(args.num_channels_dae >= 4, ["num_channels_dae"], "must be >= 4 (GroupNorm of C // 4 groups)")
    if not builds_discriminator:
        return
    kind = discriminator_kind(args)
    factor = 8 if kind is DiscriminatorKind.SMALL else 64
    chosen = ["discriminator"] if getattr(args, "discriminator", None) is not None else ["dataset"]
    hint = ("" if chosen == ["discriminator"] or kind is DiscriminatorKind.SMALL or args.image_size % 8
            else " (or --discriminator small, which needs a multiple of 8)")
    checks.require(args.image_size % factor == 0, ["image_size"] + chosen,
                   f"Discriminator_{kind.value} halves the image {factor.bit_length() - 1} times: image_size "
                   f"must be divisible by {factor}{hint}")


def diffusion_config(args: argparse.Namespace) -> DDGANDiffusionConfig:
    return DDGANDiffusionConfig(args.num_timesteps, args.beta_min, args.beta_max, args.use_geometric)


def discriminator_kind(args: argparse.Namespace) -> DiscriminatorKind:
    """--discriminator when given; else as train_ddgan.py: small for its 32-px datasets (and ddx's digits),
    large otherwise; the MLP for 2-D data."""
    if is_toy(args):
        return DiscriminatorKind.TOY
    chosen = getattr(args, "discriminator", None)
    if chosen is not None:
        return chosen
    return DiscriminatorKind.SMALL if args.dataset in SMALL_D_DATASETS else DiscriminatorKind.LARGE


def discriminator_choice(text: str) -> DiscriminatorKind:
    """small (Discriminator_small) or large (Discriminator_large), for image data."""
    value = text.strip().lower().removeprefix("discriminator_")
    if value not in (DiscriminatorKind.SMALL.value, DiscriminatorKind.LARGE.value):
        raise FlagValueError(f"expected small or large (Discriminator_small / Discriminator_large), got {text!r}")
    return DiscriminatorKind(value)


def add_discriminator_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--discriminator", type=discriminator_choice, default=None,
                        help="small or large (default, as train_ddgan.py: small for cifar10, stackmnist and ddx's "
                             "digits sets, large for the others; image sizes: small a multiple of 8, large of 64)")


def generator_config(args: argparse.Namespace) -> NCSNppConfig | ToyConfig:
    if is_toy(args):
        return ToyConfig(data_dim=2, nz=args.nz, hidden=args.toy_hidden, num_layers=args.toy_layers,
                         t_emb_dim=args.t_emb_dim, num_timesteps=args.num_timesteps)
    return NCSNppConfig.from_args(args)


def build_generator(args: argparse.Namespace) -> nn.Module:
    from ddx.models.ncsnpp import NCSNpp
    from ddx.models.toy import ToyGenerator

    config = generator_config(args)
    return ToyGenerator(config) if isinstance(config, ToyConfig) else NCSNpp(config)


def build_discriminator(args: argparse.Namespace) -> nn.Module:
    from ddx.models.discriminator import Discriminator_large, Discriminator_small
    from ddx.models.toy import ToyDiscriminator

    kind = discriminator_kind(args)
    if kind is DiscriminatorKind.TOY:
        return ToyDiscriminator(generator_config(args))
    cls = Discriminator_small if kind is DiscriminatorKind.SMALL else Discriminator_large
    return cls(nc=2 * args.num_channels, ngf=args.ngf, t_emb_dim=args.t_emb_dim, act=nn.LeakyReLU(0.2))


def data_config(args: argparse.Namespace, split: str = "train") -> DataConfig:
    """The training data: file datasets flip horizontally as the official transforms do."""
    name = args.dataset
    image_size = None if is_toy(args) else args.image_size
    return DataConfig(name, root=None if args.data_root is None else str(args.data_root), image_size=image_size,
                      split=split, seed=args.seed, random_flip=name in FILE_DATASETS and split == "train",
                      length=args.data_length)


def sample_shape(args: argparse.Namespace) -> tuple[int, ...]:
    """The shape of one sample: (2,) for 2-D data, (C, S, S) for images."""
    return (2,) if is_toy(args) else (args.num_channels, args.image_size, args.image_size)


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
