"""argparse ``type=`` functions and cross-flag checks with messages that name the problem.

Each type function raises :class:`FlagValueError`, which argparse reports as
``argument --flag: <message>``; being a ValueError too, it reads well outside argparse.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ddx.utils.checks import enum_values, parse_enum

_E = TypeVar("_E", bound=enum.Enum)
_N = TypeVar("_N", int, float)


class FlagValueError(argparse.ArgumentTypeError, ValueError):
    """A flag's value is invalid (argparse shows the message after the flag's name)."""


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise FlagValueError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FlagValueError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FlagValueError(f"expected a finite number, got {text!r}")
    return value


def _bounded(name: str, parse: Callable[[str], _N], ok: Callable[[_N], bool], expected: str) -> Callable[[str], _N]:
    """A type function: ``parse(text)`` when ``ok`` of it, else "expected <expected>, got <value>"."""

    def check(text: str) -> _N:
        value = parse(text)
        if not ok(value):
            raise FlagValueError(f"expected {expected}, got {value:g}" if isinstance(value, float)
                                 else f"expected {expected}, got {value}")
        return value

    check.__name__ = check.__qualname__ = name
    check.__doc__ = f"{expected[0].upper()}{expected[1:]}."
    return check


positive_int = _bounded("positive_int", _parse_int, lambda v: v > 0, "a positive integer")
non_negative_int = _bounded("non_negative_int", _parse_int, lambda v: v >= 0, "a non-negative integer")
positive_float = _bounded("positive_float", _parse_float, lambda v: v > 0, "a positive number")
non_negative_float = _bounded("non_negative_float", _parse_float, lambda v: v >= 0, "a non-negative number")
probability = _bounded("probability", _parse_float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")


def existing_file(text: str) -> Path:
    """The path of an existing regular file."""
    path = Path(text).expanduser()
    if not path.exists():
        raise FlagValueError(f"file not found: {text}")
    if not path.is_file():
        raise FlagValueError(f"not a regular file: {text}")
    return path


def existing_dir(text: str) -> Path:
    """The path of an existing directory."""
    path = Path(text).expanduser()
    if not path.exists():
        raise FlagValueError(f"directory not found: {text}")
    if not path.is_dir():
        raise FlagValueError(f"not a directory: {text}")
    return path


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated integers, e.g. ``"1,2,2,2"`` -> ``(1, 2, 2, 2)``; spaces are allowed."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(part == "" for part in parts):
        raise FlagValueError(f"expected comma-separated integers like '1,2,2', got {text!r}")
    values = []
    for part in parts:
        try:
            values.append(int(part))
        except ValueError:
            raise FlagValueError(f"expected comma-separated integers, {part!r} in {text!r} is not one") from None
    return tuple(values)


def positive_int_list(text: str) -> tuple[int, ...]:
    """Comma-separated integers, each > 0."""
    values = int_list(text)
    bad = [v for v in values if v <= 0]
    if bad:
        raise FlagValueError(f"expected positive integers, got {', '.join(map(str, bad))} in {text!r}")
    return values


NONE_WORDS = ("", "none")


def positive_int_list_or_none(text: str) -> tuple[int, ...]:
    """Like :func:`positive_int_list`, and ``""`` or ``none`` for the empty list (e.g. no attention at all)."""
    if text.strip().lower() in NONE_WORDS:
        return ()
    return positive_int_list(text)


def enum_choice(enum_cls: type[_E]) -> Callable[[str], _E]:
    """A type function mapping a member's value or name to the member of ``enum_cls``.

    Rules of :func:`ddx.utils.checks.parse_enum`: case-insensitive, '-' and '_' alike, so the
    official ``loss-second-moment`` and ``loss_second_moment`` both parse. The message on a bad value
    lists the valid values.
    """

    def parse(text: str) -> _E:
        try:
            return parse_enum(enum_cls, text, enum_cls.__name__)
        except ValueError:
            raise FlagValueError(f"invalid {enum_cls.__name__} {text!r}; choose from: {enum_values(enum_cls)}"
                                 ) from None

    parse.__name__ = enum_cls.__name__
    return parse


def flag(dest: str) -> str:
    """The command-line spelling of a namespace attribute: ``batch_size`` -> ``--batch_size``."""
    return "--" + dest


def given_dests(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The attribute names of the flags given in ``argv`` (not those filled in from defaults or a preset).

    ``argv`` must already parse (call after ``parser.parse_args(argv)``); the parser's defaults are left as
    they were.
    """
    saved = [(action, action.default) for action in parser._actions]
    saved_defaults = dict(parser._defaults)
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        namespace, _ = parser.parse_known_args(list(argv))
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults.update(saved_defaults)
    return set(vars(namespace))


def preset_sources(preset: str | None, defaults: Mapping[str, object], given: set[str]) -> dict[str, str]:
    """``{dest: "from --preset NAME"}`` for the preset's values that no explicit flag overrode."""
    if preset is None:
        return {}
    return {dest: f"from --preset {preset}" for dest in defaults if dest not in given}


class FlagChecks:
    """Collect cross-flag constraint failures, then report them all at once.

    >>> checks = FlagChecks(args)
    >>> checks.require(args.batch_size % args.world_size == 0, ["batch_size"], "must divide by the world size")
    >>> checks.at_most("ema_start", "num_steps")
    >>> checks.report(parser)   # parser.error(...) exits with status 2; without a parser: ValueError
    """

    def __init__(self, args: argparse.Namespace, sources: Mapping[str, str] | None = None):
        """``sources`` maps a flag's attribute name to where its value came from when the user did not give
        it (e.g. ``{"data_length": "from --preset stacked_digits"}``), shown after the value in messages."""
        self.args = args
        self.sources = dict(sources or {})
        self.errors: list[str] = []

    def _shown(self, dest: str) -> str:
        value = self._value(dest)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, list):  # nargs flags parse to lists, a preset's values are tuples: show them alike
            value = tuple(value)
        shown = f"{flag(dest)}={value!r}"
        return f"{shown} ({self.sources[dest]})" if dest in self.sources else shown

    def _value(self, dest: str) -> object:
        if not hasattr(self.args, dest):
            raise AttributeError(f"the parsed arguments have no flag {flag(dest)}")
        return getattr(self.args, dest)

    def require(self, condition: bool, flags: list[str] | tuple[str, ...], message: str) -> None:
        """Record ``message`` for ``flags`` (namespace attribute names) unless ``condition`` holds.

        Every name in ``flags`` must exist, whether or not the condition holds, so a misspelt name
        fails on the first run instead of only when the check fails.
        """
        values = ", ".join(self._shown(d) for d in flags)
        if not condition:
            self.errors.append(f"{values}: {message}")

    def at_most(self, small: str, large: str) -> None:
        """Require ``args.small <= args.large``."""
        self.require(self._value(small) <= self._value(large), [small, large],
                     f"{flag(small)} must not exceed {flag(large)}")

    def divides(self, divisor: str, dividend: str) -> None:
        """Require ``args.dividend % args.divisor == 0``."""
        self.require(self._value(dividend) % self._value(divisor) == 0, [divisor, dividend],
                     f"{flag(dividend)} must be a multiple of {flag(divisor)}")

    def exclusive(self, *dests: str) -> None:
        """Require at most one of the flags to be set (not None/False)."""
        given = [d for d in dests if self._value(d) not in (None, False)]
        self.require(len(given) <= 1, given, "only one of " + ", ".join(map(flag, dests)) + " may be given")

    def requires(self, dest: str, needed: str) -> None:
        """Require ``needed`` to be set whenever ``dest`` is set."""
        is_set = self._value(dest) not in (None, False)
        self.require(not is_set or self._value(needed) not in (None, False), [dest, needed],
                     f"{flag(dest)} needs {flag(needed)}")

    def report(self, parser: argparse.ArgumentParser | None = None) -> None:
        """Exit through ``parser.error`` (or raise ValueError) listing every failed check."""
        if not self.errors:
            return
        message = "; ".join(self.errors)
        if parser is not None:
            parser.error(message)
        raise ValueError(message)
