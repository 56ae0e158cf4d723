"""`python train.py iddpm [flags]`: image_train.py of openai/improved-diffusion on ddx.

The flags are the fields of the run configuration (ddx.train.iddpm_config.IddpmRunConfig) with the official
names, defaults and forms (booleans as ``--learn_sigma True``, ``--attention_resolutions 16,8``,
``--ema_rate 0.9999,0.999``). ddx adds --preset (values of a recipe under the flags given: cifar10,
imagenet64, digits), --dataset, --outdir, --max_steps, --device, --amp, --nvtx, --fused/--no-fused, --seed,
--num_threads, --channel_mult, --export_official and --profile_window.
The resolved run configuration goes to <outdir>/config.json (ddx.train.run_file); without --outdir the run
folder is $OPENAI_LOGDIR when set (as the official logger), else a new runs/iddpm-<dataset>-<YYYYmmdd-HHMMSS>,
printed at the start. A run folder that holds checkpoints is resumed, and must keep the model, diffusion and
data of its config.json. --attention_resolutions '' (or none) builds a UNet without attention (but the
middle block's, as the official). Launch with torchrun for several ranks (--batch_size is per rank, as the
official).
"""

from __future__ import annotations

import argparse
import sys

from ddx.cli.config_flags import add_config_flags, typed_values
from ddx.cli.iddpm_flags import (
    add_preset_flag,
    check_model_and_diffusion,
    flag_checks,
    forms,
    preset_layer,
    resolve_or_exit,
)
from ddx.execution import Precision
from ddx.train.iddpm_config import IDDPM_DEFAULTS, IddpmRunConfig
from ddx.train.iddpm_run import train_from_config
from ddx.utils.config_io import replace_flat

# Sampling runs no sampler in training.
TRAIN_FORMS = forms(skip=frozenset({"sampler"}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py iddpm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_flag(parser)
    add_config_flags(parser, IDDPM_DEFAULTS, TRAIN_FORMS)
    return parser


def _check(config: IddpmRunConfig, sources: dict[str, str], parser: argparse.ArgumentParser) -> None:
    checks = flag_checks(config, sources)
    check_model_and_diffusion(config, checks)
    checks.require(config.data.dataset is not None or bool(config.data.data_dir), ["data_dir", "dataset"],
                   "give --data_dir (a folder of images) or --dataset (e.g. digits)")
    checks.require(not (config.train.use_fp16 and config.execution.precision not in (Precision.FP32, Precision.FP16)),
                   ["use_fp16", "precision"], "--use_fp16 True means --amp fp16")
    checks.require(config.train.microbatch == -1 or config.train.microbatch <= config.train.batch_size,
                   ["microbatch", "batch_size"], "--microbatch must not exceed --batch_size")
    if config.train.lr_anneal_steps and config.run.max_steps is not None:
        checks.at_most("max_steps", "lr_anneal_steps")
    checks.report(parser)


def parse_args(argv: list[str]) -> IddpmRunConfig:
    """The run configuration of argv: defaults < --preset < the flags given; checked across flags. Exits with
    status 2 and a message naming the flags (and where their values came from) on bad input."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    layers = [preset_layer(namespace.preset, IddpmRunConfig), ("", typed_values(namespace, IddpmRunConfig))]
    config, sources = resolve_or_exit(parser, IDDPM_DEFAULTS, layers)
    _check(config, sources, parser)
    if config.train.use_fp16:  # the official flag for what ddx spells --amp fp16
        config = replace_flat(config, {"precision": Precision.FP16})
    return config


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    train_from_config(parse_args(argv), ["train.py", "iddpm", *map(str, argv)])
    return 0
