"""Generic helpers that are not specific to diffusion: atomic file writes, argument checks, progress."""
