"""Generic helpers that are not specific to diffusion (progress display, ...)."""
