"""Argument checks shared across ddx: positive ints and enum parsing, with messages naming the problem."""

from __future__ import annotations

import enum
import numbers
from typing import Any, TypeVar

_E = TypeVar("_E", bound=enum.Enum)


def check_positive_int(value: Any, name: str, optional: bool = False) -> int | None:
    """``value`` as an int if it is an integer > 0 (None too when ``optional``).

    Python and numpy integers qualify; bools do not. TypeError for another type, ValueError for a
    value <= 0; both messages read "<name> must be a positive int[ or None], got <value>".
    """
    if value is None and optional:
        return None
    message = f"{name} must be a positive int{' or None' if optional else ''}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if value <= 0:
        raise ValueError(message)
    return int(value)


def check_non_negative_int(value: Any, name: str) -> int:
    """``value`` as an int if it is an integer >= 0 (bools are not); ValueError "<name> must be a non-negative
    int, got <value>" otherwise (a seed, a step index)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _normalise(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def enum_values(enum_cls: type[enum.Enum]) -> str:
    """The members' values, comma-separated (for messages listing the choices)."""
    return ", ".join(str(member.value) for member in enum_cls)


def parse_enum(enum_cls: type[_E], value: Any, what: str) -> _E:
    """``value`` as a member of ``enum_cls``: the member itself, its value, or its name.

    Strings match case-insensitively, with '-' and '_' alike (``"loss-second-moment"``,
    ``"LOSS_SECOND_MOMENT"`` and ``"loss_second_moment"`` are one member); a value match wins over a
    name match; last, the enum's own ``_missing_`` (its aliases, e.g. Precision's "none"). ValueError naming
    ``what`` and listing the valid values otherwise.
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = _normalise(value)
        for attribute in ("value", "name"):
            for member in enum_cls:
                candidate = getattr(member, attribute)
                if isinstance(candidate, str) and _normalise(candidate) == key:
                    return member
    elif not isinstance(value, bool):
        for member in enum_cls:
            if member.value == value:
                return member
    try:
        return enum_cls(value)  # an enum's _missing_ may know aliases
    except (ValueError, TypeError):
        pass
    choices = ", ".join(repr(member.value) for member in enum_cls)
    raise ValueError(f"unknown {what} {value!r}; expected one of {choices}")
