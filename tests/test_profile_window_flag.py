"""--profile_window reaches the training loop's profiler window and is validated."""

import pytest

from ddx.cli import train_ddgan, train_iddpm
from ddx.cli.profile_window import profile_window_kwargs


def test_ddgan_profile_window_parses_into_loop_kwargs():
    args = train_ddgan.parse_args(["--preset", "toy25", "--profile_window", "50", "20"])
    assert profile_window_kwargs(args) == dict(profile_start=50, profile_steps=20)
    assert profile_window_kwargs(train_ddgan.parse_args(["--preset", "toy25"])) == {}


def test_iddpm_profile_window_parses_into_loop_kwargs():
    args = train_iddpm.parse_args(["--preset", "digits", "--outdir", "runs/x", "--profile_window", "5", "3"])
    assert profile_window_kwargs(args) == dict(profile_start=5, profile_steps=3)


def test_negative_profile_window_is_refused(capsys):
    with pytest.raises(SystemExit):
        train_ddgan.parse_args(["--preset", "toy25", "--profile_window", "-1", "3"])
    assert "--profile_window" in capsys.readouterr().err
