"""IDDPM's UNet configuration: script_util.create_model's arguments as a typed frozen dataclass.

`UNetConfig` holds create_model's arguments (resolutions, not downsample rates). It knows nothing of the
network: `build_unet(config)` and `create_model(...)` live with UNetModel in ddx.models.unet, which imports
this module (one arrow, no circle).
"""

import dataclasses
from typing import Optional, Tuple

from ddx.nn.attention import AttentionBackend
from ddx.utils.checks import check_positive_int

NUM_CLASSES = 1000

# script_util.create_model's channel multipliers; 16 is ddx's addition for the 16x16 digits preset.
CHANNEL_MULT_BY_IMAGE_SIZE = {
    256: (1, 1, 2, 2, 4, 4),
    64: (1, 2, 3, 4),
    32: (1, 2, 2, 2),
    16: (1, 2, 2),
}


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """The arguments of script_util.create_model (defaults: model_and_diffusion_defaults).

    attention_resolutions: feature-map resolutions (e.g. (16, 8)) where attention is used; they
    become downsample rates image_size // res. channel_mult: None picks the official multipliers
    for image_size 256, 64 or 32, or ddx's (1, 2, 2) for 16 (the digits preset); any other size
    needs an explicit channel_mult. learn_sigma doubles the output channels (eps and variance).
    class_cond makes the model conditional on num_classes labels (1000 in the official code).
    """

    image_size: int = 64
    num_channels: int = 128
    num_res_blocks: int = 2
    learn_sigma: bool = False
    class_cond: bool = False
    use_checkpoint: bool = False
    attention_resolutions: Tuple[int, ...] = (16, 8)
    num_heads: int = 4
    num_heads_upsample: int = -1
    use_scale_shift_norm: bool = True
    dropout: float = 0.0
    channel_mult: Optional[Tuple[int, ...]] = None
    num_classes: int = NUM_CLASSES
    in_channels: int = 3
    attention_backend: AttentionBackend = AttentionBackend.SDPA

    def __post_init__(self):
        check_positive_int(self.image_size, "image_size")
        if self.channel_mult is None and self.image_size not in CHANNEL_MULT_BY_IMAGE_SIZE:
            sizes = ", ".join(str(s) for s in sorted(CHANNEL_MULT_BY_IMAGE_SIZE))
            raise ValueError(f"unsupported image size {self.image_size} (known: {sizes}); pass channel_mult")
        if isinstance(self.attention_resolutions, str):
            raise TypeError(
                "UNetConfig.attention_resolutions must be a tuple of ints; "
                "parse '16,8' strings with parse_attention_resolutions"
            )
        for res in self.attention_resolutions:
            check_positive_int(res, "each attention resolution")
            if self.image_size % res:
                raise ValueError(f"attention resolution {res} does not divide image_size {self.image_size}")
        object.__setattr__(self, "attention_resolutions", tuple(self.attention_resolutions))
        if self.channel_mult is not None:
            object.__setattr__(self, "channel_mult", tuple(self.channel_mult))
        object.__setattr__(self, "attention_backend", AttentionBackend(self.attention_backend))
        factor = 2 ** (len(self.resolved_channel_mult()) - 1)
        if self.image_size % factor:
            mult = self.resolved_channel_mult()
            raise ValueError(f"image_size {self.image_size} must be divisible by {factor} for channel_mult {mult}")

    def resolved_channel_mult(self):
        """channel_mult, or the default multipliers for image_size."""
        return self.channel_mult if self.channel_mult is not None else CHANNEL_MULT_BY_IMAGE_SIZE[self.image_size]

    def attention_rates(self):
        """attention_resolutions as downsample rates (image_size // res), as create_model does."""
        return tuple(self.image_size // res for res in self.attention_resolutions)


def parse_attention_resolutions(attention_resolutions):
    """'16,8' (script_util's string form) or an iterable of ints -> a tuple of ints.

    '' or 'none' is the empty tuple: no attention at any resolution (script_util.create_model fails on '';
    the middle block keeps its attention either way, as in the official UNet).
    """
    if isinstance(attention_resolutions, str):
        if attention_resolutions.strip().lower() in ("", "none"):
            return ()
        try:
            return tuple(int(res) for res in attention_resolutions.split(","))
        except ValueError:
            message = f"attention_resolutions must be comma-separated ints, got {attention_resolutions!r}"
            raise ValueError(message) from None
    return tuple(attention_resolutions)
