"""Running train.py / sample.py in-process and checking how a user error ends.

A user error must end with exit code 2 (bad usage) or 1 (failure at run time) and a message on stderr
that names the problem, never a traceback. ``dispatch`` re-raises anything that is not a user error,
so a case that would print a traceback fails the test with that traceback.
"""

from __future__ import annotations

import pytest

from ddx.cli.entry import dispatch


def run_cli(kind: str, argv: list[str]) -> int:
    """dispatch(kind, argv), with argparse's SystemExit turned into its exit code."""
    try:
        return dispatch(kind, [str(a) for a in argv])
    except SystemExit as exit_:
        return int(exit_.code or 0)


def expect_user_error(capsys: pytest.CaptureFixture, kind: str, argv: list, code: int, *fragments: str) -> str:
    """Run the command; assert the exit code, no traceback, and every fragment in stderr; returns stderr."""
    rc = run_cli(kind, argv)
    captured = capsys.readouterr()
    assert rc == code, f"exit {rc}, expected {code}; stderr:\n{captured.err}\nstdout:\n{captured.out}"
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err, f"{fragment!r} not in stderr:\n{captured.err}"
    return captured.err
