"""train.py / sample.py dispatch: unknown models and missing arguments get a clear message."""

from ddx.cli.entry import dispatch


def test_unknown_model_is_named(capsys):
    assert dispatch("train", ["gan9000"]) == 2
    out = capsys.readouterr().out
    assert "unknown model 'gan9000'" in out and "iddpm" in out and "ddgan" in out


def test_no_model_prints_usage(capsys):
    assert dispatch("sample", []) == 2
    assert "usage: python sample.py" in capsys.readouterr().out
