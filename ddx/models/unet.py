"""IDDPM's UNet backbone (openai/improved-diffusion: unet.UNetModel) and its builders: build_unet from a
typed UNetConfig (ddx.models.unet_config, which knows nothing of the network) and script_util.create_model.

`UNetModel(x, timesteps, y=None)` maps tensors to tensors and knows nothing of betas. Its
state_dict keys and shapes equal the official model's, so the released checkpoints (CIFAR-10,
ImageNet-64) load with strict=True.

Mixed precision: the official fp16 path (fp16_util.convert_to_fp16 with master weights and loss
scaling) is not ported; ddx runs the model under torch.autocast (bf16 or fp16) with fp32
parameters. Normalisation statistics are always float32 (kernels.adagn), the attention softmax
is float32, and the timestep embedding is float32 before the first Linear.
"""

import torch
from torch import nn

from ddx.models.unet_blocks import (
    Downsample,
    ResBlock,
    TimestepEmbedSequential,
    Upsample,
    check_dims,
    conv_nd,
    zero_module,
)
from ddx.models.unet_config import UNetConfig, parse_attention_resolutions
from ddx.nn.attention import AttentionBackend, AttentionBlock
from ddx.nn.embedding import timestep_embedding
from ddx.nn.norm import normalization
from ddx.utils.checks import check_positive_int


class UNetModel(nn.Module):
    """The UNet with attention and timestep embedding, with the official constructor arguments.

    attention_resolutions: downsample rates (1, 2, 4, ...) at which attention blocks are added.
    channel_mult: channel multiplier of each level; the input's spatial size must be divisible by
    2 ** (len(channel_mult) - 1) (the inner two dims for dims=3). num_classes: class-conditional
    through `label_emb` when an int. num_heads_upsample=-1 means num_heads. use_checkpoint:
    gradient checkpointing of every ResBlock and AttentionBlock (non-reentrant).
    attention_backend: how attention is computed (not an official argument; see AttentionBackend).
    """

    def __init__(
        self,
        in_channels,
        model_channels,
        out_channels,
        num_res_blocks,
        attention_resolutions,
        dropout=0,
        channel_mult=(1, 2, 4, 8),
        conv_resample=True,
        dims=2,
        num_classes=None,
        use_checkpoint=False,
        num_heads=1,
        num_heads_upsample=-1,
        use_scale_shift_norm=False,
        attention_backend=AttentionBackend.SDPA,
    ):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("model_channels", model_channels),
            ("out_channels", out_channels),
            ("num_res_blocks", num_res_blocks),
            ("num_heads", num_heads),
        ):
            check_positive_int(value, name)
        check_dims(dims)
        if not channel_mult:
            raise ValueError("channel_mult must name at least one level")
        for mult in channel_mult:
            check_positive_int(mult, "each channel_mult entry")
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes")
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        check_positive_int(num_heads_upsample, "num_heads_upsample")

        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_res_blocks = num_res_blocks
        self.attention_resolutions = tuple(attention_resolutions)
        self.dropout = dropout
        self.channel_mult = tuple(channel_mult)
        self.conv_resample = conv_resample
        self.dims = dims
        self.num_classes = num_classes
        self.use_checkpoint = use_checkpoint
        self.num_heads = num_heads
        self.num_heads_upsample = num_heads_upsample
        self.use_scale_shift_norm = use_scale_shift_norm
        self.attention_backend = AttentionBackend(attention_backend)

        time_embed_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, time_embed_dim),
            nn.SiLU(),
            nn.Linear(time_embed_dim, time_embed_dim),
        )
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, time_embed_dim)

        skip_chans = self._build_input_blocks(time_embed_dim)
        ch = skip_chans[-1]
        self.middle_block = TimestepEmbedSequential(
            self._res_block(ch, time_embed_dim, ch),
            self._attention(ch, num_heads),
            self._res_block(ch, time_embed_dim, ch),
        )
        ch = self._build_output_blocks(time_embed_dim, skip_chans)
        # The official out conv reads model_channels inputs; that equals ch = model_channels *
        # channel_mult[0] in every configuration the official code can build (channel_mult[0] == 1).
        self.out = nn.Sequential(
            normalization(ch, silu=True),
            nn.Identity(),
            zero_module(conv_nd(dims, ch, out_channels, 3, padding=1)),
        )

    def _res_block(self, channels, emb_channels, out_channels):
        return ResBlock(
            channels,
            emb_channels,
            self.dropout,
            out_channels=out_channels,
            dims=self.dims,
            use_checkpoint=self.use_checkpoint,
            use_scale_shift_norm=self.use_scale_shift_norm,
        )

    def _attention(self, channels, num_heads):
        return AttentionBlock(channels, num_heads, self.use_checkpoint, self.attention_backend)

    def _build_input_blocks(self, time_embed_dim):
        """input_blocks; returns the channel count of each block's output (the skip connections)."""
        ch = self.model_channels
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(conv_nd(self.dims, self.in_channels, ch, 3, padding=1))]
        )
        skip_chans = [ch]
        ds = 1
        for level, mult in enumerate(self.channel_mult):
            for _ in range(self.num_res_blocks):
                layers = [self._res_block(ch, time_embed_dim, mult * self.model_channels)]
                ch = mult * self.model_channels
                if ds in self.attention_resolutions:
                    layers.append(self._attention(ch, self.num_heads))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(self.channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, self.conv_resample, self.dims)))
                skip_chans.append(ch)
                ds *= 2
        return skip_chans

    def _build_output_blocks(self, time_embed_dim, skip_chans):
        """output_blocks, consuming skip_chans from the end; returns the final channel count."""
        skip_chans = list(skip_chans)
        ch = skip_chans[-1]
        ds = 2 ** (len(self.channel_mult) - 1)
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(self.channel_mult))[::-1]:
            for i in range(self.num_res_blocks + 1):
                layers = [self._res_block(ch + skip_chans.pop(), time_embed_dim, self.model_channels * mult)]
                ch = self.model_channels * mult
                if ds in self.attention_resolutions:
                    layers.append(self._attention(ch, self.num_heads_upsample))
                if level and i == self.num_res_blocks:
                    layers.append(Upsample(ch, self.conv_resample, self.dims))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        return ch

    def _check_inputs(self, x, timesteps, y):
        if not isinstance(x, torch.Tensor) or not isinstance(timesteps, torch.Tensor):
            raise TypeError("x and timesteps must be torch.Tensors")
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, {', '.join(['*'] * self.dims)}) for this "
                f"{self.dims}-D UNet with in_channels={self.in_channels}, got {tuple(x.shape)}"
            )
        factor = 2 ** (len(self.channel_mult) - 1)
        resampled = x.shape[-2:] if self.dims == 3 else x.shape[2:]
        if any(size % factor for size in resampled):
            raise ValueError(
                f"spatial size {tuple(x.shape[2:])} must be divisible by {factor} "
                f"(the UNet downsamples {len(self.channel_mult) - 1} times)"
            )
        if timesteps.shape != (x.shape[0],):
            raise ValueError(f"timesteps must have shape ({x.shape[0]},), got {tuple(timesteps.shape)}")
        if (y is None) != (self.num_classes is None):
            raise ValueError("y must be given if and only if the model is class-conditional (num_classes set)")
        if y is not None:
            if y.shape != (x.shape[0],) or y.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"y must be an int64 tensor of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")

    def forward(self, x, timesteps, y=None):
        """x (N, in_channels, *spatial), timesteps (N,) (may be fractional), y (N,) labels or None.

        Returns (N, out_channels, *spatial), in x's dtype (or autocast's).
        """
        self._check_inputs(x, timesteps, y)
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        if self.num_classes is not None:
            emb = emb + self.label_emb(y)
        hs = []
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


def build_unet(config):
    """The UNetModel described by a UNetConfig."""
    if not isinstance(config, UNetConfig):
        raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
    return UNetModel(
        in_channels=config.in_channels,
        model_channels=config.num_channels,
        out_channels=config.in_channels * 2 if config.learn_sigma else config.in_channels,
        num_res_blocks=config.num_res_blocks,
        attention_resolutions=config.attention_rates(),
        dropout=config.dropout,
        channel_mult=config.resolved_channel_mult(),
        num_classes=config.num_classes if config.class_cond else None,
        use_checkpoint=config.use_checkpoint,
        num_heads=config.num_heads,
        num_heads_upsample=config.num_heads_upsample,
        use_scale_shift_norm=config.use_scale_shift_norm,
        attention_backend=config.attention_backend,
    )


def create_model(
    image_size,
    num_channels,
    num_res_blocks,
    learn_sigma,
    class_cond,
    use_checkpoint,
    attention_resolutions,
    num_heads,
    num_heads_upsample,
    use_scale_shift_norm,
    dropout,
    channel_mult=None,
    **options,
):
    """script_util.create_model: the same arguments; attention_resolutions as '16,8' or (16, 8).

    ddx additions: channel_mult overrides the per-size default, and image_size 16 is accepted
    (channel_mult (1, 2, 2)); further UNetConfig fields (num_classes, in_channels,
    attention_backend) can be passed by keyword.
    """
    return build_unet(
        UNetConfig(
            image_size=image_size,
            num_channels=num_channels,
            num_res_blocks=num_res_blocks,
            learn_sigma=learn_sigma,
            class_cond=class_cond,
            use_checkpoint=use_checkpoint,
            attention_resolutions=parse_attention_resolutions(attention_resolutions),
            num_heads=num_heads,
            num_heads_upsample=num_heads_upsample,
            use_scale_shift_norm=use_scale_shift_norm,
            dropout=dropout,
            channel_mult=channel_mult,
            **options,
        )
    )
