"""`python sample.py iddpm [flags]` (image_sample.py) and `python sample.py iddpm nll [flags]` (image_nll.py).

Sampling: --num_samples images by the full ancestral chain, or respaced (--timestep_respacing 100, or
ddim50), or by DDIM (--use_ddim True, --eta); writes the official samples_<N>x<H>x<W>x<C>.npz (arr_0
uint8 NHWC, arr_1 labels when class-conditional) and samples_<...>.png, a grid of the first 100.

nll: bits/dim by calc_bpd_loop over a dataset split (default: held-out), e.g. the 360 held-out digits:
    python sample.py iddpm nll --model_path RUN_DIR --num_samples 360 --batch_size 120
prints and writes nll.json (total_bpd, prior_bpd, vb, mse, xstart_mse) and <term>_terms.npz.

--model_path takes a ddx run directory (its latest checkpoint), a ddx ckpt_<step>.pt (then --weights ema
or model, --ema_rate picks an EMA), or an official .pt state_dict (the released CIFAR-10 / ImageNet-64
models: pass their flags, or --preset cifar10 / imagenet64). A ddx run's flags (config.json) are the
defaults of the model and diffusion flags; explicit flags override them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ddx import profiling
from ddx.checkpoints.ddgan_official import load_official
from ddx.checkpoints.identify import identify, mismatch_message, unet_flags_of, wrong_family_message
from ddx.cli.train_iddpm import (
    DIFFUSION_FLAGS,
    MODEL_FLAGS,
    add_model_and_diffusion_flags,
    add_runtime_flags,
    check_model_and_diffusion,
    str2bool,
)
from ddx.cli.validators import FlagChecks, enum_choice, given_dests, non_negative_float, positive_int
from ddx.data import DatasetName, Split, build_dataset
from ddx.models.unet import build_unet
from ddx.nn.fused import set_fused
from ddx.presets.iddpm import PRESETS, preset_defaults
from ddx.sample.iddpm import Weights, evaluate_bpd, generate_samples, load_iddpm_weights, save_grid, save_npz
from ddx.train.checkpoint import CheckpointError, CheckpointManager, warn_skipped
from ddx.train.distributed import resolve_device
from ddx.train.iddpm import AutocastModel
from ddx.train.iddpm_run import data_config, diffusion_config, logger_dir, unet_config

NLL = "nll"


def build_parser(nll: bool) -> argparse.ArgumentParser:
    prog = "sample.py iddpm" + (" nll" if nll else "")
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_and_diffusion_flags(parser)
    group = parser.add_argument_group("nll (image_nll.py)" if nll else "sampling (image_sample.py)")
    add = group.add_argument
    add("--model_path", required=True, help="ddx run directory, ddx ckpt_<step>.pt, or official .pt state_dict")
    add("--weights", type=enum_choice(Weights), default=Weights.EMA, help="of a ddx run: ema (default) or model")
    add("--ema_rate", type=float, default=None, help="which EMA of a ddx run (default: its first rate)")
    add("--clip_denoised", type=str2bool, default=True)
    add("--outdir", default=None, help="default: <run>/samples for a ddx run, else $OPENAI_LOGDIR (as the official "
                                       "logger), else a new runs/iddpm-samples-<YYYYmmdd-HHMMSS>")
    if nll:
        add("--num_samples", type=positive_int, default=1000, help="images to evaluate (fewer if the split ends)")
        add("--batch_size", type=positive_int, default=1)
        add("--data_dir", default="")
        add("--dataset", type=enum_choice(DatasetName), default=None)
        add("--split", type=enum_choice(Split), default=Split.HELDOUT, help="train or heldout (default)")
    else:
        add("--num_samples", type=positive_int, default=10000)
        add("--batch_size", type=positive_int, default=16)
        add("--use_ddim", type=str2bool, default=False)
        add("--eta", type=non_negative_float, default=0.0, help="DDIM eta (0: deterministic)")
        add("--grid_size", type=positive_int, default=100, help="images in the PNG grid")
    add_runtime_flags(parser)
    return parser


def _flag_defaults(argv: list[str], nll: bool, parser: argparse.ArgumentParser):
    """Defaults: the preset's, then a ddx run's flags; the loaded weights (None when loading failed); where each
    default came from ({dest: "from --preset NAME"}), for the messages of the cross-flag checks."""
    pre = argparse.ArgumentParser(add_help=False)
    for name in ("--preset", "--model_path", "--ema_rate"):
        pre.add_argument(name, default=None)
    pre.add_argument("--weights", type=enum_choice(Weights), default=Weights.EMA)
    known, _ = pre.parse_known_args(argv)
    if known.preset is not None and known.preset not in PRESETS:
        parser.error(f"argument --preset: unknown preset {known.preset!r}; choose from: {', '.join(PRESETS)}")
    defaults = {k: v for k, v in preset_defaults(known.preset).items() if k in MODEL_FLAGS + DIFFUSION_FLAGS + ("dataset",)}
    sources = {k: f"from --preset {known.preset}" for k in defaults}
    if known.model_path is None:
        return defaults, None, sources
    try:
        rate = None if known.ema_rate is None else float(known.ema_rate)
    except ValueError:
        parser.error(f"argument --ema_rate: expected a number, got {known.ema_rate!r}")
    try:
        loaded = _load_weights(known.model_path, known.weights, rate)
    except (CheckpointError, ValueError) as err:
        parser.error(f"argument --model_path: {err}")
    inherited = set(MODEL_FLAGS + DIFFUSION_FLAGS) | ({"dataset", "data_dir"} if nll else set())
    recorded = {k: v for k, v in (loaded.run_flags or {}).items() if k in inherited}
    if not nll:
        recorded.pop("timestep_respacing", None)  # the sampler's respacing is chosen here, not inherited
    defaults.update(recorded)
    sources.update({k: f"from the run at {known.model_path}" for k in recorded})
    return defaults, loaded, sources


def _intact_checkpoint(model_path: str) -> str:
    """A run directory's newest intact checkpoint where a corrupt newer one is skipped (with a warning), else model_path."""
    path = Path(model_path)
    if not (path / "checkpoints").is_dir():
        return model_path
    intact, skipped = CheckpointManager(path / "checkpoints", keep_last=1, create=False).newest_intact()
    if intact is None or not skipped:
        return model_path
    warn_skipped(skipped, intact)
    return str(intact)


def _load_weights(model_path: str, weights: Weights, rate: float | None):
    """load_iddpm_weights, where a file of another family (a DDGAN checkpoint) is named as such."""
    try:
        loaded = load_iddpm_weights(_intact_checkpoint(model_path), weights, rate)
    except CheckpointError as err:
        wrong = _wrong_family(Path(model_path))
        if wrong is None:
            raise
        raise CheckpointError(wrong) from err
    wrong = wrong_family_message(model_path, identify(loaded.state_dict), "iddpm")
    if wrong is not None:
        raise CheckpointError(wrong)
    return loaded


def _wrong_family(path: Path) -> str | None:
    """'<file> is a DDGAN ...: use sample.py ddgan' for a file (or a run's newest checkpoint) of another family."""
    if path.is_dir():
        path = CheckpointManager(path / "checkpoints", keep_last=1, create=False).latest() or path
    if not path.is_file():
        return None
    try:
        payload = load_official(path)  # a DDGAN content.pth holds an argparse.Namespace
    except CheckpointError:
        return None
    return wrong_family_message(str(path), identify(payload), "iddpm")


def parse_args(argv: list[str]):
    nll = bool(argv) and argv[0] == NLL
    argv = argv[1:] if nll else argv
    parser = build_parser(nll)
    defaults, loaded, sources = _flag_defaults(argv, nll, parser)
    parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    given = given_dests(parser, argv)
    checks = FlagChecks(args, {dest: source for dest, source in sources.items() if dest not in given})
    check_model_and_diffusion(args, checks)
    if nll:
        checks.require(args.dataset is not None or bool(args.data_dir), ["data_dir", "dataset"],
                       "give --data_dir or --dataset (e.g. digits) to evaluate on")
    checks.report(parser)
    return args, loaded, nll


def _outdir(args, model_path: Path, loaded, nll: bool) -> Path:
    """--outdir; else <run>/samples for a ddx run; else, as image_sample.py's logger, $OPENAI_LOGDIR or a new
    runs/iddpm-samples-<YYYYmmdd-HHMMSS> (printed)."""
    if args.outdir is not None:
        return Path(args.outdir)
    if loaded.run_flags is not None:
        run = model_path if model_path.is_dir() else model_path.parent.parent
        return run / "samples"
    outdir = logger_dir("iddpm-nll" if nll else "iddpm-samples")
    print(f"writing to {outdir} (no --outdir given)", file=sys.stderr)
    return outdir


def _model(args, loaded, device):
    model = set_fused(build_unet(unet_config(args)), args.fused)
    model_state = model.state_dict()
    mismatch = mismatch_message(
        str(args.model_path), model_state, loaded.state_dict, unet_flags_of(loaded.state_dict, args.image_size),
        unet_flags_of(model_state, args.image_size),
        ("num_channels", "channel_mult", "attention_resolutions", "image_size", "num_res_blocks", "learn_sigma",
         "class_cond"))
    if mismatch is not None:
        raise CheckpointError(mismatch)
    model.load_state_dict(loaded.state_dict)
    model = model.to(device).eval()
    dtype = args.amp.dtype
    return model if dtype is None else AutocastModel(model, device.type, dtype)


def main(argv: list[str] | None = None) -> int:
    args, loaded, nll = parse_args(sys.argv[1:] if argv is None else argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    profiling.enable(args.nvtx)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    generator = torch.Generator(device).manual_seed(args.seed)
    model = _model(args, loaded, device)
    diffusion = diffusion_config(args).build(fused=args.fused)
    outdir = _outdir(args, Path(args.model_path), loaded, nll)
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"model: {loaded.source}; {diffusion.num_timesteps} sampling steps", file=sys.stderr)
    if nll:
        dataset = build_dataset(data_config(args, split=args.split))
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False)
        result = evaluate_bpd(diffusion, model, loader, args.num_samples, args.clip_denoised, device,
                              args.class_cond, generator, log=lambda m: print(m, file=sys.stderr))
        for name, values in result.terms.items():
            np.savez(outdir / f"{name}_terms.npz", np.asarray(values))
        summary = {**result.summary(), "model": loaded.source, "timesteps": diffusion.num_timesteps}
        (outdir / "nll.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary))
        return 0
    images, labels = generate_samples(
        diffusion, model, args.num_samples, args.batch_size, args.image_size, clip_denoised=args.clip_denoised,
        use_ddim=args.use_ddim, eta=args.eta, num_classes=unet_config(args).num_classes if args.class_cond else None,
        device=device, generator=generator, progress=True)
    npz = save_npz(outdir, images, labels)
    png = save_grid(npz.with_suffix(".png"), images, args.grid_size)
    print(f"saved {npz} and {png}")
    return 0
