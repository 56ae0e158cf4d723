"""The run configuration of `train.py iddpm`: one typed, frozen object, the single source of a run.

IddpmRunConfig is a dataclass of sections; each field has one flat name across the sections, which is its
flag (ddx.cli.train_iddpm derives the flags from it), its preset key (ddx.presets.iddpm) and its key in
config.json (ddx.train.run_file). `model` IS ddx.models.unet_config.UNetConfig, so a field added to the
UNet's config is a flag, a preset key, a config.json key and a --resume check at once.

The other sections hold image_train.py's flags where the library configs name them otherwise:
- `diffusion` (IddpmDiffusion): DiffusionConfig but learn_sigma, which the UNet's config holds (one fact,
  one field), and steps, spelt --diffusion_steps; with image_train.py's defaults (rescale_* on).
- `train` (IddpmTrain): IddpmTrainConfig with the official --ema_rate (the trainer takes its precision from
  `execution`, as ExecutionOptions).
- `run`: seed, run folder, length, intervals, resume, exports, the profiler window.
- `execution`: ddx.execution.ExecutionOptions (device, fused, precision as --amp, nvtx, threads).

This module builds the library configs from a run configuration (model, diffusion, data, trainer, loop);
it knows nothing of argparse.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ddx.data import DataConfig, DatasetName, Split
from ddx.diffusion import BetaSchedule, DiffusionConfig, ScheduleSamplerName
from ddx.execution import ExecutionOptions
from ddx.models.unet_config import UNetConfig
from ddx.train.iddpm import IddpmTrainConfig
from ddx.train.loop import LoopConfig, check_profile_window, profile_window_kwargs
from ddx.train.run_file import LegacyLayout
from ddx.utils.checks import check_non_negative_int, check_positive_int, parse_enum

FAMILY = "iddpm"
UNTIL_KILLED = 999_999_999  # the official loop runs until killed when lr_anneal_steps is 0

# Sections whose fields define what a run computes: a resume must not change them (the rest may change).
DEFINING_SECTIONS = ("data", "model", "diffusion")


@dataclasses.dataclass(frozen=True)
class IddpmData:
    """data_dir: a folder of images (or the root of cifar10 / lmdb). dataset: None means image_folder."""

    data_dir: str = ""
    dataset: DatasetName | None = None

    def __post_init__(self):
        if self.dataset is not None:
            object.__setattr__(self, "dataset", parse_enum(DatasetName, self.dataset, "dataset"))

    @property
    def dataset_name(self) -> DatasetName:
        return self.dataset if self.dataset is not None else DatasetName.IMAGE_FOLDER

    def config(self, image_size: int, split: Split = Split.TRAIN) -> DataConfig:
        return DataConfig(self.dataset_name, root=self.data_dir or None, image_size=image_size, split=split)


@dataclasses.dataclass(frozen=True)
class IddpmDiffusion:
    """image_train.py's diffusion flags (learn_sigma is the model's: see IddpmRunConfig.diffusion_config)."""

    diffusion_steps: int = 1000
    sigma_small: bool = False
    noise_schedule: BetaSchedule = BetaSchedule.LINEAR
    timestep_respacing: str = ""
    use_kl: bool = False
    predict_xstart: bool = False
    rescale_timesteps: bool = True
    rescale_learned_sigmas: bool = True

    def __post_init__(self):
        self.config(learn_sigma=False)  # DiffusionConfig's own checks

    def config(self, learn_sigma: bool) -> DiffusionConfig:
        return DiffusionConfig(
            steps=self.diffusion_steps, learn_sigma=learn_sigma, sigma_small=self.sigma_small,
            noise_schedule=self.noise_schedule, use_kl=self.use_kl, predict_xstart=self.predict_xstart,
            rescale_timesteps=self.rescale_timesteps, rescale_learned_sigmas=self.rescale_learned_sigmas,
            timestep_respacing=self.timestep_respacing)


@dataclasses.dataclass(frozen=True)
class IddpmTrain:
    """image_train.py's optimisation flags (batch_size per rank); use_fp16 True is --amp fp16."""

    schedule_sampler: ScheduleSamplerName = ScheduleSamplerName.UNIFORM
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_anneal_steps: int = 0
    batch_size: int = 1
    microbatch: int = -1
    ema_rate: tuple[float, ...] = (0.9999,)
    use_fp16: bool = False
    fp16_scale_growth: float = 1e-3

    def __post_init__(self):
        self.config()  # IddpmTrainConfig's own checks

    def config(self) -> IddpmTrainConfig:
        """The trainer's config (its precision is the run's execution.precision, given to the trainer)."""
        return IddpmTrainConfig(
            lr=self.lr, weight_decay=self.weight_decay, lr_anneal_steps=self.lr_anneal_steps,
            batch_size=self.batch_size, microbatch=self.microbatch, ema_rates=tuple(self.ema_rate),
            schedule_sampler=self.schedule_sampler, fp16_scale_growth=self.fp16_scale_growth)


@dataclasses.dataclass(frozen=True)
class IddpmRun:
    """outdir: the run folder (None: chosen at the start, as the official logger). max_steps: None trains up to
    lr_anneal_steps, else until killed. resume_checkpoint: a ddx ckpt_<step>.pt or an official model<N>.pt.
    export_official: also write model<N>.pt, ema_<rate>_<N>.pt, opt<N>.pt. profile_window: (start, count)."""

    outdir: str | None = None
    seed: int = 0
    max_steps: int | None = None
    log_interval: int = 10
    save_interval: int = 10000
    resume_checkpoint: Path | None = None
    export_official: bool = True
    profile_window: tuple[int, ...] | None = None

    def __post_init__(self):
        check_non_negative_int(self.seed, "seed")
        check_positive_int(self.max_steps, "max_steps", optional=True)
        check_positive_int(self.log_interval, "log_interval")
        check_positive_int(self.save_interval, "save_interval")
        if self.outdir is not None:
            object.__setattr__(self, "outdir", str(self.outdir))
        if self.resume_checkpoint is not None:
            object.__setattr__(self, "resume_checkpoint", Path(self.resume_checkpoint))
        object.__setattr__(self, "profile_window", check_profile_window(self.profile_window))


@dataclasses.dataclass(frozen=True)
class IddpmRunConfig:
    data: IddpmData = IddpmData()
    model: UNetConfig = UNetConfig()
    diffusion: IddpmDiffusion = IddpmDiffusion()
    train: IddpmTrain = IddpmTrain()
    run: IddpmRun = IddpmRun()
    execution: ExecutionOptions = ExecutionOptions()

    def diffusion_config(self) -> DiffusionConfig:
        return self.diffusion.config(self.model.learn_sigma)

    def data_config(self, split: Split = Split.TRAIN) -> DataConfig:
        return self.data.config(self.model.image_size, split)

    def train_config(self) -> IddpmTrainConfig:
        return self.train.config()

    def loop_config(self, step_offset: int = 0) -> LoopConfig:
        """max_steps: run.max_steps, else up to lr_anneal_steps (counting an official resume's steps), else until
        killed."""
        if self.run.max_steps is not None:
            max_steps = self.run.max_steps
        elif self.train.lr_anneal_steps:
            max_steps = max(1, self.train.lr_anneal_steps - step_offset)
        else:
            max_steps = UNTIL_KILLED
        return LoopConfig(max_steps=max_steps, log_interval=self.run.log_interval,
                          save_interval=self.run.save_interval, **profile_window_kwargs(self.run.profile_window))


IDDPM_DEFAULTS = IddpmRunConfig()

# config.json before ddx-run/2: {"flags": {flag: value}, ...}; --amp and --num_threads are now execution fields.
IDDPM_LEGACY = LegacyLayout("flags", dropped=frozenset({"preset"}),
                            renamed={"amp": "precision", "num_threads": "threads"})


__all__ = ["DEFINING_SECTIONS", "FAMILY", "IDDPM_DEFAULTS", "IDDPM_LEGACY", "IddpmData", "IddpmDiffusion", "IddpmRun",
           "IddpmRunConfig", "IddpmTrain", "UNTIL_KILLED"]
