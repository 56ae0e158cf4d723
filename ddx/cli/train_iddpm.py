"""`python train.py iddpm [flags]`: image_train.py of openai/improved-diffusion on ddx.

The official flags keep their names, defaults and forms (booleans as ``--learn_sigma True``,
``--attention_resolutions 16,8``, ``--ema_rate 0.9999,0.999``). ddx adds --preset (flag defaults that
explicit flags override: cifar10, imagenet64, digits), --dataset, --outdir, --max_steps, --device,
--amp, --nvtx, --fused/--no-fused, --seed, --num_threads, --channel_mult and --export_official.
The resolved flags and configs go to <outdir>/config.json; without --outdir the run folder is
$OPENAI_LOGDIR when set (as the official logger), else a new runs/iddpm-<dataset>-<YYYYmmdd-HHMMSS>,
printed at the start. --attention_resolutions '' (or none) builds a UNet without attention (but the
middle block's, as the official). Launch with torchrun for several ranks (--batch_size is per rank, as the
official).
"""

from __future__ import annotations

import argparse
import sys

import torch

from ddx.cli.profile_window import add_profile_window
from ddx.cli.validators import (
    FlagChecks,
    FlagValueError,
    enum_choice,
    existing_file,
    non_negative_float,
    non_negative_int,
    positive_float,
    given_dests,
    positive_int,
    positive_int_list,
    positive_int_list_or_none,
    preset_sources,
)
from ddx.data import DatasetName
from ddx.diffusion import BetaSchedule, ScheduleSamplerName, space_timesteps
from ddx.models.unet import UNetConfig
from ddx.presets.iddpm import PRESETS, preset_defaults
from ddx.train.iddpm import AmpMode
from ddx.train.iddpm_run import train_from_args, unet_config


MODEL_FLAGS = ("image_size", "num_channels", "num_res_blocks", "num_heads", "num_heads_upsample",
               "attention_resolutions", "dropout", "learn_sigma", "class_cond", "use_checkpoint",
               "use_scale_shift_norm", "channel_mult")
DIFFUSION_FLAGS = ("diffusion_steps", "learn_sigma", "sigma_small", "noise_schedule", "timestep_respacing",
                   "use_kl", "predict_xstart", "rescale_timesteps", "rescale_learned_sigmas")


def str2bool(text: str) -> bool:
    """The official boolean form: yes/true/t/y/1 or no/false/f/n/0 (any case)."""
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("yes", "true", "t", "y", "1"):
        return True
    if value in ("no", "false", "f", "n", "0"):
        return False
    raise FlagValueError(f"expected a boolean (True/False), got {text!r}")


def heads_upsample(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value is None or (value != -1 and value < 1):
        raise FlagValueError(f"expected -1 (same as --num_heads) or a positive integer, got {text!r}")
    return value


def microbatch_size(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value is None or (value != -1 and value < 1):
        raise FlagValueError(f"expected -1 (no microbatching) or a positive integer, got {text!r}")
    return value


def dropout_rate(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise FlagValueError(f"expected a dropout probability in [0, 1), got {value:g}")
    return value


def ema_rates(text: str) -> tuple[float, ...]:
    """Comma-separated EMA rates in [0, 1), distinct: '0.9999' or '0.9999,0.999'."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        rates = tuple(float(part) for part in parts)
    except ValueError:
        raise FlagValueError(f"expected comma-separated numbers like '0.9999,0.999', got {text!r}") from None
    bad = [r for r in rates if not 0.0 <= r < 1.0]
    if bad:
        raise FlagValueError(f"EMA rates must lie in [0, 1), got {', '.join(map(str, bad))}")
    if len(set(rates)) != len(rates):
        raise FlagValueError(f"EMA rates must be distinct, got {text!r}")
    return rates


def respacing(text: str) -> str:
    """'' (every step), 'ddimN', or comma-separated section counts; checked against the steps later."""
    text = text.strip()
    if text and not text.startswith("ddim"):
        positive_int_list(text)
    elif text.startswith("ddim"):
        positive_int(text[len("ddim"):] or "x")
    return text


def schedule_sampler_name(text: str) -> ScheduleSamplerName:
    """'uniform' or 'loss-second-moment' (the official names; underscores accepted)."""
    value = text.strip().lower().replace("_", "-")
    for member in ScheduleSamplerName:
        if value == member.value:
            return member
    raise FlagValueError(f"invalid schedule sampler {text!r}; choose from: "
                         f"{', '.join(m.value for m in ScheduleSamplerName)}")


def device_name(text: str) -> str:
    """A device name; whether this machine has it is checked once, by ddx.train.distributed.resolve_device."""
    try:
        torch.device(text)
    except RuntimeError:
        raise FlagValueError(f"expected a device such as 'cpu', 'cuda' or 'cuda:1', got {text!r}") from None
    return text


def add_model_and_diffusion_flags(parser: argparse.ArgumentParser) -> None:
    """script_util.model_and_diffusion_defaults as flags (plus ddx's --channel_mult)."""
    group = parser.add_argument_group("model and diffusion (official names and defaults)")
    add = group.add_argument
    add("--image_size", type=positive_int, default=64)
    add("--num_channels", type=positive_int, default=128)
    add("--num_res_blocks", type=positive_int, default=2)
    add("--num_heads", type=positive_int, default=4)
    add("--num_heads_upsample", type=heads_upsample, default=-1)
    add("--attention_resolutions", type=positive_int_list_or_none, default=(16, 8),
        help="feature-map sizes with attention, e.g. 16,8; '' or none for none (the middle block keeps its "
             "attention, as the official UNet)")
    add("--dropout", type=dropout_rate, default=0.0)
    add("--learn_sigma", type=str2bool, default=False)
    add("--sigma_small", type=str2bool, default=False)
    add("--class_cond", type=str2bool, default=False)
    add("--diffusion_steps", type=positive_int, default=1000)
    add("--noise_schedule", type=enum_choice(BetaSchedule), default=BetaSchedule.LINEAR)
    add("--timestep_respacing", type=respacing, default="", help="'' (all steps), e.g. 250, 10,15,20 or ddim50")
    add("--use_kl", type=str2bool, default=False)
    add("--predict_xstart", type=str2bool, default=False)
    add("--rescale_timesteps", type=str2bool, default=True)
    add("--rescale_learned_sigmas", type=str2bool, default=True)
    add("--use_checkpoint", type=str2bool, default=False)
    add("--use_scale_shift_norm", type=str2bool, default=True)
    add("--channel_mult", type=positive_int_list, default=None,
        help="ddx: channel multipliers per level (default: the official ones for image_size 32/64/256; 1,2,2 for 16)")


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """ddx flags shared by training and sampling."""
    group = parser.add_argument_group("ddx runtime")
    add = group.add_argument
    add("--preset", choices=tuple(PRESETS), default=None,
        help="flag defaults: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))
    add("--device", type=device_name, default=None, help="default: cuda:LOCAL_RANK when available, else cpu")
    add("--amp", type=enum_choice(AmpMode), default=AmpMode.NONE,
        help="mixed precision as autocast: none, bf16, fp16 (with a loss scaler)")
    add("--nvtx", action="store_true", help="emit NVTX ranges for Nsight")
    add("--fused", action=argparse.BooleanOptionalAction, default=True,
        help="Triton-fused kernels (default) or the eager reference ops")
    add("--seed", type=non_negative_int, default=0)
    add("--num_threads", type=positive_int, default=None,
        help="torch CPU threads (on a busy CPU, fewer threads than cores can be much faster)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py iddpm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_and_diffusion_flags(parser)
    group = parser.add_argument_group("training (official names and defaults)")
    add = group.add_argument
    add("--data_dir", default="", help="a folder of images (or the root of --dataset cifar10 / lmdb)")
    add("--schedule_sampler", type=schedule_sampler_name, default=ScheduleSamplerName.UNIFORM,
        help="uniform or loss-second-moment")
    add("--lr", type=positive_float, default=1e-4)
    add("--weight_decay", type=non_negative_float, default=0.0)
    add("--lr_anneal_steps", type=non_negative_int, default=0)
    add("--batch_size", type=positive_int, default=1, help="per rank")
    add("--microbatch", type=microbatch_size, default=-1, help="-1 disables microbatches")
    add("--ema_rate", type=ema_rates, default=(0.9999,), help="comma-separated EMA rates")
    add("--log_interval", type=positive_int, default=10)
    add("--save_interval", type=positive_int, default=10000)
    add("--resume_checkpoint", type=existing_file, default=None,
        help="a ddx ckpt_<step>.pt, or an official model<step>.pt (with its ema_/opt files beside it)")
    add("--use_fp16", type=str2bool, default=False, help="same as --amp fp16")
    add("--fp16_scale_growth", type=positive_float, default=1e-3)
    group = parser.add_argument_group("ddx training")
    add = group.add_argument
    add("--dataset", type=enum_choice(DatasetName), default=None,
        help="digits, cifar10, image_folder, lmdb, ... (default: image_folder when --data_dir is given)")
    add("--outdir", default=None,
        help="run directory (config.json, metrics.jsonl, checkpoints, official exports); default $OPENAI_LOGDIR, "
             "else a new runs/iddpm-<dataset>-<YYYYmmdd-HHMMSS>")
    add("--max_steps", type=positive_int, default=None,
        help="steps to train (default: --lr_anneal_steps, else until killed, as the official)")
    add("--export_official", type=str2bool, default=True,
        help="also write model<step>.pt, ema_<rate>_<step>.pt, opt<step>.pt at each save")
    add_runtime_flags(parser)
    add_profile_window(parser)
    return parser


def parse_with_preset(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, dict[str, str]]:
    """Parse argv with the preset's values as defaults (explicit flags win); also where the values the user
    did not give came from ({dest: "from --preset NAME"}), for the messages of the cross-flag checks."""
    preset_parser = argparse.ArgumentParser(add_help=False)
    preset_parser.add_argument("--preset", default=None)
    known, _ = preset_parser.parse_known_args(argv)
    if known.preset is not None and known.preset not in PRESETS:
        parser.error(f"argument --preset: unknown preset {known.preset!r}; choose from: {', '.join(PRESETS)}")
    defaults = preset_defaults(known.preset)
    parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    return args, preset_sources(known.preset, defaults, given_dests(parser, argv))


def check_model_and_diffusion(args: argparse.Namespace, checks: FlagChecks) -> UNetConfig | None:
    """Cross-flag checks of the architecture and the respacing; returns the UNetConfig when it is valid."""
    try:
        config = unet_config(args)
    except (ValueError, TypeError) as err:
        checks.require(False, ["image_size", "channel_mult", "attention_resolutions"], str(err))
        return None
    # The first ResBlock normalises num_channels channels, so num_channels itself must divide into the groups.
    widths = sorted({args.num_channels} | {args.num_channels * mult for mult in config.resolved_channel_mult()})
    nearest = -(-args.num_channels // 32) * 32
    checks.require(all(w % 32 == 0 for w in widths), ["num_channels", "channel_mult"],
                   f"the UNet normalises with 32-group GroupNorm (normalization() of the official code), so "
                   f"num_channels and every level's width num_channels x channel_mult ({', '.join(map(str, widths))}) "
                   f"must be multiples of 32: e.g. --num_channels {nearest}")
    size, levels = args.image_size, len(config.resolved_channel_mult())
    checks.require(size % 2 ** (levels - 1) == 0, ["image_size", "channel_mult"],
                   f"image_size must be divisible by 2**{levels - 1} for {levels} levels")
    reachable = {size // 2 ** level for level in range(levels)}
    missing = [r for r in args.attention_resolutions if r not in reachable]
    checks.require(not missing, ["attention_resolutions", "image_size"],
                   f"resolutions {missing} are not feature-map sizes of this UNet ({sorted(reachable)})")
    heads = {args.num_heads, args.num_heads_upsample if args.num_heads_upsample > 0 else args.num_heads}
    checks.require(all(w % h == 0 for w in widths for h in heads), ["num_channels", "num_heads", "num_heads_upsample"],
                   "every level's width must be divisible by the number of attention heads")
    if args.timestep_respacing:
        try:
            space_timesteps(args.diffusion_steps, args.timestep_respacing)
        except ValueError as err:
            checks.require(False, ["timestep_respacing", "diffusion_steps"], str(err))
    return config


def _check_train_flags(args: argparse.Namespace, parser: argparse.ArgumentParser, sources: dict[str, str]) -> None:
    checks = FlagChecks(args, sources)
    check_model_and_diffusion(args, checks)
    checks.require(args.dataset is not None or bool(args.data_dir), ["data_dir", "dataset"],
                   "give --data_dir (a folder of images) or --dataset (e.g. digits)")
    checks.require(not (args.use_fp16 and args.amp not in (AmpMode.NONE, AmpMode.FP16)), ["use_fp16", "amp"],
                   "--use_fp16 True means --amp fp16")
    checks.require(args.microbatch == -1 or args.microbatch <= args.batch_size, ["microbatch", "batch_size"],
                   "--microbatch must not exceed --batch_size")
    if args.lr_anneal_steps and args.max_steps is not None:
        checks.at_most("max_steps", "lr_anneal_steps")
    checks.report(parser)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and validate; exits with status 2 and a message naming the flag on bad input."""
    parser = build_parser()
    args, sources = parse_with_preset(parser, argv)
    _check_train_flags(args, parser, sources)
    if args.use_fp16:
        args.amp = AmpMode.FP16
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    train_from_args(args)
    return 0
