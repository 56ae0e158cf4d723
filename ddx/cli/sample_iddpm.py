"""`python sample.py iddpm [flags]` (image_sample.py) and `python sample.py iddpm nll [flags]` (image_nll.py).

Sampling: --num_samples images by the full ancestral chain, or respaced (--timestep_respacing 100, or
ddim50), or by DDIM (--use_ddim True, --eta); writes the official samples_<N>x<H>x<W>x<C>.npz (arr_0
uint8 NHWC, arr_1 labels when class-conditional) and samples_<...>.png, a grid of the first 100.

nll: bits/dim by calc_bpd_loop over a dataset split (default: held-out), e.g. the 360 held-out digits:
    python sample.py iddpm nll --model_path RUN_DIR --num_samples 360 --batch_size 120
prints and writes nll.json (total_bpd, prior_bpd, vb, mse, xstart_mse) and <term>_terms.npz.

--model_path takes a ddx run directory (its latest checkpoint), a ddx ckpt_<step>.pt (then --weights ema
or model, --ema_rate picks an EMA), or an official .pt state_dict (the released CIFAR-10 / ImageNet-64
models: pass their flags, or --preset cifar10 / imagenet64). A ddx run's config.json gives the model and
diffusion (and, for nll, the data) with no flag repeated; flags given override it (sampling's
--timestep_respacing is chosen here, not inherited). --mode eager|compiled|graphs: how the sampler runs the
network (ddx.sample.fast_iddpm; graphs needs CUDA); --dtype fp32|bf16|fp16 (also --precision / --amp) its
autocast precision and --channels_last its memory format (the chain stays fp32). Sampling also writes
metrics.json beside the npz: images_per_s and batch_latency_ms in steady state, warmup_s of the first batch
(compile included), with the mode, dtype and layout (ddx.sample.timing), and prints them as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ddx.checkpoints.ddgan_official import load_official
from ddx.checkpoints.identify import identify, mismatch_message, unet_flags_of, wrong_family_message
from ddx.checkpoints.io import CheckpointError, CheckpointManager, warn_skipped
from ddx.cli.config_flags import FlagSpec, add_config_flags, typed_values
from ddx.cli.iddpm_flags import (
    SPECS,
    add_preset_flag,
    check_model_and_diffusion,
    flag_checks,
    forms,
    preset_layer,
    resolve_or_exit,
    section_values,
)
from ddx.cli.sample_flags import DTYPE_HELP, add_channels_last_flag
from ddx.cli.validators import non_negative_float, positive_int
from ddx.data import Split, build_dataset
from ddx.execution import ExecutionOptions, SamplerMode, apply_process_options
from ddx.models.unet import build_unet
from ddx.models.unet_config import UNetConfig
from ddx.ops import set_fused
from ddx.sample.iddpm import evaluate_bpd, generate_samples, save_grid, save_npz
from ddx.sample.timing import SampleTimer, timing_line
from ddx.train.distributed import resolve_device
from ddx.train.iddpm import AutocastModel
from ddx.train.iddpm_config import FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY, IddpmData, IddpmDiffusion
from ddx.train.iddpm_run import logger_dir
from ddx.train.iddpm_weights import Weights, load_unet_weights
from ddx.train.run_file import read_run, run_config_path
from ddx.utils.errors import UsageError

NLL = "nll"
METRICS_FILE = "metrics.json"  # beside the npz: the sampling speed (ddx.sample.timing)


@dataclasses.dataclass(frozen=True)
class SampleFlags:
    """image_sample.py's flags (and ddx's): which weights, how many images, where they go."""

    model_path: str | None = None
    weights: Weights = Weights.EMA
    ema_rate: float | None = None
    clip_denoised: bool = True
    num_samples: int = 10000
    batch_size: int = 16
    use_ddim: bool = False
    eta: float = 0.0
    grid_size: int = 100
    outdir: str | None = None
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class NllFlags:
    """image_nll.py's flags (and ddx's): which weights, how many images of which split, where the terms go."""

    model_path: str | None = None
    weights: Weights = Weights.EMA
    ema_rate: float | None = None
    clip_denoised: bool = True
    num_samples: int = 1000
    batch_size: int = 1
    split: Split = Split.HELDOUT
    outdir: str | None = None
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class IddpmSampleConfig:
    model: UNetConfig = IDDPM_DEFAULTS.model
    diffusion: IddpmDiffusion = IDDPM_DEFAULTS.diffusion
    sample: SampleFlags = SampleFlags()
    execution: ExecutionOptions = IDDPM_DEFAULTS.execution


@dataclasses.dataclass(frozen=True)
class IddpmNllConfig:
    data: IddpmData = IDDPM_DEFAULTS.data
    model: UNetConfig = IDDPM_DEFAULTS.model
    diffusion: IddpmDiffusion = IDDPM_DEFAULTS.diffusion
    nll: NllFlags = NllFlags()
    execution: ExecutionOptions = IDDPM_DEFAULTS.execution

    @property
    def sample(self) -> NllFlags:
        return self.nll


# What a sampler takes from a preset or a training run: what the network and the chain are (and the data nll
# evaluates on); sampling's respacing is chosen on this command line.
INHERITED = {False: ("model", "diffusion"), True: ("data", "model", "diffusion")}

SAMPLE_SPECS = {
    **SPECS,
    "model_path": FlagSpec("ddx run directory, ddx ckpt_<step>.pt, or official .pt state_dict (required)"),
    "weights": FlagSpec("of a ddx run: ema or model"),
    "ema_rate": FlagSpec("which EMA of a ddx run (None: its first rate)"),
    "outdir": FlagSpec("None: <run>/samples for a ddx run, else $OPENAI_LOGDIR (as the official logger), else a "
                       "new runs/iddpm-samples-<YYYYmmdd-HHMMSS>"),
    "num_samples": FlagSpec("images (nll: to evaluate; fewer if the split ends)", type=positive_int),
    "batch_size": FlagSpec(type=positive_int),
    "eta": FlagSpec("DDIM eta (0: deterministic)", type=non_negative_float),
    "grid_size": FlagSpec("images in the PNG grid", type=positive_int),
    "split": FlagSpec("train or heldout"),
}
# Sampling's precision also answers to --dtype (as sample.py ddgan's); nll keeps --precision / --amp.
SAMPLING_ONLY_SPECS = {**SAMPLE_SPECS, "precision": dataclasses.replace(
    SPECS["precision"], help=DTYPE_HELP + "; as training's --amp, none means fp32",
    aliases=(*SPECS["precision"].aliases, "--dtype"))}


def _config_class(nll: bool) -> type:
    return IddpmNllConfig if nll else IddpmSampleConfig


def build_parser(nll: bool) -> argparse.ArgumentParser:
    prog = "sample.py iddpm" + (" nll" if nll else "")
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_flag(parser)
    sample_forms = forms(skip=frozenset({"sampler"}) if nll else frozenset())  # nll runs no sampler
    sample_forms = dataclasses.replace(sample_forms, specs=SAMPLE_SPECS if nll else SAMPLING_ONLY_SPECS, titles={
        **sample_forms.titles, "sample": "sampling (image_sample.py)", "nll": "nll (image_nll.py)"})
    add_config_flags(parser, _config_class(nll)(), sample_forms)
    if not nll:
        add_channels_last_flag(parser)
    return parser


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
    """load_unet_weights, where a file of another family (a DDGAN checkpoint) is named as such."""
    try:
        loaded = load_unet_weights(_intact_checkpoint(model_path), weights, rate)
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


def run_folder(model_path: str | Path) -> Path | None:
    """The ddx run a --model_path belongs to (a run directory, its checkpoints/ folder, or a ckpt_<step>.pt in
    either), when it has a config.json; None for an official file."""
    path = Path(model_path)
    if path.is_dir():
        candidates = [path.parent] if path.name == "checkpoints" else [path]
    elif path.name.startswith("ckpt_"):
        candidates = [path.parent.parent, path.parent]
    else:
        return None
    return next((folder for folder in candidates if run_config_path(folder).is_file()), None)


def parse_args(argv: list[str]):
    """(the sampling configuration, the loaded weights, the run folder or None, nll?) of argv: defaults < --preset
    < the run's config.json < the flags given; exits with status 2 naming the flag on bad input."""
    nll = bool(argv) and argv[0] == NLL
    argv = argv[1:] if nll else argv
    parser = build_parser(nll)
    namespace = parser.parse_args(argv)
    cls = _config_class(nll)
    typed = typed_values(namespace, cls)
    if typed.get("model_path") is None:
        parser.error("the following arguments are required: --model_path")
    try:
        loaded = _load_weights(typed["model_path"], typed.get("weights", Weights.EMA), typed.get("ema_rate"))
        folder = run_folder(typed["model_path"])
        recorded = None if folder is None else read_run(folder, FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY).config
    except (CheckpointError, ValueError) as err:
        parser.error(f"argument --model_path: {err}")
    layers = [preset_layer(namespace.preset, cls, INHERITED[nll])]
    if recorded is not None:
        inherited = section_values(recorded, INHERITED[nll])
        if not nll:
            inherited.pop("timestep_respacing")
        layers.append((f"from the run at {typed['model_path']}", inherited))
    layers.append(("", typed))
    config, sources = resolve_or_exit(parser, cls(), layers)
    checks = flag_checks(config, sources)
    check_model_and_diffusion(config, checks)
    if nll:
        checks.require(config.data.dataset is not None or bool(config.data.data_dir), ["data_dir", "dataset"],
                       "give --data_dir or --dataset (e.g. digits) to evaluate on")
    checks.report(parser)
    return config, loaded, folder, nll


def _outdir(flags, folder: Path | None, nll: bool) -> Path:
    """--outdir; else <run>/samples for a ddx run; else, as image_sample.py's logger, $OPENAI_LOGDIR or a new
    runs/iddpm-samples-<YYYYmmdd-HHMMSS> (printed)."""
    if flags.outdir is not None:
        return Path(flags.outdir)
    if folder is not None:
        return folder / "samples"
    outdir = logger_dir("iddpm-nll" if nll else "iddpm-samples")
    print(f"writing to {outdir} (no --outdir given)", file=sys.stderr)
    return outdir


def _model(config, loaded, device):
    model_cfg, execution = config.model, config.execution
    model = set_fused(build_unet(model_cfg), execution.fused)
    model_state = model.state_dict()
    mismatch = mismatch_message(
        str(config.sample.model_path), model_state, loaded.state_dict,
        unet_flags_of(loaded.state_dict, model_cfg.image_size), unet_flags_of(model_state, model_cfg.image_size),
        ("num_channels", "channel_mult", "attention_resolutions", "image_size", "num_res_blocks", "learn_sigma",
         "class_cond"))
    if mismatch is not None:
        raise CheckpointError(mismatch)
    model.load_state_dict(loaded.state_dict)
    return model.to(device).eval()


def _nll(config, diffusion, model, outdir: Path, device, generator, source: str) -> int:
    flags, dtype = config.nll, config.execution.precision.autocast_dtype
    model = model if dtype is None else AutocastModel(model, device.type, dtype)  # the diffusion math stays fp32
    dataset = build_dataset(config.data.config(config.model.image_size, split=flags.split))
    loader = torch.utils.data.DataLoader(dataset, batch_size=flags.batch_size, shuffle=False)
    result = evaluate_bpd(diffusion, model, loader, flags.num_samples, flags.clip_denoised, device,
                          config.model.class_cond, generator, log=lambda m: print(m, file=sys.stderr))
    for name, values in result.terms.items():
        np.savez(outdir / f"{name}_terms.npz", np.asarray(values))
    summary = {**result.summary(), "model": source, "timesteps": diffusion.num_timesteps}
    (outdir / "nll.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


def _execution_on(execution: ExecutionOptions, device: torch.device) -> ExecutionOptions:
    """execution on the resolved device; --mode graphs needs CUDA (a UsageError naming the other modes)."""
    if execution.sampler is SamplerMode.GRAPHS and device.type != "cuda":
        raise UsageError(f"--mode graphs needs a CUDA device (CUDA graphs record GPU kernels), not {device}: use "
                         f"--mode eager or --mode compiled")
    return dataclasses.replace(execution, device=str(device))


def main(argv: list[str] | None = None) -> int:
    config, loaded, folder, nll = parse_args(sys.argv[1:] if argv is None else list(argv))
    flags = config.sample
    apply_process_options(config.execution)
    device = resolve_device(config.execution.device)
    execution = _execution_on(config.execution, device)
    torch.manual_seed(flags.seed)
    generator = torch.Generator(device).manual_seed(flags.seed)
    model = _model(config, loaded, device)
    diffusion = config.diffusion.config(config.model.learn_sigma).build(fused=execution.fused)
    outdir = _outdir(flags, folder, nll)
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"model: {loaded.source}; {diffusion.num_timesteps} sampling steps", file=sys.stderr)
    if nll:
        return _nll(config, diffusion, model, outdir, device, generator, loaded.source)
    # The sampler runs the chain in execution's mode and precision; CUDA graphs draw from the global generator.
    timer = SampleTimer(device)
    images, labels = generate_samples(
        diffusion, model, flags.num_samples, flags.batch_size, config.model.image_size,
        clip_denoised=flags.clip_denoised, use_ddim=flags.use_ddim, eta=flags.eta,
        num_classes=config.model.num_classes if config.model.class_cond else None,
        generator=None if execution.sampler is SamplerMode.GRAPHS else generator, progress=True,
        execution=execution, timer=timer)
    npz = save_npz(outdir, images, labels)
    png = save_grid(npz.with_suffix(".png"), images, flags.grid_size)
    timing = timer.summary(execution)
    metrics = {"num_samples": int(images.shape[0]), "timesteps": diffusion.num_timesteps, "model": loaded.source,
               **timing}
    (outdir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    print(timing_line(timing))
    print(f"saved {npz}, {png} and {outdir / METRICS_FILE}")
    return 0
