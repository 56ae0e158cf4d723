"""--profile_window reaches the training loop's profiler window and is validated, in both families."""

import pytest

from ddx.cli import train_ddgan, train_iddpm
from ddx.train.ddgan_setup import loop_config as ddgan_loop_config


def test_ddgan_profile_window_reaches_the_loop_config():
    config = train_ddgan.parse_args(["--preset", "toy25", "--profile_window", "50", "20"])
    assert config.loop.profile_window == (50, 20)
    loop = ddgan_loop_config(config)
    assert (loop.profile_start, loop.profile_steps) == (50, 20)
    assert ddgan_loop_config(train_ddgan.parse_args(["--preset", "toy25"])).profile_start is None


def test_iddpm_profile_window_reaches_the_loop_config():
    config = train_iddpm.parse_args(["--preset", "digits", "--outdir", "runs/x", "--profile_window", "5", "3"])
    assert config.run.profile_window == (5, 3)
    loop = config.loop_config()
    assert (loop.profile_start, loop.profile_steps) == (5, 3)
    assert train_iddpm.parse_args(["--preset", "digits"]).loop_config().profile_start is None


@pytest.mark.parametrize("parse, argv", [(train_ddgan.parse_args, ["--preset", "toy25"]),
                                         (train_iddpm.parse_args, ["--preset", "digits"])], ids=["ddgan", "iddpm"])
def test_negative_profile_window_is_refused(parse, argv, capsys):
    with pytest.raises(SystemExit):
        parse(argv + ["--profile_window", "5", "-3"])
    assert "argument --profile_window: expected a non-negative integer" in capsys.readouterr().err
