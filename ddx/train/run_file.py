"""A run's config.json, one layout for both families, written and read back by this module alone.

    {"format": "ddx-run/2", "family": "ddgan" | "iddpm", "config": <to_plain(run configuration)>,
     "command": ["train.py", family, argv...], <extras: world_size, num_parameters, preset, ...>}

"config" is the family's run configuration (a frozen dataclass of sections, ddx.utils.config_io): enums by
value, tuples as lists, read back by from_plain, which validates every field and names the bad one. Files
written before this layout still load: DDGAN's {"model": "ddgan", "args": {flat flags}} and IDDPM's
{"flags": {flat flags}, ...} hold the flags by their flat names, which replace_flat lays over the family's
defaults (the keys that were flags but are no config fields, e.g. outdir / preset / resume, are dropped; an
unknown key is named in a warning and ignored).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ddx.checkpoints.run_config_file import CONFIG_FILE, read_run_config
from ddx.utils.config_io import differences, flat_fields, from_plain, replace_flat, to_plain
from ddx.utils.errors import CheckpointError, UsageError

RUN_FORMAT = "ddx-run/2"
FAMILIES = ("ddgan", "iddpm")
# Keys of the record itself; every other top-level key is an extra (world_size, num_parameters...).
_RECORD_KEYS = ("format", "family", "config", "command")


@dataclasses.dataclass(frozen=True)
class LegacyLayout:
    """How a family's older config.json held its flags.

    key: the object of flat flags ("args" for DDGAN, "flags" for IDDPM).
    dropped: flags that are not run-configuration fields (outdir, preset, resume...): dropped silently.
    renamed: {old flag name: flat field name}, for flags whose name changed.
    """

    key: str
    dropped: frozenset[str] = frozenset()
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RunFile:
    """A config.json read back: the family, its typed run configuration, the command that wrote it, the extras.

    legacy: the file is in an older layout (its configuration was rebuilt from the flags it recorded)."""

    path: Path
    family: str
    config: Any
    command: tuple[str, ...] = ()
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    legacy: bool = False


def run_record(family: str, config: Any, command: Sequence[str] = (), **extras: Any) -> dict[str, Any]:
    """The JSON object of a run's config.json (RunDir.write_config writes it as it is)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from: {', '.join(FAMILIES)}")
    clash = sorted(set(extras) & set(_RECORD_KEYS))
    if clash:
        raise ValueError(f"extras may not be named {', '.join(clash)} (keys of the record itself)")
    return {"format": RUN_FORMAT, "family": family, "config": to_plain(config), "command": [str(a) for a in command],
            **to_plain(extras)}


def run_config_path(run: str | os.PathLike) -> Path:
    """<run>/config.json for a run directory, or the file itself."""
    path = Path(run)
    return path / CONFIG_FILE if path.is_dir() else path


def read_run(run: str | os.PathLike, family: str, defaults: Any, legacy: LegacyLayout | None = None) -> RunFile:
    """The run configuration in a run's config.json (a run directory or the file), of the family `family`.

    defaults: the family's default run configuration (an instance): its class reads the new layout, and
    the flags of an older file are laid over it. CheckpointError naming the file, the problem and the fix
    when the file is unreadable, of another family, of an unknown layout, or holds a bad value."""
    path = run_config_path(run)
    data = read_run_config(path)
    recorded = _recorded_family(data)
    if recorded is not None and recorded != family:
        raise CheckpointError(f"{path} records {_NAMES[recorded]} run, not {_NAMES.get(family, family)} one: use "
                              f"train.py / sample.py {recorded} with it")
    if "format" not in data and legacy is not None and legacy.key in data:
        return _read_legacy(path, data, family, defaults, legacy)
    if data.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path} is not a ddx run configuration of the layout {RUN_FORMAT} (its format: "
                              f"{data.get('format')!r}): it was written by another ddx version or program; give the "
                              f"model flags and the checkpoint file instead of the run directory")
    try:
        config = from_plain(type(defaults), data.get("config", {}), f"{path}: config")
    except ValueError as err:
        raise CheckpointError(f"{err}; fix the value in the file (or restore it from a copy)") from None
    extras = {k: v for k, v in data.items() if k not in _RECORD_KEYS}
    return RunFile(path, family, config, tuple(data.get("command") or ()), extras)


_NAMES = {"ddgan": "a DDGAN", "iddpm": "an IDDPM"}


def _recorded_family(data: Mapping[str, Any]) -> str | None:
    """The family a config.json records: "family" (this layout), else the older layouts' marks (DDGAN's
    "model": "ddgan", IDDPM's "flags"); None when it says none."""
    recorded = data.get("family")
    if recorded is None and data.get("model") == "ddgan" and "args" in data:
        recorded = "ddgan"
    if recorded is None and "flags" in data and "format" not in data:
        recorded = "iddpm"
    return recorded if recorded in FAMILIES else None


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def legacy_values(flags: Mapping[str, Any], config_cls: type, layout: LegacyLayout) -> tuple[dict[str, Any], list[str]]:
    """(the flat field values among an older file's flags, the flags that are neither fields nor dropped).

    A None recorded for a field that cannot be None meant "not given" (e.g. DDGAN's --ch_mult of a 2-D run):
    the default stands."""
    fields = flat_fields(config_cls)
    values, unknown = {}, []
    for name, value in flags.items():
        name = layout.renamed.get(name, name)
        if name in layout.dropped:
            continue
        if name not in fields:
            unknown.append(name)
        elif value is not None or _optional(fields[name][1]):
            values[name] = value
    return values, unknown


def _read_legacy(path: Path, data: Mapping[str, Any], family: str, defaults: Any, layout: LegacyLayout) -> RunFile:
    flags = data[layout.key]
    if not isinstance(flags, Mapping):
        raise CheckpointError(f"{path}: {layout.key!r} is not an object of flags: restore the file from a copy")
    values, unknown = legacy_values(flags, type(defaults), layout)
    if unknown:
        warnings.warn(f"{path} (an older config.json) records flags this ddx does not know, ignored: "
                      f"{', '.join(sorted(unknown))}", stacklevel=3)
    try:
        config = replace_flat(defaults, values, f"{path} (an older config.json)")
    except ValueError as err:
        raise CheckpointError(f"{err}; fix the value in the file, or give the model flags and the checkpoint file "
                              f"instead of the run directory") from None
    return RunFile(path, family, config, legacy=True)

def check_resume(recorded: RunFile, config: Any, defining: Sequence[str], exempt: Sequence[str] = (),
                 new_run: str = "choose another --outdir for a new run") -> None:
    """UsageError listing each field of the `defining` sections (those that fix what the checkpoints hold: model,
    diffusion, data) where the run's recorded configuration and the resuming one differ (recorded vs new), but
    those in `exempt`, and the fix. Execution and loop fields may change on resume."""
    names = tuple(name for name, (section, _) in flat_fields(type(config)).items()
                  if section in defining and name not in exempt)
    changed = differences(recorded.config, config, names)
    if changed:
        listed = "; ".join(f"--{name}: recorded {to_plain(old)!r}, this command {to_plain(new)!r}"
                           for name, old, new in changed)
        raise UsageError(f"the run at {recorded.path.parent} was trained with other settings than this command "
                         f"({listed}): these define the model, diffusion or data, so a resume must keep them: resume "
                         f"with the recorded values (as in {recorded.path}), or {new_run}")


__all__ = ["FAMILIES", "LegacyLayout", "RUN_FORMAT", "RunFile", "check_resume", "legacy_values", "read_run",
           "run_config_path", "run_record"]
