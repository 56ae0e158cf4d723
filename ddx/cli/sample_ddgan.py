"""`python sample.py ddgan [flags]`: samples from a ddx run or an official checkpoint, with metrics.

    python sample.py ddgan --run_dir runs/toy25                       # latest ddx checkpoint, EMA weights
    python sample.py ddgan --run_dir runs/toy25 --epoch_id 10         # its netG_10.pth
    python sample.py ddgan --exp ddgan_cifar10_exp1 --epoch_id 1200 --ch_mult 1 2 2 2   # test_ddgan.py's form:
        # ./saved_info/dd_gan/<dataset>/<exp>/netG_1200.pth, samples to ./generated_samples/<dataset>
    python sample.py ddgan --preset cifar10 --checkpoint netG_1200.pth --num_samples 50000 --fid \
        --data_root data/cifar10 --inception_weights pt_inception-2015-12-05-6726825d.pth

The architecture comes from the run directory's config.json (its DDGANRunConfig; older files of flags load
too), else from --preset and the flags (the same names as train.py ddgan / the official test_ddgan.py); a
model flag given here overrides the run's value. --mode eager|compiled|graphs: how the sampler runs the
generator (ddx.sample.fast; eager gives the official loop's images); --dtype fp32|bf16|fp16 its autocast
precision and --channels_last its memory format (the chain stays fp32). --checkpoint takes a ddx checkpoint (ckpt_*.pt), an
official content.pth or an official netG_<epoch>.pth. Outputs under --outdir: images -> grid.png,
images/<i>.png (lossless), samples.npz (arr_0 uint8 NHWC); 2-D data -> scatter.png, samples.npz (arr_0
float32 (N, 2)); metrics.json with the 2-D mode/quality metrics, the stacked-digits mode coverage or the FID,
and the speed (ddx.sample.timing: images_per_s and batch_latency_ms in steady state, warmup_s of the first
batch, compile included), also printed as one line.
Sampling reads no data: --data_root is needed only for --fid (or --real_img_dir, a folder of real images
as the FID reference, as test_ddgan.py). --num_samples defaults to 2,000 for 2-D data,
10,000 for stacked_digits, 50,000 with --fid, else one --batch_size batch (200), as test_ddgan.py draws.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ddx.checkpoints.ddgan_official import generator_file, load_official
from ddx.checkpoints.identify import mismatch_message, ncsnpp_flags_of
from ddx.checkpoints.io import CheckpointManager, warn_skipped
from ddx.cli.config_flags import typed_values
from ddx.cli.ddgan_flags import (
    OFFICIAL_DATASETS,
    add_flags,
    build_config,
    check_model_flags,
    checks_of,
    merged_flags,
    preset_layer,
    section_fields,
)
from ddx.cli.sample_flags import add_channels_last_flag, add_dtype_flag
from ddx.cli.validators import FlagChecks, enum_choice, existing_dir, existing_file, non_negative_int, positive_int
from ddx.data.factory import TOY, DataConfig, DatasetName, build_dataset
from ddx.execution import SamplerMode, apply_process_options
from ddx.sample.ddgan import generate, write_images, write_metrics, write_points
from ddx.sample.timing import SampleTimer, timing_line
from ddx.train.ddgan_config import DDGANRunConfig, read_ddgan_run
from ddx.train.ddgan_setup import build_generator, data_config, mixture_means, sample_shape
from ddx.train.ddgan_weights import generator_weights
from ddx.train.distributed import resolve_device
from ddx.utils.config_io import flat_values
from ddx.utils.errors import CheckpointError

CONFIG_FILE = "config.json"
DEFAULT_EXP = "experiment_cifar_default"
# The sections sampling reads; training's (train, loop) are not flags here, and a run's execution (its device,
# fused) is not sampling's: its recorded values are not used either.
MODEL_SECTIONS = ("data", "diffusion", "generator", "toy", "discriminator")
SAMPLING_FIELDS = section_fields(*MODEL_SECTIONS, "execution")
TOY_SAMPLES = 2_000  # the basis of the 2-D figures the toy25 preset quotes (64 leave modes out by chance)
FID_SAMPLES = 50_000  # test_ddgan.py --compute_fid
STACKED_SAMPLES = 10_000  # the stacked_digits preset's mode-coverage figures


@dataclasses.dataclass(frozen=True)
class SampleCommand:
    """A resolved `sample.py ddgan` command: the run configuration G is built from, where its weights are, and
    what to sample and measure."""

    config: DDGANRunConfig
    run_dir: Path | None = None
    checkpoint: Path | None = None
    epoch_id: int | None = None
    exp: str = DEFAULT_EXP
    raw_weights: bool = False
    num_samples: int = 200
    batch_size: int = 200
    seed: int = 1024
    outdir: Path = Path("generated_samples")
    fid: bool = False
    inception_weights: Path | None = None
    fid_stats: Path | None = None
    real_img_dir: Path | None = None
    classifier: Path | None = None

    @property
    def is_toy(self) -> bool:
        return self.config.is_toy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sample.py ddgan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", type=existing_dir, default=None,
                        help="a ddx run directory: its config.json gives the architecture")
    parser.add_argument("--checkpoint", type=existing_file, default=None,
                        help="ddx ckpt_*.pt, official content.pth or netG_<epoch>.pth")
    parser.add_argument("--epoch_id", type=non_negative_int, default=None,
                        help="use <run_dir>/netG_<epoch_id>.pth (epoch 0 is the first)")
    parser.add_argument("--exp", default=None,
                        help="as test_ddgan.py: without --run_dir or --checkpoint, the run folder is "
                             f"saved_info/dd_gan/<dataset>/<exp> (train.py ddgan's default --outdir; default: the "
                             f"--preset's exp, else {DEFAULT_EXP})")
    parser.add_argument("--raw_weights", action="store_true", default=False,
                        help="sample with the trained weights, not their EMA (ddx checkpoints, content.pth)")
    parser.add_argument("--num_samples", type=positive_int, default=None,
                        help=f"default: {TOY_SAMPLES:,} for 2-D data (a stable mode / quality figure), "
                             f"{FID_SAMPLES:,} with --fid and {STACKED_SAMPLES:,} for stacked_digits (as the "
                             "official evaluations), else one --batch_size batch (as test_ddgan.py)")
    parser.add_argument("--batch_size", type=positive_int, default=200, help="samples per forward pass")
    parser.add_argument("--seed", type=non_negative_int, default=1024)
    parser.add_argument("--mode", dest="sampler", type=enum_choice(SamplerMode), default=argparse.SUPPRESS,
                        metavar="MODE",
                        help="eager, compiled or graphs: how the sampler runs the generator (default: eager)")
    add_dtype_flag(parser)
    add_channels_last_flag(parser)
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
    add_flags(parser, skip=section_fields("train", "loop") | {"discriminator", "ngf"})  # D is training's
    return parser


def recorded_layer(run_dir: Path | None) -> tuple[str, dict[str, Any]]:
    """The model fields of the run's config.json (either layout), labelled with the file; none without one."""
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        return "", {}
    recorded = flat_values(read_ddgan_run(run_dir / CONFIG_FILE).config)
    return f"from {run_dir / CONFIG_FILE}", {k: v for k, v in recorded.items() if k in section_fields(*MODEL_SECTIONS)}


def _resolve(parser: argparse.ArgumentParser, namespace: argparse.Namespace):
    """The run configuration: defaults < --preset < the run's config.json < the model flags typed here."""
    preset, values = preset_layer(parser, namespace.preset)
    layers = [(f"from --preset {namespace.preset}", {k: v for k, v in values.items() if k in SAMPLING_FIELDS}),
              recorded_layer(namespace.run_dir),
              ("", {k: v for k, v in typed_values(namespace, DDGANRunConfig).items() if k in SAMPLING_FIELDS})]
    merged, sources, given = merged_flags(preset, layers)
    exp = namespace.exp or (preset.defaults.get("exp") if preset is not None else None) or DEFAULT_EXP
    return merged, sources, given, exp


def official_run_dirs(dataset: DatasetName, exp: str, argv: Sequence[str]) -> list[Path]:
    """test_ddgan.py's ./saved_info/dd_gan/<dataset>/<exp>, for the --dataset as typed, the ddx dataset and the
    official names that stand for it (lsun and celeba_256 for lmdb, stackmnist for stacked_digits)."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--dataset", default=None)
    typed = probe.parse_known_args(list(argv))[0].dataset
    names = [typed.strip().lower()] if typed else []
    names += [dataset.value] + [name for name, ddx in OFFICIAL_DATASETS.items() if ddx is dataset]
    return [Path("saved_info") / "dd_gan" / name / exp for name in dict.fromkeys(names)]


def default_num_samples(values: argparse.Namespace) -> int:
    if values.dataset in TOY:
        return TOY_SAMPLES
    if values.fid:
        return FID_SAMPLES
    if values.dataset is DatasetName.STACKED_DIGITS:
        return STACKED_SAMPLES
    return values.batch_size


def parse_args(argv: Sequence[str]) -> SampleCommand:
    parser = build_parser()
    namespace = parser.parse_args(list(argv))
    merged, sources, given, exp = _resolve(parser, namespace)
    official_layout = namespace.run_dir is None and namespace.checkpoint is None
    if official_layout:
        folders = official_run_dirs(merged["dataset"], exp, argv)
        found = next((folder for folder in folders if folder.is_dir()), None)
        if found is None:
            parser.error(f"give --checkpoint, or --run_dir (its latest checkpoint, or --epoch_id), or the --exp "
                         f"(and --dataset) of a run in saved_info/dd_gan: no folder {' or '.join(map(str, folders))}")
        namespace.run_dir = found
        merged, sources, given, exp = _resolve(parser, namespace)
    own = {name: getattr(namespace, name) for name in ("run_dir", "checkpoint", "epoch_id", "raw_weights",
                                                         "num_samples", "batch_size", "fid", "real_img_dir")}
    view, checks = checks_of(merged, sources, **own)
    if view.num_samples is None:
        view.num_samples = default_num_samples(view)
    _check_sampling(view, checks, given)
    checks.report(parser)
    config = build_config(parser, merged)
    outdir = namespace.outdir
    if outdir is None:
        outdir = (Path("generated_samples") / config.data.dataset.value if official_layout or view.run_dir is None
                  else view.run_dir / "generated_samples")
    return SampleCommand(config, view.run_dir, view.checkpoint, view.epoch_id, exp, view.raw_weights,
                         view.num_samples, view.batch_size, namespace.seed, outdir, view.fid,
                         namespace.inception_weights, namespace.fid_stats, view.real_img_dir, namespace.classifier)


def _check_sampling(view: argparse.Namespace, checks: FlagChecks, given: Collection[str]) -> None:
    check_model_flags(view, checks, given, reads_data=view.fid and view.real_img_dir is None,
                      builds_discriminator=False)
    checks.exclusive("checkpoint", "epoch_id")
    checks.requires("epoch_id", "run_dir")
    toy = view.dataset in TOY
    checks.require(not view.fid or not toy, ["fid", "dataset"], "FID applies to image datasets")
    checks.require(not view.fid or view.num_samples >= 2, ["fid", "num_samples"], "FID needs at least 2 samples")


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


def _check_fits(generator: torch.nn.Module, weights: Mapping[str, torch.Tensor], name: str, toy: bool) -> None:
    model_state = generator.state_dict()
    suspects = (("toy_hidden", "toy_layers", "t_emb_dim", "nz") if toy else
                ("num_channels_dae", "ch_mult", "image_size", "nz", "num_res_blocks", "attn_resolutions", "z_emb_dim",
                 "n_mlp", "t_emb_dim"))
    message = mismatch_message(name, model_state, weights, ncsnpp_flags_of(weights), ncsnpp_flags_of(model_state),
                               suspects)
    if message is not None:
        raise CheckpointError(message)


def load_generator_weights(command: SampleCommand, generator: torch.nn.Module) -> Path:
    """Load G's weights (strict) from the chosen file; returns the file's path.

    CheckpointError when the file is of another kind (an IDDPM model, a discriminator) or its shapes do
    not fit the flags (naming the parameters and the flags that differ).
    """
    if command.checkpoint is not None:
        path = command.checkpoint
    elif command.epoch_id is not None:
        path = _epoch_file(command.run_dir, command.epoch_id)
    else:
        path = _latest_checkpoint(command.run_dir)
    weights = generator_weights(load_official(path), generator, command.raw_weights, str(path))
    _check_fits(generator, weights, str(path), command.is_toy)
    generator.load_state_dict(weights, strict=True)
    return path


def evaluate_points(points: torch.Tensor, command: SampleCommand) -> dict[str, Any]:
    from ddx.eval.toy2d_metrics import mixture_metrics

    metrics = mixture_metrics(points, TOY[command.config.data.dataset])
    return {"modes_covered": metrics.modes_covered, "num_modes": metrics.num_modes,
            "high_quality_fraction": metrics.high_quality_fraction, "num_samples": int(points.shape[0])}


def fid_reference(command: SampleCommand) -> tuple[DataConfig, Path]:
    """The FID reference images (the folder --real_img_dir, else the dataset at --data_root) and the file of
    their statistics (--fid_stats, else <outdir>/fid_reference.npz)."""
    if command.real_img_dir is not None:
        config = DataConfig(DatasetName.IMAGE_FOLDER, root=str(command.real_img_dir),
                            image_size=command.config.generator.image_size, seed=command.seed)
    else:
        config = dataclasses.replace(data_config(command.config), seed=command.seed)
    return config, command.fid_stats if command.fid_stats is not None else command.outdir / "fid_reference.npz"


def evaluate_images(images: torch.Tensor, command: SampleCommand) -> dict[str, Any]:
    metrics: dict[str, Any] = {"num_samples": int(images.shape[0])}
    if command.config.data.dataset is DatasetName.STACKED_DIGITS:
        from ddx.eval.digit_classifier import get_digit_classifier
        from ddx.eval.mode_coverage import stacked_mode_coverage

        classifier = get_digit_classifier(command.classifier, image_size=command.config.generator.image_size)
        coverage = stacked_mode_coverage(images, classifier)
        metrics.update(modes_covered=coverage.modes_covered, num_modes=coverage.num_modes, kl=coverage.kl)
    if command.fid:
        from ddx.eval.fid import FIDEvaluator

        evaluator = FIDEvaluator.from_weights(command.inception_weights, device=command.config.execution.device)
        config, cache = fid_reference(command)
        reference = evaluator.reference_statistics(build_dataset(config), cache, config.key())
        batches = iter(images.split(evaluator.batch_size))
        metrics["fid"] = evaluator.fid(lambda n: next(batches), images.shape[0], reference)
    return metrics


def main(argv: Sequence[str]) -> int:
    command = parse_args(argv)
    config = command.config
    apply_process_options(config.execution)
    device = resolve_device(config.execution.device)
    generator = build_generator(config)
    source = load_generator_weights(command, generator)
    generator.to(device)
    # The generator is on its device now; execution.device named it (a "cuda" may be cuda:0 by now).
    execution = dataclasses.replace(config.execution, device=None)
    timer = SampleTimer(device)
    samples = generate(generator, config.diffusion, config.generator.nz, command.num_samples, command.batch_size,
                       sample_shape(config), command.seed, execution, timer=timer)
    timing = timer.summary(execution)
    if command.is_toy:
        points = samples * config.data.data_scale
        files = write_points(points, command.outdir, mixture_means(config))
        metrics = evaluate_points(points, command)
    else:
        files = write_images(samples, command.outdir)
        metrics = evaluate_images(samples, command)
    metrics["checkpoint"] = str(source)
    metrics.update(timing)
    write_metrics(metrics, command.outdir)
    print(json.dumps(metrics))
    print(timing_line(timing))
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
