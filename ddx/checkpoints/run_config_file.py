"""Reading a run's config.json back: a JSON object, or a CheckpointError naming the file and the fix.

Kept out of ddx.train (which writes the file, ddx.train.rundir.RunDir) so that the samplers may read a
run without importing the trainers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ddx.utils.errors import CheckpointError

CONFIG_FILE = "config.json"


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """A run's config.json as a dict; CheckpointError naming the file when it is not a JSON object."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"the run's {path} cannot be read ({err}): restore it from a copy, or give the "
                              f"model flags and the checkpoint file instead of the run directory") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"the run's {path} is not a JSON object: restore it from a copy")
    return config
