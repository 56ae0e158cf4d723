"""Typed, frozen config dataclasses to and from JSON values, validated on the way back.

to_plain writes enums by value, tuples as lists, paths as strings, nested dataclasses as objects: the one
layout every config.json uses. from_plain reads that layout back into the dataclass, converting each value
by the field's type hint (enums through parse_enum, lists to tuples, Optional, nested dataclasses) and
naming the file's field in every message; the dataclass's own __post_init__ then checks the values, so a
config read from a file passes the same checks as one built from flags.

A run configuration is a dataclass of sections (each a dataclass of fields). Its fields have one flat
name each across the sections (the flag names), so flat_fields / replace_flat address them without
knowing the section: the CLI, the presets and --resume all go through them.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ddx.utils.checks import parse_enum


def to_plain(value: Any) -> Any:
    """JSON values of a config: dataclasses as objects, enums by value, tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass's fields (postponed annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def convert(kind: Any, value: Any, where: str) -> Any:
    """`value` (a JSON value) as the type hint `kind`; ValueError naming `where` when it cannot be."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return convert(options[0], value, where) if len(options) == 1 else value
    if kind is Any or value is None:
        return value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return parse_enum(kind, value, where)
        except (TypeError, ValueError) as err:
            raise ValueError(str(err)) from None
    if dataclasses.is_dataclass(kind):
        return from_plain(kind, value, where)
    if kind is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        return tuple(convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is Path or kind is os.PathLike:
        return Path(value)
    if kind in (int, float, bool, str) and not (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        raise ValueError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def from_plain(cls: type, data: Any, where: str | None = None) -> Any:
    """The dataclass `cls` from its to_plain layout; missing fields take their defaults, unknown ones are an error."""
    where = where or cls.__name__
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object of {cls.__name__} fields, got {type(data).__name__}")
    kinds = field_types(cls)
    unknown = sorted(set(data) - set(kinds))
    if unknown:
        raise ValueError(f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(known: {', '.join(kinds)})")
    values = {name: convert(kinds[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def sections(cls: type) -> dict[str, type]:
    """The sections of a run configuration: {field name: section dataclass}."""
    kinds = field_types(cls)
    return {name: kind for name, kind in kinds.items() if dataclasses.is_dataclass(kind)}


def flat_fields(cls: type) -> dict[str, tuple[str, Any]]:
    """{flat field name: (section name, type hint)} over the sections of a run configuration.

    ValueError when two sections share a field name: a flat name must say one fact once."""
    out: dict[str, tuple[str, Any]] = {}
    for section, kind in sections(cls).items():
        for name, hint in field_types(kind).items():
            if name in out:
                raise ValueError(f"{cls.__name__}: field {name!r} is in both {out[name][0]} and {section}")
            out[name] = (section, hint)
    return out


def replace_flat(config: Any, values: Mapping[str, Any], where: str = "") -> Any:
    """`config` (a run configuration) with the flat fields in `values` replaced (typed by convert).

    ValueError naming unknown fields, or the field whose new value its section rejects."""
    table = flat_fields(type(config))
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise ValueError(f"{where or type(config).__name__}: unknown field{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}")
    by_section: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        section, hint = table[name]
        by_section.setdefault(section, {})[name] = convert(hint, value, f"{where or section}.{name}")
    changes = {}
    for section, fields in by_section.items():
        try:
            changes[section] = dataclasses.replace(getattr(config, section), **fields)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where + ': ' if where else ''}{err}") from None
    return dataclasses.replace(config, **changes)


def flat_values(config: Any) -> dict[str, Any]:
    """{flat field name: value} of a run configuration (the inverse of replace_flat)."""
    return {name: getattr(getattr(config, section), name) for name, (section, _) in flat_fields(type(config)).items()}


def differences(old: Any, new: Any, names: tuple[str, ...] | None = None) -> list[tuple[str, Any, Any]]:
    """[(flat name, old value, new value)] where two run configurations differ (over `names`, default all)."""
    a, b = flat_values(old), flat_values(new)
    return [(name, a[name], b[name]) for name in (names or a) if a[name] != b[name]]


__all__ = ["convert", "differences", "field_types", "flat_fields", "flat_values", "from_plain", "replace_flat",
           "sections", "to_plain"]
