"""Checkpoint files: generic I/O at the bottom of ddx, and the official layouts, one module per model.

- io: atomic writes, weights_only loading, the ckpt_<step>.pt folder (CheckpointManager), CHECKPOINT_FORMAT;
- state_dict: the DDP 'module.' prefix off and on; run_config_file: reading a run's config.json back;
  these import only torch and ddx.utils, so every layer may use them.
- identify, ddgan_official, iddpm_official: what a file is, and the official layouts both ways; they may
  read ddx.models for key names but never ddx.train, ddx.sample or ddx.cli. Turning a ddx *trainer* state
  into weights is train/'s (ddx.train.ddgan_weights, ddx.train.iddpm_weights, ddx.train.ddgan_official_state).
"""
