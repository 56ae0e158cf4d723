"""The DDGAN flags of train.py and sample.py, derived from DDGANRunConfig, and their cross-flag checks.

Flag names, defaults and forms are train_ddgan.py's: every field of ddx.train.ddgan_config.DDGANRunConfig
is a flag of its name (the store_false flags keep the official meaning: giving `--centered`,
`--resamp_with_conv`, `--conditional`, `--fir` or `--skip_rescale` switches that feature off). ddx adds
--preset, dataset names of its own (the official stackmnist, lsun, celeba_256 map onto them), --data_root,
--data_scale, --data_length, --toy_hidden / --toy_layers (the 2-D MLPs), --discriminator, --device, --nvtx
and --fused / --no-fused.

resolve_config lays the family defaults < --preset < a run's recorded config < the command line, runs the
cross-flag checks on the merged values (their messages name each flag and where its value came from), and
only then builds the typed configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch

from ddx.cli.config_flags import BoolForm, FlagForms, FlagSpec, ListForm, add_config_flags, merge_layers
from ddx.cli.profile_window import PROFILE_WINDOW_SPEC
from ddx.cli.validators import (
    FlagChecks,
    FlagValueError,
    existing_dir,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from ddx.data.factory import DRAWN, TOY, DatasetName
from ddx.diffusion.ddgan import DDGANDiffusionConfig, get_sigma_schedule
from ddx.presets import Preset, get_preset, presets
from ddx.train.ddgan_config import DEFAULTS, DDGANRunConfig, DiscriminatorKind
from ddx.train.ddgan_setup import FILE_DATASETS, SMALL_D_DATASETS
from ddx.utils.config_io import flat_fields, flat_values, replace_flat

# The official --dataset values and the ddx datasets that stand for them.
OFFICIAL_DATASETS = {"stackmnist": DatasetName.STACKED_DIGITS, "lsun": DatasetName.LMDB,
                     "celeba_256": DatasetName.LMDB}
# Preset values that belong to the preset's dataset, and go back to the defaults on another one.
DATASET_SPECIFIC = ("data_length", "data_scale")
# Execution options the DDGAN code does not honour yet, or not from a flag (threads: one for the 2-D data on
# the CPU, resolve_threads): no flag that would do nothing. sample.py ddgan spells `sampler` as --mode,
# `precision` as --dtype and `memory_format` as --channels_last (ddx.cli.sample_flags); training has none of them.
UNOFFERED_EXECUTION = frozenset({"precision", "memory_format", "compile", "threads", "sampler"})


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


def discriminator_choice(text: str) -> DiscriminatorKind:
    """small (Discriminator_small) or large (Discriminator_large), for image data."""
    value = text.strip().lower().removeprefix("discriminator_")
    if value not in (DiscriminatorKind.SMALL.value, DiscriminatorKind.LARGE.value):
        raise FlagValueError(f"expected small or large (Discriminator_small / Discriminator_large), got {text!r}")
    return DiscriminatorKind(value)


def unit_interval_open(text: str) -> float:
    """A number in [0, 1)."""
    value = probability(text)
    if value >= 1.0:
        raise FlagValueError(f"expected a number in [0, 1), got {value:g}")
    return value


_OFF = "(official)"  # a store_false flag: its help says that giving it switches the feature off
SPECS: Mapping[str, FlagSpec] = {
    "dataset": FlagSpec("digits, stacked_digits, toy25, rings, image_folder, cifar10, lmdb (official names "
                        "stackmnist, lsun, celeba_256 also accepted)", type=dataset_name),
    "data_root": FlagSpec("folder of the dataset's files (image_folder, cifar10, lmdb)", type=existing_dir),
    "data_scale": FlagSpec("train on x / data_scale (2-D datasets); samples are scaled back", type=positive_float),
    "data_length": FlagSpec("items per epoch of the drawn datasets (stacked_digits, toy25, rings); default: the "
                            "dataset's own (stacked_digits: 2 x the 1,437 training digits)", type=positive_int),
    "beta_min": FlagSpec(type=positive_float), "beta_max": FlagSpec(type=positive_float),
    "num_timesteps": FlagSpec(type=positive_int), "image_size": FlagSpec(type=positive_int),
    "num_channels": FlagSpec(type=positive_int), "num_channels_dae": FlagSpec(type=positive_int),
    "n_mlp": FlagSpec(type=non_negative_int), "num_res_blocks": FlagSpec(type=positive_int),
    "ch_mult": FlagSpec("channel multipliers, e.g. 1 2 2 2 (no official default: required for image data)",
                        type=positive_int),
    "attn_resolutions": FlagSpec("feature-map sizes with self-attention, e.g. 16; none (or '', or no value) for "
                                 "none (NCSN++'s middle block keeps its attention, as the official)",
                                 type=positive_int),
    "dropout": FlagSpec(type=probability), "fir_kernel": FlagSpec(type=positive_int),
    "centered": FlagSpec(_OFF), "resamp_with_conv": FlagSpec(_OFF), "conditional": FlagSpec(_OFF),
    "fir": FlagSpec(_OFF), "skip_rescale": FlagSpec(_OFF), "fourier_scale": FlagSpec(type=positive_float),
    "nz": FlagSpec(type=positive_int), "z_emb_dim": FlagSpec(type=positive_int),
    "toy_hidden": FlagSpec("width of the 2-D MLPs (G and D)", type=positive_int),
    "toy_layers": FlagSpec("hidden layers of the 2-D MLPs", type=positive_int),
    "discriminator": FlagSpec("small or large (default, as train_ddgan.py: small for cifar10, stackmnist and ddx's "
                              "digits sets, large for the others; image sizes: small a multiple of 8, large of 64)",
                              type=discriminator_choice),
    "ngf": FlagSpec("discriminator width", type=positive_int),
    "t_emb_dim": FlagSpec("time embedding of the discriminator and the 2-D MLPs", type=positive_int),
    "lr_g": FlagSpec(type=positive_float), "lr_d": FlagSpec(type=positive_float),
    "beta1": FlagSpec(type=unit_interval_open), "beta2": FlagSpec(type=unit_interval_open),
    "ema_decay": FlagSpec(type=unit_interval_open), "r1_gamma": FlagSpec(type=non_negative_float),
    "lazy_reg": FlagSpec(type=positive_int),
    "num_epoch": FlagSpec("the last epoch: epochs 0..num_epoch run, as the official loop", type=non_negative_int),
    "seed": FlagSpec(type=non_negative_int), "exp": FlagSpec("name of the experiment"),
    "outdir": FlagSpec("run directory (default saved_info/dd_gan/<dataset>/<exp>)"),
    "batch_size": FlagSpec("per-rank batch", type=positive_int),
    "max_steps": FlagSpec("stop after this many steps (short runs)", type=positive_int),
    "log_interval": FlagSpec(type=positive_int), "keep_last": FlagSpec("ddx checkpoints kept", type=positive_int),
    "save_content_every": FlagSpec(type=positive_int), "save_ckpt_every": FlagSpec(type=positive_int),
    "profile_window": PROFILE_WINDOW_SPEC,
    "device": FlagSpec("cpu, cuda, cuda:1 (default: cuda when available)"),
    "fused": FlagSpec("Triton kernels (--no-fused: the eager PyTorch reference path)", bool_form=BoolForm.OPTIONAL),
    "nvtx": FlagSpec("NVTX ranges for Nsight"),
}
TITLES = {"data": "data", "diffusion": "diffusion", "generator": "generator (NCSN++)", "toy": "the 2-D MLPs",
          "discriminator": "discriminator", "train": "training", "loop": "run", "execution": "execution"}


def forms(skip: Collection[str] = ()) -> FlagForms:
    """train_ddgan.py's forms: store_true / store_false booleans, nargs lists; `skip`: fields without a flag."""
    return FlagForms(BoolForm.OFFICIAL_DDGAN, ListForm.NARGS, SPECS, TITLES, frozenset(UNOFFERED_EXECUTION) | set(skip))


def section_fields(*names: str) -> frozenset[str]:
    """The flat fields of the named sections of DDGANRunConfig."""
    return frozenset(f for f, (section, _) in flat_fields(DDGANRunConfig).items() if section in names)


def add_flags(parser: argparse.ArgumentParser, skip: Collection[str] = ()) -> None:
    """--preset and a flag for every DDGANRunConfig field but those in `skip`."""
    names = ", ".join(presets("ddgan"))
    parser.add_argument("--preset", default=None, help=f"flag defaults of a recipe ({names}); explicit flags win")
    add_config_flags(parser, DEFAULTS, forms(skip))


def preset_layer(parser: argparse.ArgumentParser, name: str | None, ignore: Collection[str] = ()) -> tuple[
        Preset | None, dict[str, Any]]:
    """The --preset named (None: none) and its values less those in `ignore`; a usage error for an unknown name."""
    if name is None:
        return None, {}
    try:
        preset = get_preset("ddgan", name)
    except ValueError as err:
        parser.error(f"argument --preset: {err}")
    return preset, {k: v for k, v in preset.defaults.items() if k not in ignore}


def merged_flags(preset: Preset | None, layers: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[
        dict[str, Any], dict[str, str], frozenset[str]]:
    """Every field's value after the layers (the first being the preset's), where each value that was not typed
    came from (the labels FlagChecks shows), and the fields some layer set (typed ones too).

    A preset value that only applies to the preset's own dataset (data_length of a drawn dataset, data_scale of
    a 2-D one) goes back to its default when a later layer chose another dataset without setting it."""
    merged, sources = merge_layers(layers)
    values = {**flat_values(DEFAULTS), **merged}
    if preset is not None and values["dataset"] is not preset.defaults.get("dataset", values["dataset"]):
        defaults = flat_values(DEFAULTS)
        for name in DATASET_SPECIFIC:
            if sources.get(name) == f"from --preset {preset.name}":
                values[name] = defaults[name]
                del sources[name]
    return values, {k: label for k, label in sources.items() if label}, frozenset(sources)


def build_config(parser: argparse.ArgumentParser, values: Mapping[str, Any]) -> DDGANRunConfig:
    """The typed configuration of checked values; a usage error naming the field should a section still refuse."""
    try:
        return replace_flat(DEFAULTS, values)
    except (TypeError, ValueError) as err:
        parser.error(str(err))


def is_toy(values: argparse.Namespace) -> bool:
    return values.dataset in TOY


def check_model_flags(values: argparse.Namespace, checks: FlagChecks, given: Collection[str],
                      reads_data: bool = True, builds_discriminator: bool = True) -> None:
    """Cross-flag checks of the data, diffusion and network fields (recorded in `checks`); `given`: the fields
    set by a flag, the preset or a run's record (merged_flags).

    reads_data: the command reads the dataset (training, FID), so a file dataset needs --data_root.
    builds_discriminator: the command builds D (training), so the image size must suit it."""
    _check_data_and_diffusion(values, checks, reads_data)
    if builds_discriminator and values.discriminator is not None:
        checks.require(not is_toy(values), ["discriminator", "dataset"],
                       "the 2-D datasets train with the MLP discriminator: --discriminator is for image data")
    if is_toy(values):
        return
    # NCSNppConfig has a ch_mult default; train_ddgan.py has none, so image data must say it (flag, preset, run).
    checks.require("ch_mult" in given and bool(values.ch_mult), ["dataset"],
                   "image data needs --ch_mult (train_ddgan.py has no default; e.g. 1 2 2 2, or a --preset)")
    checks.require(values.num_channels == 3, ["num_channels"], "ddx image datasets have 3 channels")
    if not values.ch_mult:
        return
    _check_generator(values, checks)
    if builds_discriminator:
        _check_discriminator_size(values, checks)


def _check_data_and_diffusion(values: argparse.Namespace, checks: FlagChecks, reads_data: bool) -> None:
    checks.require(values.beta_min <= values.beta_max, ["beta_min", "beta_max"], "need beta_min <= beta_max")
    if values.use_geometric and values.beta_min <= values.beta_max:
        try:
            get_sigma_schedule(DDGANDiffusionConfig(values.num_timesteps, values.beta_min, values.beta_max, True))
        except ValueError as err:
            checks.require(False, ["use_geometric", "beta_max"], str(err))
    needs_root = values.dataset in FILE_DATASETS
    checks.require(not (needs_root and reads_data) or values.data_root is not None, ["dataset", "data_root"],
                   f"dataset {values.dataset.value} reads files: give --data_root")
    checks.require(needs_root or values.data_root is None, ["dataset", "data_root"],
                   f"dataset {values.dataset.value} is built in and takes no --data_root")
    checks.require(values.data_length is None or values.dataset in DRAWN, ["dataset", "data_length"],
                   f"dataset {values.dataset.value} has a fixed number of items and takes no --data_length")
    checks.require(is_toy(values) or values.data_scale == 1.0, ["dataset", "data_scale"],
                   "--data_scale applies to the 2-D datasets only (images are already in [-1, 1])")


def _check_generator(values: argparse.Namespace, checks: FlagChecks) -> None:
    levels = len(values.ch_mult)
    checks.require(values.image_size % 2 ** (levels - 1) == 0, ["image_size", "ch_mult"],
                   f"{levels} levels of ch_mult halve the image {levels - 1} times: image_size must be "
                   f"divisible by {2 ** (levels - 1)}")
    resolutions = [values.image_size // 2**i for i in range(levels)]
    stray = [r for r in values.attn_resolutions if r not in resolutions]
    checks.require(not stray, ["attn_resolutions", "image_size"],
                   f"attention at {stray} but the generator's resolutions are {resolutions}")
    checks.require(values.num_channels_dae >= 4, ["num_channels_dae"], "must be >= 4 (GroupNorm of C // 4 groups)")
    checks.require(values.dropout < 1.0, ["dropout"], "must be below 1")


def _check_discriminator_size(values: argparse.Namespace, checks: FlagChecks) -> None:
    chosen = values.discriminator
    if chosen is None:
        chosen = DiscriminatorKind.SMALL if values.dataset in SMALL_D_DATASETS else DiscriminatorKind.LARGE
    factor = 8 if chosen is DiscriminatorKind.SMALL else 64
    named = ["discriminator"] if values.discriminator is not None else ["dataset"]
    hint = ("" if named == ["discriminator"] or chosen is DiscriminatorKind.SMALL or values.image_size % 8
            else " (or --discriminator small, which needs a multiple of 8)")
    checks.require(values.image_size % factor == 0, ["image_size"] + named,
                   f"Discriminator_{chosen.value} halves the image {factor.bit_length() - 1} times: image_size "
                   f"must be divisible by {factor}{hint}")


def resolve_threads(config: DDGANRunConfig) -> DDGANRunConfig:
    """The 2-D datasets on the CPU run one torch thread unless told otherwise: their MLPs are far too small to
    split across threads, and a second one only waits (measured up to ~15x slower steps on a busy 2-core
    machine). Recorded in config.json as execution.threads."""
    execution = config.execution
    on_cpu = execution.device is None and not torch.cuda.is_available() or str(execution.device).startswith("cpu")
    if not config.is_toy or execution.threads is not None or not on_cpu:
        return config
    return dataclasses.replace(config, execution=dataclasses.replace(execution, threads=1))


def checks_of(values: Mapping[str, Any], sources: Mapping[str, str], **command: Any) -> tuple[
        argparse.Namespace, FlagChecks]:
    """The merged values (and the command's own flags) as FlagChecks reads them, with their sources."""
    view = argparse.Namespace(**{**values, **command})  # the command's own flags (sampling's --batch_size) win
    return view, FlagChecks(view, sources)


__all__ = ["DATASET_SPECIFIC", "OFFICIAL_DATASETS", "SPECS", "add_flags", "build_config", "check_model_flags",
           "checks_of", "dataset_name", "discriminator_choice", "forms", "is_toy", "merged_flags", "preset_layer",
           "resolve_threads",
           "section_fields", "unit_interval_open"]
