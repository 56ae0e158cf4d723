"""argparse flags derived from a run configuration's fields, and the layers that resolve them.

Every field of every section of a run configuration (ddx.utils.config_io) is a flag of the same name:
its type comes from the field's type hint, its default from the family's default configuration, its
help from an optional FlagSpec. So a field added to a config dataclass is a flag at once, with no list
to update. Official spellings are kept by the family's forms (DDGAN's store_true / store_false booleans,
IDDPM's ``--learn_sigma True`` and ``--attention_resolutions 16,8``) and by FlagSpec overrides.

Flags are parsed with default=SUPPRESS, so the namespace holds exactly what was typed; resolve() then
lays the values over the defaults in order (family defaults < --preset < a run's config.json < the
command line), remembering where each value came from for the messages of the cross-flag checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ddx.cli.validators import (
    FlagValueError,
    NONE_WORDS,
    enum_choice,
)
from ddx.utils.config_io import field_types, flat_fields, flat_values, replace_flat, sections, to_plain


class BoolForm(enum.Enum):
    OFFICIAL_DDGAN = "store"  # train_ddgan.py: --flag stores the opposite of the default (store_true / store_false)
    STR2BOOL = "str2bool"  # image_train.py: --flag True / --flag False
    OPTIONAL = "optional"  # --flag / --no-flag


class ListForm(enum.Enum):
    NARGS = "nargs"  # --ch_mult 1 2 2 2
    COMMA = "comma"  # --attention_resolutions 16,8


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """Overrides of the derived flag: help text, argparse type, extra spellings, its own flag form."""

    help: str | None = None
    type: Callable[[str], Any] | None = None
    aliases: tuple[str, ...] = ()
    bool_form: BoolForm | None = None
    list_form: ListForm | None = None
    nargs: int | None = None  # a fixed count for a NARGS list (e.g. --profile_window START COUNT); default any
    metavar: str | tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class FlagForms:
    """How one family spells its flags: booleans, lists, per-field overrides, section titles, hidden fields."""

    bools: BoolForm
    lists: ListForm
    specs: Mapping[str, FlagSpec] = dataclasses.field(default_factory=dict)
    titles: Mapping[str, str] = dataclasses.field(default_factory=dict)
    skip: frozenset[str] = frozenset()


def str2bool(text: str) -> bool:
    """The official boolean form: yes/true/t/y/1 or no/false/f/n/0 (any case)."""
    value = str(text).strip().lower()
    if value in ("yes", "true", "t", "y", "1"):
        return True
    if value in ("no", "false", "f", "n", "0"):
        return False
    raise FlagValueError(f"expected a boolean (True/False), got {text!r}")


def _scalar(kind: Any) -> Callable[[str], Any]:
    """The argparse type of a scalar type hint."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return enum_choice(kind)
    if kind is int:
        return _int
    if kind is float:
        return _float
    if kind is Path:
        return lambda text: Path(text).expanduser()
    return str


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FlagValueError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FlagValueError(f"expected a number, got {text!r}") from None
    if value != value or abs(value) == float("inf"):
        raise FlagValueError(f"expected a finite number, got {text!r}")
    return value


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return kind, False


def _comma_list(item: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        if text.strip().lower() in NONE_WORDS:
            return ()
        return tuple(item(part.strip()) for part in text.split(","))

    parse.__name__ = "comma_list"
    return parse


class _NargsTuple(argparse.Action):
    """nargs='*' values as a tuple; 'none' (or '') alone means the empty tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        words = [v for v in values if str(v).strip().lower() not in NONE_WORDS]
        try:
            setattr(namespace, self.dest, tuple(self.type_item(w) for w in words))
        except (argparse.ArgumentTypeError, ValueError) as err:
            # argparse reports only ArgumentError raised by an action as "argument --flag: ..." (exit 2).
            raise argparse.ArgumentError(self, str(err)) from None


def _help(spec: FlagSpec, default: Any, joiner: str = " ") -> str:
    shown = to_plain(default)
    if isinstance(shown, list):
        shown = joiner.join(map(str, shown)) or "none"
    return f"{spec.help + ' ' if spec.help else ''}(default: {shown})"


def add_field_flag(group, name: str, hint: Any, default: Any, forms: FlagForms) -> None:
    """One field as a flag (dest = the field's name, default SUPPRESS: only what is typed lands)."""
    spec = forms.specs.get(name, FlagSpec())
    kind, _ = _unwrap_optional(hint)
    names = [f"--{name}", *spec.aliases]
    common = dict(dest=name, default=argparse.SUPPRESS, help=_help(spec, default))
    if kind is bool:
        form = spec.bool_form or forms.bools
        if form is BoolForm.OFFICIAL_DDGAN:
            if default:  # the official store_false flags: giving one switches it off
                common["help"] = f"{spec.help + ' ' if spec.help else ''}(on by default; give the flag to switch it off)"
            group.add_argument(*names, action="store_false" if default else "store_true", **common)
        elif form is BoolForm.OPTIONAL:
            group.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
        else:
            group.add_argument(*names, type=spec.type or str2bool, metavar="BOOL", **common)
        return
    if kind is tuple or typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        item = _scalar(args[0] if args else int)
        if (spec.list_form or forms.lists) is ListForm.COMMA:
            common["help"] = _help(spec, default, ",")  # shown as it is typed: 16,8
            group.add_argument(*names, type=spec.type or _comma_list(item), **common)
        else:
            action = type("NargsTuple", (_NargsTuple,), {"type_item": staticmethod(spec.type or item)})
            if spec.metavar is not None:
                common["metavar"] = spec.metavar
            group.add_argument(*names, nargs=spec.nargs or "*", action=action, **common)
        return
    group.add_argument(*names, type=spec.type or _scalar(kind), **common)


def add_config_flags(parser: argparse.ArgumentParser, defaults: Any, forms: FlagForms) -> None:
    """A flag for every field of every section of the run configuration `defaults` (an instance: its values are
    the help's defaults), grouped by section, but the fields in forms.skip."""
    for section, cls in sections(type(defaults)).items():
        group = parser.add_argument_group(forms.titles.get(section, section))
        current = getattr(defaults, section)
        for name, hint in field_types(cls).items():
            if name not in forms.skip:
                add_field_flag(group, name, hint, getattr(current, name), forms)


def typed_values(namespace: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """The fields of config_cls that the namespace holds (with SUPPRESS defaults: what was typed)."""
    names = flat_fields(config_cls)
    return {k: v for k, v in vars(namespace).items() if k in names}


Layer = tuple[str, Mapping[str, Any]]


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """The layers' flat values merged in order (a later layer wins) and, for each field, the label of the layer
    that set it: what cross-field checks read, to name the flags before the sections reject a combination."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for label, values in layers:
        merged.update(values)
        sources.update({name: label for name in values})
    return merged, sources


def resolve(defaults: Any, layers: Sequence[Layer]) -> tuple[Any, dict[str, str]]:
    """`defaults` with each layer's flat values laid over it in order; returns the configuration and, for each
    field a layer set, that layer's label (e.g. "from --preset digits"; "" for the command line)."""
    merged, sources = merge_layers(layers)
    # One replacement, not one per layer: a combination may only be valid once every layer is in.
    return replace_flat(defaults, merged), sources


__all__ = ["BoolForm", "FlagForms", "FlagSpec", "ListForm", "add_config_flags", "add_field_flag", "flat_values",
           "merge_layers", "resolve", "str2bool", "typed_values"]
