"""The NCSN++ generator's configuration: the train_ddgan.py argparse fields that NCSNpp reads."""

import dataclasses
import enum
import math
import numbers

from ddx.utils.checks import parse_enum
from ddx.utils.errors import UsageError


class ResblockType(str, enum.Enum):
    BIGGAN = "biggan"
    DDPM = "ddpm"
    BIGGAN_ONEADAGN = "biggan_oneadagn"


class Progressive(str, enum.Enum):
    """How the output pyramid is built (score_sde `progressive`)."""

    NONE = "none"
    OUTPUT_SKIP = "output_skip"
    RESIDUAL = "residual"


class ProgressiveInput(str, enum.Enum):
    """How the input pyramid feeds the encoder (score_sde `progressive_input`)."""

    NONE = "none"
    INPUT_SKIP = "input_skip"
    RESIDUAL = "residual"


class ProgressiveCombine(str, enum.Enum):
    SUM = "sum"
    CAT = "cat"


class EmbeddingType(str, enum.Enum):
    POSITIONAL = "positional"
    FOURIER = "fourier"


_ENUM_FIELDS = {
    "resblock_type": ResblockType,
    "progressive": Progressive,
    "progressive_input": ProgressiveInput,
    "progressive_combine": ProgressiveCombine,
    "embedding_type": EmbeddingType,
}
_TUPLE_FIELDS = ("ch_mult", "attn_resolutions", "fir_kernel")
_INT_TUPLE_FIELDS = ("ch_mult", "attn_resolutions")
_POSITIVE_INT_FIELDS = ("image_size", "num_channels", "num_channels_dae", "num_res_blocks", "nz", "z_emb_dim")


def _as_int(name, value):
    """value as an int; a non-integral number would otherwise be truncated silently (16.5 -> 16)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value):
        raise UsageError(f"{name} must hold ints, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class NCSNppConfig:
    """Field names and defaults of train_ddgan.py's argparse (the fields NCSNpp reads).

    Deviations: ch_mult has no default there (None, which NCSNpp cannot build); here it defaults to the
    CIFAR-10 recipe's (1, 2, 2, 2). init_scale is hard-coded to 0 in the official NCSNpp. Enum fields
    also accept their string values or names (ddx.utils.checks.parse_enum); list fields are stored as tuples.
    """

    image_size: int = 32
    num_channels: int = 3
    centered: bool = True
    num_channels_dae: int = 128
    n_mlp: int = 3
    ch_mult: tuple = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple = (16,)
    dropout: float = 0.0
    resamp_with_conv: bool = True
    conditional: bool = True
    fir: bool = True
    fir_kernel: tuple = (1, 3, 3, 1)
    skip_rescale: bool = True
    resblock_type: ResblockType = ResblockType.BIGGAN
    progressive: Progressive = Progressive.NONE
    progressive_input: ProgressiveInput = ProgressiveInput.RESIDUAL
    progressive_combine: ProgressiveCombine = ProgressiveCombine.SUM
    embedding_type: EmbeddingType = EmbeddingType.POSITIONAL
    fourier_scale: float = 16.0
    not_use_tanh: bool = False
    nz: int = 100
    z_emb_dim: int = 256
    init_scale: float = 0.0

    def __post_init__(self):
        for name, kind in _ENUM_FIELDS.items():
            try:
                object.__setattr__(self, name, parse_enum(kind, getattr(self, name), name))
            except ValueError as error:  # a UsageError, so the command line prints it as one line (exit 2)
                raise UsageError(str(error)) from None
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError(f"{name} must be a sequence, got {value!r}")
            object.__setattr__(self, name, tuple(_as_int(name, v) for v in value) if name in _INT_TUPLE_FIELDS else tuple(value))
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.n_mlp, bool) or not isinstance(self.n_mlp, int) or self.n_mlp < 0:
            raise UsageError(f"n_mlp must be a non-negative int, got {self.n_mlp!r}")
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise UsageError(f"ch_mult must be a non-empty sequence of positive ints, got {self.ch_mult!r}")
        if self.image_size % 2 ** (len(self.ch_mult) - 1):
            raise UsageError(
                f"image_size {self.image_size} must be divisible by 2^(len(ch_mult) - 1) = {2 ** (len(self.ch_mult) - 1)}"
            )
        if self.num_channels_dae < 4:
            raise UsageError(f"num_channels_dae must be at least 4 (GroupNorm groups = C // 4), got {self.num_channels_dae}")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")
        resolutions = self.resolutions()
        stray = [r for r in self.attn_resolutions if r not in resolutions]
        if stray:
            raise UsageError(
                f"attn_resolutions {stray} are not resolutions of this network, so no attention would be added "
                f"there: with image_size {self.image_size} and {len(self.ch_mult)} levels (ch_mult) they are "
                f"{list(resolutions)}; pick among them, or () for no attention"
            )
        self._check_fir_kernel()
        for name in ("fourier_scale", "init_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise UsageError(f"{name} must be a finite number, got {value!r}")

    def resolutions(self):
        """The feature-map sides of the levels, image_size / 2**i for i < len(ch_mult) (where attention can go)."""
        return tuple(self.image_size // 2**i for i in range(len(self.ch_mult)))

    def _check_fir_kernel(self):
        # The kernel is normalised by its sum (ddx.nn.resample.setup_kernel): a zero sum would make the
        # resampling inf/NaN. Checked whatever `fir`, as the default is used either way.
        values = self.fir_kernel
        if not values or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) for v in values):
            raise UsageError(f"fir_kernel must be a non-empty sequence of finite numbers, got {values!r}")
        if sum(values) == 0:
            raise UsageError(f"fir_kernel {values!r} sums to 0, so it cannot be normalised; e.g. (1, 3, 3, 1)")

    @classmethod
    def from_args(cls, args):
        """From an argparse.Namespace (or dict) like train_ddgan.py's; fields NCSNpp does not read are ignored."""
        values = vars(args) if not isinstance(args, dict) else args
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
