"""Re-export of ddx.checkpoints.io, the home of checkpoint file I/O, for callers that still import it here.

New code imports ddx.checkpoints.io (sample/, eval/, data/ and checkpoints/ must: they sit beside or
below train/).
"""

from ddx.checkpoints.io import (  # noqa: F401
    CHECKPOINT_FORMAT,
    CheckpointError,
    CheckpointManager,
    UnsafeCheckpointError,
    atomic_save,
    checkpoint_fingerprint,
    checkpoint_name,
    checkpoint_problem,
    load_checkpoint,
    read_checkpoint_bytes,
    warn_skipped,
)
