"""Reading back what a test run saved: the newest ckpt_<step>.pt of a folder (a test-only helper; the
library resumes through ddx.train.run and samples through the weight owners in ddx.train)."""

from pathlib import Path
from typing import Any

from ddx.checkpoints.io import CheckpointManager, load_checkpoint


def load_latest(directory: str | Path) -> Any:
    """The newest checkpoint in ``directory``, loaded with weights_only=True (CheckpointError as the library's)."""
    path = CheckpointManager(directory, keep_last=1, create=False).latest()
    assert path is not None, f"no checkpoint (ckpt_<step>.pt) in {directory}"
    return load_checkpoint(path)
