"""Command-line helpers shared by train.py and sample.py: argparse types and cross-flag checks."""

from ddx.cli.validators import (
    FlagChecks,
    FlagValueError,
    enum_choice,
    existing_dir,
    existing_file,
    flag,
    int_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    probability,
)

__all__ = [
    "FlagChecks", "FlagValueError", "enum_choice", "existing_dir", "existing_file", "flag", "int_list",
    "non_negative_float", "non_negative_int", "positive_float", "positive_int", "positive_int_list",
    "probability",
]
