"""What a checkpoint file is, and why its weights do not fit the model the flags describe.

A user who hands sample.py the wrong file (an IDDPM model to ``sample.py ddgan``, a DDGAN content.pth to
``sample.py iddpm``) or the right file with the wrong flags should read which kind of file it is and which
flags disagree with it, not a KeyError or torch's list of every mismatched tensor.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

import torch

from ddx.checkpoints.ddgan_official import CONTENT_KEYS
from ddx.checkpoints.io import CHECKPOINT_FORMAT
from ddx.checkpoints.state_dict import strip_module_prefix

_SHOWN = 3  # mismatched parameters named in a message
_SAMPLED_FILES = {"ddgan": "a generator's file (netG_<epoch>.pth, content.pth or a ddx ckpt_<step>.pt)",
                  "iddpm": "a UNet's file (model<N>.pt, ema_<rate>_<N>.pt, a ddx ckpt_<step>.pt or run directory)"}


class Family(enum.Enum):
    """Kinds of checkpoint file, each with the command that samples from it."""

    DDX_DDGAN = ("a ddx DDGAN checkpoint", "sample.py ddgan --checkpoint")
    DDX_IDDPM = ("a ddx IDDPM checkpoint", "sample.py iddpm --model_path")
    DDGAN_CONTENT = ("an official DDGAN content.pth", "sample.py ddgan --checkpoint")
    DDGAN_GENERATOR = ("a DDGAN generator state_dict (netG_<epoch>.pth)", "sample.py ddgan --checkpoint")
    DDGAN_DISCRIMINATOR = ("a DDGAN discriminator state_dict", None)
    IDDPM_MODEL = ("an IDDPM UNet state_dict (official model<N>.pt / ema_<rate>_<N>.pt)", "sample.py iddpm --model_path")
    OPTIMIZER = ("an optimizer state (such as opt<N>.pt)", None)

    @property
    def description(self) -> str:
        return self.value[0]

    @property
    def command(self) -> str | None:
        return self.value[1]

    @property
    def is_ddgan(self) -> bool:
        return "DDGAN" in self.name


def _is_state_dict(payload: Any) -> bool:
    return isinstance(payload, Mapping) and bool(payload) and all(isinstance(v, torch.Tensor) for v in payload.values())


def identify(payload: Any) -> Family | None:
    """The family of a loaded checkpoint payload, or None when it is none ddx knows."""
    if isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT:
        trainer = payload.get("trainer")
        if isinstance(trainer, Mapping) and "netG" in trainer:
            return Family.DDX_DDGAN
        if isinstance(trainer, Mapping) and "model" in trainer:
            return Family.DDX_IDDPM
        return None
    if isinstance(payload, Mapping) and all(key in payload for key in CONTENT_KEYS):
        return Family.DDGAN_CONTENT
    if isinstance(payload, Mapping) and set(payload) >= {"state", "param_groups"}:
        return Family.OPTIMIZER
    if not _is_state_dict(payload):
        return None
    state = strip_module_prefix(payload)
    keys = list(state)
    if any(key.startswith(("input_blocks.", "middle_block.", "output_blocks.")) for key in keys):
        return Family.IDDPM_MODEL
    if any(key.startswith(("all_modules.", "z_transform.")) for key in keys):
        return Family.DDGAN_GENERATOR
    if any(key.startswith(("start_conv.", "end_linear.", "final_conv.")) for key in keys):
        return Family.DDGAN_DISCRIMINATOR
    if "t_embed.weight" in keys:
        # The 2-D MLPs share their layout; the discriminator ends in one logit, the generator in a point.
        layers = sorted(int(m.group(1)) for m in map(re.compile(r"^net\.(\d+)\.weight$").match, keys) if m)
        last = state[f"net.{layers[-1]}.weight"] if layers else None
        return Family.DDGAN_DISCRIMINATOR if last is not None and last.shape[0] == 1 else Family.DDGAN_GENERATOR
    return None


def wrong_family_message(name: str, family: Family | None, wanted: str) -> str | None:
    """'<name> is <family>: use <command> <name>' when the file is not for ``wanted`` ('ddgan' or 'iddpm')."""
    if family is None or (family.command is not None and family.is_ddgan == (wanted == "ddgan")):
        return None
    if family.command is not None:
        use = f"use {family.command} {name}"
    else:
        use = "give " + _SAMPLED_FILES[wanted]
    return f"{name} is {family.description}, not weights for sample.py {wanted}: {use}"


def unet_flags_of(state: Mapping[str, torch.Tensor], image_size: int) -> dict[str, Any]:
    """The IDDPM UNet flags a state_dict was built with, as far as its shapes tell (ddx's = official keys)."""
    state = strip_module_prefix(state)
    first, out = state.get("input_blocks.0.0.weight"), state.get("out.2.weight")
    if first is None or out is None:
        return {}
    channels = int(first.shape[0])
    blocks = sorted({int(m.group(1)) for m in map(re.compile(r"^input_blocks\.(\d+)\.").match, state) if m})
    downsamples = {k for k in blocks[1:] if f"input_blocks.{k}.0.in_layers.2.weight" not in state}
    levels = len(downsamples) + 1
    res_blocks = [k for k in blocks[1:] if k not in downsamples]
    per_level = len(res_blocks) // levels if levels else 0
    flags: dict[str, Any] = {"num_channels": channels, "learn_sigma": int(out.shape[0]) == 2 * int(first.shape[1]),
                             "class_cond": "label_emb.weight" in state}
    if per_level and len(res_blocks) == per_level * levels:
        flags["num_res_blocks"] = per_level
        mult = [int(state[f"input_blocks.{res_blocks[i * per_level]}.0.out_layers.3.weight"].shape[0]) // channels
                for i in range(levels)]
        flags["channel_mult"] = ",".join(map(str, mult))
        attention = sorted({image_size // 2 ** (i // per_level) for i, k in enumerate(res_blocks)
                            if f"input_blocks.{k}.1.qkv.weight" in state}, reverse=True)
        flags["attention_resolutions"] = ",".join(map(str, attention))
    return flags


def ncsnpp_flags_of(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The NCSN++ generator flags a state_dict shows directly: the latent and its mapping network."""
    state = strip_module_prefix(state)
    linears = sorted(int(m.group(1)) for m in map(re.compile(r"^z_transform\.(\d+)\.weight$").match, state) if m)
    if not linears:
        return {}
    first = state[f"z_transform.{linears[0]}.weight"]
    # The mapping network is the latent's embedding layer followed by n_mlp layers (official NCSN++).
    return {"nz": int(first.shape[1]), "z_emb_dim": int(first.shape[0]), "n_mlp": len(linears) - 1}


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def mismatch_message(name: str, model_state: Mapping[str, torch.Tensor], file_state: Mapping[str, torch.Tensor],
                     file_flags: Mapping[str, Any], flag_values: Mapping[str, Any], suspects: tuple[str, ...]
                     ) -> str | None:
    """Why ``file_state`` does not load into a model with ``model_state``, naming parameters and flags; None if it fits.

    file_flags: flags read from the file's shapes; flag_values: the same flags as given; suspects: the
    flags that shape the model, named when the file's own values cannot be read.
    """
    differ = [k for k in model_state if k in file_state and model_state[k].shape != file_state[k].shape]
    missing = [k for k in model_state if k not in file_state]
    extra = [k for k in file_state if k not in model_state]
    if not (differ or missing or extra):
        return None
    parts = []
    if differ:
        shown = ", ".join(f"{k} (file {_shape(file_state[k])}, flags {_shape(model_state[k])})" for k in differ[:_SHOWN])
        parts.append(f"{len(differ)} parameter(s) differ in shape: {shown}" + (", ..." if len(differ) > _SHOWN else ""))
    if missing:
        parts.append(f"{len(missing)} missing from the file (e.g. {', '.join(missing[:_SHOWN])})")
    if extra:
        parts.append(f"{len(extra)} in the file but not in the model (e.g. {', '.join(extra[:_SHOWN])})")
    disagree = [f"--{flag} {file_flags[flag]} (flags: {_flag_text(flag_values[flag])})" for flag in file_flags
                if flag in flag_values and _flag_text(flag_values[flag]) != _flag_text(file_flags[flag])]
    if disagree:
        fix = f"the file was built with {'; '.join(disagree)}: pass those flags"
    else:
        fix = f"check {', '.join('--' + s for s in suspects)} against the run that wrote it"
    return f"the weights in {name} do not fit the model the flags describe: {'; '.join(parts)}; {fix}"


def _flag_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
