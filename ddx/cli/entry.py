"""The entry of train.py and sample.py: `<script> MODEL [flags]` runs that model's command module.

Errors a user can cause end as one or two lines, ``error: <what and how to fix it>``, and an exit code
(2 for bad usage, 1 for a failure at run time); ``--debug`` (anywhere on the command line) or
``DDX_DEBUG=1`` in the environment shows the traceback instead.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sys
from collections.abc import Sequence

from ddx.utils.errors import UserError

MODELS = ("iddpm", "ddgan")
DEBUG_FLAG = "--debug"
DEBUG_ENV = "DDX_DEBUG"
_TRUE = ("1", "true", "yes", "on", "y")


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in _TRUE


def user_message(err: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for an error the user can act on, or None for a bug (shown as a traceback)."""
    if isinstance(err, UserError):
        return str(err), err.exit_code
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or _cpu_allocation_failed(err):
        return (f"out of memory: {_allocation_detail(err)}. Use a smaller --batch_size (or a smaller model).", 1)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {err.filename}" if err.filename else ""
        return f"the disk is full{where}: free some space and run again (files written before are intact)", 1
    if isinstance(err, PermissionError) or (isinstance(err, OSError) and err.errno == errno.EROFS):
        return f"cannot write {err.filename or err} ({err.strerror or 'permission denied'}): choose a folder you can write to", 1
    if isinstance(err, (NotADirectoryError, FileExistsError)) and err.filename:
        return (f"{err.filename}: {err.strerror}: a file stands where a folder is needed; give another path "
                f"(e.g. --outdir)", 1)
    return None


def _cpu_allocation_failed(err: BaseException) -> bool:
    # torch's CPU allocator raises a plain RuntimeError, not MemoryError.
    return isinstance(err, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(err)


def _allocation_detail(err: BaseException) -> str:
    """What the failed allocation asked for, in GiB where torch says the byte count."""
    text = str(err).strip()
    asked = re.search(r"tried to allocate (\d+) bytes", text)
    if asked is not None:
        return f"tried to allocate {int(asked.group(1)) / 2**30:.1f} GiB ({asked.group(1)} bytes) in CPU memory"
    return text.splitlines()[0] if text else "the allocation failed"


def dispatch(kind: str, argv: Sequence[str]) -> int:
    """Run ddx.cli.<kind>_<model>.main(flags) for argv = [model, *flags]; returns the exit code."""
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    usage = f"usage: python {kind}.py {{{','.join(MODELS)}}} [flags]   (python {kind}.py MODEL --help for the flags)"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    model, flags = argv[0], argv[1:]
    if model not in MODELS:
        print(f"error: unknown model {model!r}; choose one of: {', '.join(MODELS)}\n{usage}", file=sys.stderr)
        return 2
    command = importlib.import_module(f"ddx.cli.{kind}_{model}")
    try:
        return command.main(flags) or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        handled = user_message(err)
        if debug or handled is None:
            raise
        message, code = handled
        print(f"error: {message}\n(run with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return code
