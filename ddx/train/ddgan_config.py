"""DDGANRunConfig: the one typed, frozen configuration of a DDGAN run (train.py ddgan, sample.py ddgan, bench).

Its sections are the library's own configs where their field names are train_ddgan.py's flags (the
diffusion is DDGANDiffusionConfig, the generator NCSNppConfig, the optimisation DDGANTrainConfig, the
execution ExecutionOptions), and flag-level sections where no library config has those names (data, the
2-D MLPs, the discriminator, the loop). Every field has one flat name across the sections, which is its
flag, its preset key and its config.json key (ddx.utils.config_io): a field added to NCSNppConfig is all
of them at once.

The defaults are train_ddgan.py's; NCSNppConfig's ch_mult default (1, 2, 2, 2) stands in for the official
"no default" (the CLI still asks for --ch_mult on image data, see ddx.cli.ddgan_flags).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from pathlib import Path

from ddx.data.factory import TOY, DatasetName
from ddx.diffusion.ddgan import DDGANDiffusionConfig
from ddx.execution import ExecutionOptions
from ddx.models.ncsnpp_config import NCSNppConfig
from ddx.train.ddgan import DDGANTrainConfig
from ddx.train.loop import check_profile_window
from ddx.train.run_file import LegacyLayout, RunFile, read_run
from ddx.utils.checks import check_non_negative_int, check_positive_int, parse_enum

# Sections whose fields define what a checkpoint holds: --resume refuses a run directory recorded otherwise.
DEFINING_SECTIONS = ("data", "diffusion", "generator", "toy", "discriminator")


class DiscriminatorKind(enum.Enum):
    TOY = "toy"
    SMALL = "small"
    LARGE = "large"


@dataclasses.dataclass(frozen=True)
class DDGANData:
    """The data: a ddx dataset (official names are mapped by the CLI), its folder, the 2-D data's scale
    (train on x / data_scale) and the items per epoch of the drawn datasets (None: the dataset's own)."""

    dataset: DatasetName = DatasetName.CIFAR10
    data_root: Path | None = None
    data_scale: float = 1.0
    data_length: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "dataset", parse_enum(DatasetName, self.dataset, "dataset"))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", Path(self.data_root))
        if isinstance(self.data_scale, bool) or not (isinstance(self.data_scale, (int, float))
                                                    and math.isfinite(self.data_scale) and self.data_scale > 0):
            raise ValueError(f"data_scale must be a finite number > 0, got {self.data_scale!r}")
        check_positive_int(self.data_length, "data_length", optional=True)

    @property
    def is_toy(self) -> bool:
        return self.dataset in TOY


@dataclasses.dataclass(frozen=True)
class ToyNets:
    """The MLP generator and discriminator of the 2-D datasets (ddx.models.toy): width and hidden layers."""

    toy_hidden: int = 256
    toy_layers: int = 3

    def __post_init__(self):
        check_positive_int(self.toy_hidden, "toy_hidden")
        check_positive_int(self.toy_layers, "toy_layers")


@dataclasses.dataclass(frozen=True)
class DDGANDiscriminator:
    """discriminator: small / large, or None for train_ddgan.py's choice by dataset; ngf: its width;
    t_emb_dim: the time embedding of the discriminator (and of the 2-D MLPs)."""

    discriminator: DiscriminatorKind | None = None
    ngf: int = 64
    t_emb_dim: int = 256

    def __post_init__(self):
        if self.discriminator is not None:
            kind = parse_enum(DiscriminatorKind, self.discriminator, "discriminator")
            if kind is DiscriminatorKind.TOY:
                raise ValueError("discriminator: the MLP ('toy') goes with the 2-D datasets by itself; choose "
                                 "small or large (image data), or None")
            object.__setattr__(self, "discriminator", kind)
        check_positive_int(self.ngf, "ngf")
        check_positive_int(self.t_emb_dim, "t_emb_dim")


@dataclasses.dataclass(frozen=True)
class DDGANLoop:
    """The run around the steps: seed, where it writes (outdir None: saved_info/dd_gan/<dataset>/<exp>), the
    per-rank batch, how long, how often it logs and saves, the CUDA profiler window (start, count)."""

    seed: int = 1024
    exp: str = "experiment_cifar_default"
    outdir: Path | None = None
    batch_size: int = 128
    max_steps: int | None = None
    log_interval: int = 100
    keep_last: int = 3
    save_content: bool = False
    save_content_every: int = 50
    save_ckpt_every: int = 25
    profile_window: tuple[int, ...] | None = None

    def __post_init__(self):
        check_non_negative_int(self.seed, "seed")
        if self.outdir is not None:
            object.__setattr__(self, "outdir", Path(self.outdir))
        for name in ("batch_size", "log_interval", "keep_last", "save_content_every", "save_ckpt_every"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.max_steps, "max_steps", optional=True)
        object.__setattr__(self, "profile_window", check_profile_window(self.profile_window))


@dataclasses.dataclass(frozen=True)
class DDGANRunConfig:
    data: DDGANData = DDGANData()
    diffusion: DDGANDiffusionConfig = DDGANDiffusionConfig()
    generator: NCSNppConfig = NCSNppConfig()
    toy: ToyNets = ToyNets()
    discriminator: DDGANDiscriminator = DDGANDiscriminator()
    train: DDGANTrainConfig = DDGANTrainConfig()
    loop: DDGANLoop = DDGANLoop()
    execution: ExecutionOptions = ExecutionOptions()

    @property
    def is_toy(self) -> bool:
        return self.data.is_toy

    @property
    def run_dir(self) -> Path:
        """--outdir, else the official exp_path saved_info/dd_gan/<dataset>/<exp>."""
        if self.loop.outdir is not None:
            return self.loop.outdir
        return Path("saved_info") / "dd_gan" / self.data.dataset.value / self.loop.exp


DEFAULTS = DDGANRunConfig()

# config.json before the run configuration: {"model": "ddgan", "args": {every flag}, <typed configs>}. Its flags
# are the fields' flat names, but --preset, --resume and the launcher flags, which no run configuration holds.
LEGACY_LAYOUT = LegacyLayout("args", dropped=frozenset({
    "preset", "resume", "num_proc_node", "num_process_per_node", "node_rank", "local_rank", "master_address"}))


def read_ddgan_run(run) -> RunFile:
    """The DDGANRunConfig in a run directory's config.json (either layout); CheckpointError naming the problem."""
    return read_run(run, "ddgan", DEFAULTS, LEGACY_LAYOUT)

__all__ = ["DDGANData", "DDGANDiscriminator", "DDGANLoop", "DDGANRunConfig", "DEFAULTS", "DEFINING_SECTIONS",
           "DiscriminatorKind", "LEGACY_LAYOUT", "ToyNets", "read_ddgan_run"]
