"""argparse type functions and cross-flag checks give messages that name the flag and the problem."""

import argparse
import enum

import pytest

from ddx.cli import (
    FlagChecks,
    FlagValueError,
    enum_choice,
    existing_dir,
    existing_file,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    probability,
)
from ddx.cli.validators import given_dests, positive_int_list_or_none, preset_sources
from ddx.diffusion import ScheduleSamplerName


class Schedule(enum.Enum):
    LINEAR = "linear"
    COSINE = "cosine"


@pytest.mark.parametrize("fn, text, value", [
    (positive_int, "3", 3), (non_negative_int, "0", 0), (positive_float, "2e-4", 2e-4),
    (non_negative_float, "0", 0.0), (probability, "1", 1.0), (probability, "0.25", 0.25),
    (int_list, "1, 2,2", (1, 2, 2)), (int_list, "-1", (-1,)), (positive_int_list, "4,8", (4, 8)),
    (enum_choice(Schedule), "cosine", Schedule.COSINE), (enum_choice(Schedule), "LINEAR", Schedule.LINEAR),
], ids=lambda v: getattr(v, "__name__", None) or repr(v))
def test_valid_values(fn, text, value):
    assert fn(text) == value


@pytest.mark.parametrize("fn, text, message", [
    (positive_int, "0", "expected a positive integer, got 0"),
    (positive_int, "1.5", "expected an integer, got '1.5'"),
    (non_negative_int, "-2", "expected a non-negative integer, got -2"),
    (positive_float, "0", "expected a positive number, got 0"),
    (non_negative_float, "-1e-3", "expected a non-negative number, got -0.001"),
    (non_negative_float, "nan", "expected a finite number, got 'nan'"),
    (probability, "1.5", r"expected a probability in \[0, 1\], got 1.5"),
    (probability, "x", "expected a number, got 'x'"),
    (int_list, "1,,2", "expected comma-separated integers like '1,2,2', got '1,,2'"),
    (int_list, "1,a", "'a' in '1,a' is not one"),
    (positive_int_list, "1,0,-3", "expected positive integers, got 0, -3 in '1,0,-3'"),
    (enum_choice(Schedule), "quad", "invalid Schedule 'quad'; choose from: linear, cosine"),
], ids=lambda v: getattr(v, "__name__", None) or repr(v))
def test_invalid_values(fn, text, message):
    with pytest.raises(FlagValueError, match=message):
        fn(text)


def test_flag_errors_are_value_errors_too():
    with pytest.raises(ValueError):
        positive_int("0")


def test_paths(tmp_path):
    file = tmp_path / "w.pt"
    file.write_bytes(b"")
    assert existing_file(str(file)) == file and existing_dir(str(tmp_path)) == tmp_path
    with pytest.raises(FlagValueError, match="file not found: .*missing.pt"):
        existing_file(str(tmp_path / "missing.pt"))
    with pytest.raises(FlagValueError, match="not a regular file"):
        existing_file(str(tmp_path))
    with pytest.raises(FlagValueError, match="not a directory"):
        existing_dir(str(file))
    with pytest.raises(FlagValueError, match="directory not found"):
        existing_dir(str(tmp_path / "nope"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py")
    parser.add_argument("--batch_size", type=positive_int, default=8)
    parser.add_argument("--schedule", type=enum_choice(Schedule), default=Schedule.COSINE)
    parser.add_argument("--ema_start", type=non_negative_int, default=0)
    parser.add_argument("--num_steps", type=positive_int, default=10)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--fresh", action="store_true")
    return parser


def test_argparse_shows_the_message_with_the_flag(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--schedule", "quad"])
    assert "argument --schedule: invalid Schedule 'quad'; choose from: linear, cosine" in capsys.readouterr().err


def test_cross_flag_checks_name_every_flag(capsys):
    parser = _parser()
    args = parser.parse_args(["--batch_size", "6", "--ema_start", "20", "--resume", "x", "--fresh"])
    checks = FlagChecks(args)
    checks.at_most("ema_start", "num_steps")
    checks.divides("batch_size", "num_steps")
    checks.exclusive("resume", "fresh")
    checks.require(args.batch_size % 4 == 0, ["batch_size"], "must be a multiple of 4 (the world size)")
    with pytest.raises(SystemExit):
        checks.report(parser)
    err = capsys.readouterr().err
    assert "--ema_start=20, --num_steps=10: --ema_start must not exceed --num_steps" in err
    assert "--batch_size=6, --num_steps=10: --num_steps must be a multiple of --batch_size" in err
    assert "--resume='x', --fresh=True: only one of --resume, --fresh may be given" in err
    assert "--batch_size=6: must be a multiple of 4 (the world size)" in err


def test_cross_flag_checks_pass_and_raise_without_parser():
    args = _parser().parse_args([])
    checks = FlagChecks(args)
    checks.at_most("ema_start", "num_steps")
    checks.requires("resume", "batch_size")
    checks.report()
    checks.requires("fresh", "resume")
    checks.require(False, ["num_steps"], "bad")
    with pytest.raises(ValueError, match="--num_steps=10: bad"):
        checks.report()
    with pytest.raises(AttributeError, match="no flag --nope"):
        checks.at_most("nope", "num_steps")


def test_require_checks_flag_names_even_when_the_condition_holds():
    checks = FlagChecks(_parser().parse_args([]))
    with pytest.raises(AttributeError, match="no flag --batchsize"):
        checks.require(True, ["batchsize"], "never shown")
    assert checks.errors == []


@pytest.mark.parametrize("text", ["loss-second-moment", "loss_second_moment", "LOSS-SECOND-MOMENT", " Uniform "])
def test_enum_choice_takes_official_values_and_names(text):
    member = enum_choice(ScheduleSamplerName)(text)
    assert member is ScheduleSamplerName(text.strip().lower().replace("_", "-"))


def test_enum_choice_lists_the_official_values():
    with pytest.raises(FlagValueError, match="invalid ScheduleSamplerName 'importance'; choose from: uniform, "
                                             "loss-second-moment"):
        enum_choice(ScheduleSamplerName)("importance")


def test_given_dests_are_the_flags_on_the_command_line_not_the_defaults():
    parser = _parser()
    parser.set_defaults(num_steps=99, extra="preset only")
    argv = ["--batch_size", "6", "--fresh", "--schedule=linear"]
    assert given_dests(parser, argv) == {"batch_size", "fresh", "schedule"}
    assert vars(parser.parse_args([]))["num_steps"] == 99 and parser.get_default("extra") == "preset only"


def test_messages_say_which_values_came_from_the_preset(capsys):
    parser = _parser()
    parser.set_defaults(num_steps=4, schedule=Schedule.LINEAR, ema_start=1)  # as a preset installs them
    argv = ["--ema_start", "5"]
    args = parser.parse_args(argv)
    checks = FlagChecks(args, preset_sources("small", {"num_steps": 4, "schedule": Schedule.LINEAR, "ema_start": 1},
                                             given_dests(parser, argv)))
    checks.at_most("ema_start", "num_steps")
    checks.require(False, ["schedule"], "shown by value")
    with pytest.raises(ValueError) as err:
        checks.report()
    assert str(err.value) == ("--ema_start=5, --num_steps=4 (from --preset small): --ema_start must not exceed "
                              "--num_steps; --schedule='linear' (from --preset small): shown by value")


@pytest.mark.parametrize("text, value", [("", ()), (" none ", ()), ("16,8", (16, 8))])
def test_resolution_lists_may_be_empty(text, value):
    assert positive_int_list_or_none(text) == value
    with pytest.raises(FlagValueError, match="expected positive integers"):
        positive_int_list_or_none("16,0")
