"""`python sample.py ddgan [flags]`: samples from a ddx run or an official checkpoint, with metrics.

    python sample.py ddgan --run_dir runs/toy25                       # latest ddx checkpoint, EMA weights
    python sample.py ddgan --run_dir runs/toy25 --epoch_id 10         # its netG_10.pth
    python sample.py ddgan --exp ddgan_cifar10_exp1 --epoch_id 1200 --ch_mult 1 2 2 2   # test_ddgan.py's form:
        # ./saved_info/dd_gan/<dataset>/<exp>/netG_1200.pth, samples to ./generated_samples/<dataset>
    python sample.py ddgan --preset cifar10 --checkpoint netG_1200.pth --num_samples 50000 --fid \
        --data_root data/cifar10 --inception_weights pt_inception-2015-12-05-6726825d.pth

The architecture comes from the run directory's config.json, else from --preset and the flags (the same
names as train.py ddgan / the official test_ddgan.py). --checkpoint takes a ddx checkpoint (ckpt_*.pt), an
official content.pth or an official netG_<epoch>.pth. Outputs under --outdir: images -> grid.png,
images/<i>.png (lossless), samples.npz (arr_0 uint8 NHWC); 2-D data -> scatter.png, samples.npz (arr_0
float32 (N, 2)); metrics.json with the 2-D mode/quality metrics, the stacked-digits mode coverage or the FID.
Sampling reads no data: --data_root is needed only for --fid (or --real_img_dir, a folder of real images
as the FID reference, as test_ddgan.py). --num_samples defaults to 2,000 for 2-D data,
10,000 for stacked_digits, 50,000 with --fid, else one --batch_size batch (200), as test_ddgan.py draws.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ddx import profiling
from ddx.checkpoints.ddgan_official import (
    generator_file,
    load_official,
    strip_module_prefix,
)
from ddx.checkpoints.identify import Family, identify, mismatch_message, ncsnpp_flags_of, wrong_family_message
from ddx.cli.validators import FlagChecks, existing_dir, existing_file, non_negative_int, positive_int
from ddx.data.factory import TOY, DataConfig, DatasetName, build_dataset
from ddx.data.toy2d import mixture_spec
from ddx.nn.fused import set_fused
from ddx.sample.ddgan import generate, write_images, write_metrics, write_points
from ddx.train import CheckpointError, CheckpointManager
from ddx.train.checkpoint import warn_skipped
from ddx.train.rundir import read_run_config
from ddx.train.distributed import resolve_device
from ddx.train.ddgan_setup import (
    OFFICIAL_DATASETS,
    add_model_flags,
    add_preset_flag,
    build_generator,
    check_model_flags,
    data_config,
    diffusion_config,
    is_toy,
    parse_flags,
    sample_shape,
)

CONFIG_FILE = "config.json"
# Preset values of training that mean something else here (--batch_size: samples per forward pass).
TRAINING_ONLY = ("batch_size",)
TOY_SAMPLES = 2_000  # the basis of the 2-D figures the toy25 preset quotes (64 leave modes out by chance)
FID_SAMPLES = 50_000  # test_ddgan.py --compute_fid
STACKED_SAMPLES = 10_000  # the stacked_digits preset's mode-coverage figures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sample.py ddgan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_flag(parser)
    parser.add_argument("--run_dir", type=existing_dir, default=None,
                        help="a ddx run directory: its config.json gives the architecture")
    parser.add_argument("--checkpoint", type=existing_file, default=None,
                        help="ddx ckpt_*.pt, official content.pth or netG_<epoch>.pth")
    parser.add_argument("--epoch_id", type=non_negative_int, default=None,
                        help="use <run_dir>/netG_<epoch_id>.pth (epoch 0 is the first)")
    parser.add_argument("--exp", default="experiment_cifar_default",
                        help="as test_ddgan.py: without --run_dir or --checkpoint, the run folder is "
                             "saved_info/dd_gan/<dataset>/<exp> (train.py ddgan's default --outdir)")
    parser.add_argument("--raw_weights", action="store_true", default=False,
                        help="sample with the trained weights, not their EMA (ddx checkpoints, content.pth)")
    parser.add_argument("--num_samples", type=positive_int, default=None,
                        help=f"default: {TOY_SAMPLES:,} for 2-D data (a stable mode / quality figure), "
                             f"{FID_SAMPLES:,} with --fid and {STACKED_SAMPLES:,} for stacked_digits (as the "
                             "official evaluations), else one --batch_size batch (as test_ddgan.py)")
    parser.add_argument("--batch_size", type=positive_int, default=200, help="samples per forward pass")
    parser.add_argument("--outdir", type=Path, default=None,
                        help="output folder (default <run_dir>/generated_samples, else generated_samples/<dataset>)")
    fid = parser.add_argument_group("evaluation")
    fid.add_argument("--fid", "--compute_fid", dest="fid", action="store_true", default=False,
                     help="FID of the samples against the training data (image datasets)")
    fid.add_argument("--inception_weights", type=existing_file, default=None,
                     help="pt_inception-2015-12-05-6726825d.pth (default: the torch hub cache)")
    fid.add_argument("--fid_stats", type=Path, default=None,
                     help="cache of the reference statistics (default <outdir>/fid_reference.npz)")
    fid.add_argument("--real_img_dir", type=existing_dir, default=None,
                     help="(test_ddgan.py) a folder of real images as the FID reference, instead of the dataset at "
                          "--data_root; ignored without --fid")
    fid.add_argument("--classifier", type=Path, default=None,
                     help="ddx digit classifier for stacked-digits mode coverage (default: ddx's cache)")
    add_model_flags(parser)
    return parser


def _run_config_defaults(run_dir: Path | None) -> dict[str, Any]:
    """The flags recorded in <run_dir>/config.json (if there is one), as parser defaults."""
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        return {}
    recorded = read_run_config(run_dir / CONFIG_FILE).get("args", {})
    ours = {action.dest for action in build_parser()._actions}
    skip = {"outdir", "batch_size", "seed", "device", "nvtx", "preset", "fused"}
    return {k: v for k, v in recorded.items() if k in ours and k not in skip}


def _typed(parser: argparse.ArgumentParser, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """JSON values through each flag's type (argparse converts string defaults, not list items)."""
    actions = {action.dest: action for action in parser._actions}
    out = {}
    for dest, value in defaults.items():
        kind = actions[dest].type
        if isinstance(value, list) and kind is not None:
            value = [kind(str(v)) for v in value]
        elif value is not None and kind is not None and not isinstance(value, bool):
            value = kind(str(value))
        out[dest] = value
    return out


def _parse(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace, FlagChecks]:
    parser = build_parser()
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--run_dir", type=existing_dir, default=None)
    run_dir = probe.parse_known_args(list(argv))[0].run_dir
    recorded = _typed(parser, _run_config_defaults(run_dir))
    args, checks = parse_flags(parser, argv, recorded, f"{run_dir}/{CONFIG_FILE}" if run_dir else "",
                               ignore=TRAINING_ONLY)
    return parser, args, checks


def official_run_dirs(args: argparse.Namespace, argv: Sequence[str]) -> list[Path]:
    """test_ddgan.py's ./saved_info/dd_gan/<dataset>/<exp>, for the --dataset as typed, the ddx dataset and the
    official names that stand for it (lsun and celeba_256 for lmdb, stackmnist for stacked_digits)."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--dataset", default=None)
    typed = probe.parse_known_args(list(argv))[0].dataset
    names = [typed.strip().lower()] if typed else []
    names += [args.dataset.value] + [name for name, ddx in OFFICIAL_DATASETS.items() if ddx is args.dataset]
    return [Path("saved_info") / "dd_gan" / name / args.exp for name in dict.fromkeys(names)]


def default_num_samples(args: argparse.Namespace) -> int:
    if is_toy(args):
        return TOY_SAMPLES
    if args.fid:
        return FID_SAMPLES
    if args.dataset is DatasetName.STACKED_DIGITS:
        return STACKED_SAMPLES
    return args.batch_size


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser, args, checks = _parse(argv)
    official_layout = args.run_dir is None and args.checkpoint is None
    if official_layout:
        folders = official_run_dirs(args, argv)
        found = next((folder for folder in folders if folder.is_dir()), None)
        if found is None:
            parser.error(f"give --checkpoint, or --run_dir (its latest checkpoint, or --epoch_id), or the --exp "
                         f"(and --dataset) of a run in saved_info/dd_gan: no folder {' or '.join(map(str, folders))}")
        parser, args, checks = _parse([*argv, "--run_dir", str(found)])
    if args.num_samples is None:
        args.num_samples = default_num_samples(args)
    check_model_flags(args, checks, reads_data=args.fid and args.real_img_dir is None, builds_discriminator=False)
    checks.exclusive("checkpoint", "epoch_id")
    checks.requires("epoch_id", "run_dir")
    checks.require(not args.fid or not is_toy(args), ["fid", "dataset"], "FID applies to image datasets")
    checks.require(not args.fid or args.num_samples >= 2, ["fid", "num_samples"], "FID needs at least 2 samples")
    checks.report(parser)
    if args.outdir is None:
        args.outdir = (Path("generated_samples") / args.dataset.value if official_layout or args.run_dir is None
                       else args.run_dir / "generated_samples")
    return args


def _weights_from_payload(payload: Any, generator: torch.nn.Module, raw: bool, name: str) -> dict[str, torch.Tensor]:
    family = identify(payload)
    wrong = wrong_family_message(name, family, "ddgan")
    if wrong is not None:
        raise CheckpointError(wrong)
    if family is Family.DDX_DDGAN:
        trainer = payload["trainer"]
        ema = trainer.get("ema")
        if ema is not None and ema.get("initialized") and not raw:
            return {**trainer["netG"], **ema["shadow"]}
        return trainer["netG"]
    if family is Family.DDGAN_CONTENT:
        weights = strip_module_prefix(dict(payload["netG_dict"]))
        states = payload["optimizerG"]["state"]
        names = [n for n, _ in generator.named_parameters()]
        if not raw and len(states) == len(names) and all("ema" in s for s in states.values()):
            weights.update({names[int(i)]: s["ema"] for i, s in states.items()})
        return weights
    if family is Family.DDGAN_GENERATOR:
        return strip_module_prefix(dict(payload))
    raise CheckpointError(f"{name} is neither a ddx checkpoint, an official content.pth nor a netG state_dict")


def _saved_epochs(run_dir: Path) -> list[int]:
    """The epochs of the netG_<epoch>.pth files in a run directory, ascending."""
    names = (re.match(r"^netG_(\d+)\.pth$", p.name) for p in run_dir.iterdir())
    return sorted(int(match.group(1)) for match in names if match)


def _epoch_file(run_dir: Path, epoch: int) -> Path:
    """<run_dir>/netG_<epoch>.pth, or a CheckpointError listing the epochs that are there."""
    path = run_dir / generator_file(epoch)
    if path.is_file():
        return path
    epochs = _saved_epochs(run_dir)
    there = (f"the epochs saved there are {', '.join(map(str, epochs))}; give --epoch_id one of them" if epochs
             else "it holds no netG_<epoch>.pth (train.py ddgan writes one every --save_ckpt_every epochs)")
    raise CheckpointError(f"no {generator_file(epoch)} in {run_dir}: {there}, or leave --epoch_id out for the latest "
                          f"ddx checkpoint")


def _latest_checkpoint(run_dir: Path) -> Path:
    """The newest intact ddx checkpoint of a run (a corrupt newer one is skipped with a warning)."""
    path, skipped = CheckpointManager(run_dir / "checkpoints", 1, create=False).newest_intact()
    if path is None:
        found = f" (corrupt: {'; '.join(f'{p.name}: {why}' for p, why in skipped)})" if skipped else ""
        epochs = _saved_epochs(run_dir)
        saved = f" (saved there: {', '.join(map(str, epochs))})" if epochs else ""
        raise CheckpointError(f"no ddx checkpoint in {run_dir / 'checkpoints'}{found}: give --checkpoint, or "
                              f"--epoch_id{saved} for a netG_<epoch>.pth")
    warn_skipped(skipped, path)
    return path


def _check_fits(generator: torch.nn.Module, weights: dict[str, torch.Tensor], name: str, toy: bool) -> None:
    model_state = generator.state_dict()
    suspects = (("toy_hidden", "toy_layers", "t_emb_dim", "nz") if toy else
                ("num_channels_dae", "ch_mult", "image_size", "nz", "num_res_blocks", "attn_resolutions", "z_emb_dim",
                 "n_mlp", "t_emb_dim"))
    message = mismatch_message(name, model_state, weights, ncsnpp_flags_of(weights), ncsnpp_flags_of(model_state),
                               suspects)
    if message is not None:
        raise CheckpointError(message)


def load_generator_weights(args: argparse.Namespace, generator: torch.nn.Module) -> Path:
    """Load G's weights (strict) from the chosen file; returns the file's path.

    CheckpointError when the file is of another kind (an IDDPM model, a discriminator) or its shapes do
    not fit the flags (naming the parameters and the flags that differ).
    """
    if args.checkpoint is not None:
        path = args.checkpoint
    elif args.epoch_id is not None:
        path = _epoch_file(args.run_dir, args.epoch_id)
    else:
        path = _latest_checkpoint(args.run_dir)
    weights = _weights_from_payload(load_official(path), generator, args.raw_weights, str(path))
    _check_fits(generator, weights, str(path), is_toy(args))
    generator.load_state_dict(weights, strict=True)
    return path


def evaluate_points(points: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    from ddx.eval.toy2d_metrics import mixture_metrics

    metrics = mixture_metrics(points, TOY[args.dataset])
    return {"modes_covered": metrics.modes_covered, "num_modes": metrics.num_modes,
            "high_quality_fraction": metrics.high_quality_fraction, "num_samples": int(points.shape[0])}


def fid_reference(args: argparse.Namespace) -> tuple[DataConfig, Path]:
    """The FID reference images (the folder --real_img_dir, else the dataset at --data_root) and the file of
    their statistics (--fid_stats, else <outdir>/fid_reference.npz)."""
    if args.real_img_dir is not None:
        config = DataConfig(DatasetName.IMAGE_FOLDER, root=str(args.real_img_dir), image_size=args.image_size,
                            seed=args.seed)
    else:
        config = data_config(args)
    return config, args.fid_stats if args.fid_stats is not None else args.outdir / "fid_reference.npz"


def evaluate_images(images: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    metrics: dict[str, Any] = {"num_samples": int(images.shape[0])}
    if args.dataset is DatasetName.STACKED_DIGITS:
        from ddx.eval.digit_classifier import get_digit_classifier
        from ddx.eval.mode_coverage import stacked_mode_coverage

        classifier = get_digit_classifier(args.classifier, image_size=args.image_size)
        coverage = stacked_mode_coverage(images, classifier)
        metrics.update(modes_covered=coverage.modes_covered, num_modes=coverage.num_modes, kl=coverage.kl)
    if args.fid:
        from ddx.eval.fid import FIDEvaluator

        evaluator = FIDEvaluator.from_weights(args.inception_weights, device=args.device)
        config, cache = fid_reference(args)
        reference = evaluator.reference_statistics(build_dataset(config), cache, config.key())
        batches = iter(images.split(evaluator.batch_size))
        metrics["fid"] = evaluator.fid(lambda n: next(batches), images.shape[0], reference)
    return metrics


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    profiling.enable(args.nvtx)
    device = resolve_device(args.device)
    generator = set_fused(build_generator(args), args.fused)
    source = load_generator_weights(args, generator)
    generator.to(device)
    samples = generate(generator, diffusion_config(args), args.nz, args.num_samples, args.batch_size,
                       sample_shape(args), device, args.seed, args.fused)
    if is_toy(args):
        points = samples * args.data_scale
        files = write_points(points, args.outdir, mixture_spec(TOY[args.dataset]).means)
        metrics = evaluate_points(points, args)
    else:
        files = write_images(samples, args.outdir)
        metrics = evaluate_images(samples, args)
    metrics["checkpoint"] = str(source)
    write_metrics(metrics, args.outdir)
    print(json.dumps(metrics))
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
