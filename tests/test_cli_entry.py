"""train.py / sample.py dispatch: unknown models and missing arguments get a clear message."""

from ddx.cli.entry import dispatch


def test_unknown_model_is_named(capsys):
    assert dispatch("train", ["gan9000"]) == 2
    out = capsys.readouterr().err
    assert "unknown model 'gan9000'" in out and "iddpm" in out and "ddgan" in out


def test_no_model_prints_usage(capsys):
    assert dispatch("sample", []) == 2
    assert "usage: python sample.py" in capsys.readouterr().out


class _Failing:
    """A stand-in command module whose main raises the given error."""

    def __init__(self, error):
        self.error = error

    def main(self, flags):
        raise self.error


def _with_command(monkeypatch, error):
    import ddx.cli.entry as entry

    monkeypatch.setattr(entry.importlib, "import_module", lambda name: _Failing(error))


def test_user_error_is_one_message_and_exit_code(monkeypatch, capsys):
    from ddx.utils.errors import UsageError, UserError

    _with_command(monkeypatch, UserError("the file x is corrupt: write it again"))
    assert dispatch("train", ["ddgan"]) == 1
    err = capsys.readouterr().err
    assert "error: the file x is corrupt: write it again" in err and "Traceback" not in err
    _with_command(monkeypatch, UsageError("bad flag"))
    assert dispatch("train", ["ddgan"]) == 2


def test_disk_full_and_out_of_memory_are_explained(monkeypatch, capsys):
    import errno

    _with_command(monkeypatch, OSError(errno.ENOSPC, "No space left on device", "runs/x/ckpt.pt"))
    assert dispatch("train", ["ddgan"]) == 1
    assert "disk is full writing runs/x/ckpt.pt" in capsys.readouterr().err
    _with_command(monkeypatch, MemoryError("tried to allocate 40 GB"))
    assert dispatch("train", ["ddgan"]) == 1
    assert "out of memory: tried to allocate 40 GB" in capsys.readouterr().err


def test_debug_switch_shows_the_traceback(monkeypatch):
    import pytest

    from ddx.utils.errors import UserError

    _with_command(monkeypatch, UserError("boom"))
    with pytest.raises(UserError, match="boom"):
        dispatch("train", ["ddgan", "--debug"])
    monkeypatch.setenv("DDX_DEBUG", "1")
    with pytest.raises(UserError, match="boom"):
        dispatch("train", ["ddgan"])


def test_a_bug_is_not_hidden(monkeypatch):
    import pytest

    _with_command(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        dispatch("train", ["ddgan"])
