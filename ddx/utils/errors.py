"""The one base class of the errors a user can cause and fix (bad input, missing or corrupt files).

The command-line entry (:mod:`ddx.cli.entry`) prints such an error as ``error: <message>`` and exits
with its ``exit_code`` (2 for bad usage, 1 for a failure at run time), without a traceback unless
``--debug`` or ``DDX_DEBUG=1`` asks for one. Library errors that users cause derive from
:class:`UserError` as well as from the builtin class callers already catch (``ValueError``,
``RuntimeError``, ``FileNotFoundError``), so the library's contract does not change.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; its message names the problem and the fix."""

    exit_code = 1


class UsageError(UserError, ValueError):
    """Bad usage: a flag, a value or a combination that cannot run (exit code 2)."""

    exit_code = 2


class DataError(UserError, ValueError):
    """A data set is missing, empty, unreadable or unsafe to read."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable, or holds objects that ``weights_only`` loading refuses."""
