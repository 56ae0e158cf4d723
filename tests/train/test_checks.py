"""ddx.utils.checks: one positive-int rule and one enum-parsing rule for the whole library."""

import enum

import numpy as np
import pytest

from ddx.data import DatasetName, Split
from ddx.diffusion import ScheduleSamplerName
from ddx.utils.checks import check_non_negative_int, check_positive_int, parse_enum


class Mode(enum.Enum):
    FAST_PATH = "fast-path"
    SLOW = "slow"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)], ids=["one", "seven", "np-int64", "np-int32"])
def test_positive_ints_pass_as_python_ints(value):
    out = check_positive_int(value, "n")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, error", [
    (0, ValueError), (-2, ValueError), (1.0, TypeError), (True, TypeError), ("3", TypeError), (None, TypeError),
], ids=["zero", "negative", "float", "bool", "str", "none-not-optional"])
def test_bad_values_name_the_argument(value, error):
    with pytest.raises(error, match=rf"batch_size must be a positive int, got {value!r}$"):
        check_positive_int(value, "batch_size")


def test_optional_allows_none_and_says_so():
    assert check_positive_int(None, "save_interval", optional=True) is None
    with pytest.raises(ValueError, match=r"save_interval must be a positive int or None, got 0"):
        check_positive_int(0, "save_interval", optional=True)


@pytest.mark.parametrize("value, member", [
    (ScheduleSamplerName.UNIFORM, ScheduleSamplerName.UNIFORM),
    ("loss-second-moment", ScheduleSamplerName.LOSS_SECOND_MOMENT),
    ("LOSS_SECOND_MOMENT", ScheduleSamplerName.LOSS_SECOND_MOMENT),
    ("Loss_Second-Moment", ScheduleSamplerName.LOSS_SECOND_MOMENT),
    (" uniform ", ScheduleSamplerName.UNIFORM),
], ids=["member", "official-value", "name", "mixed", "spaces"])
def test_parse_enum_accepts_member_value_or_name(value, member):
    assert parse_enum(ScheduleSamplerName, value, "schedule sampler") is member


def test_parse_enum_on_str_and_int_enums():
    assert parse_enum(Split, "HELDOUT", "split") is Split.HELDOUT
    assert parse_enum(DatasetName, "stacked-digits", "dataset name") is DatasetName.STACKED_DIGITS
    assert parse_enum(Mode, "fast_path", "mode") is Mode.FAST_PATH
    assert parse_enum(Level, 2, "level") is Level.HIGH and parse_enum(Level, "high", "level") is Level.HIGH


@pytest.mark.parametrize("value", ["importance", "", 3, True, None], ids=["word", "empty", "int", "bool", "none"])
def test_parse_enum_error_lists_the_values(value):
    with pytest.raises(ValueError, match=rf"unknown schedule sampler {value!r}; expected one of 'uniform', "
                                         r"'loss-second-moment'$"):
        parse_enum(ScheduleSamplerName, value, "schedule sampler")


@pytest.mark.parametrize("value", [0, 7, np.int64(3)])
def test_check_non_negative_int_accepts_integers_from_zero(value):
    assert check_non_negative_int(value, "seed") == int(value)


@pytest.mark.parametrize("value", [-1, True, 1.0, "3", None])
def test_check_non_negative_int_names_the_value(value):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got"):
        check_non_negative_int(value, "seed")
