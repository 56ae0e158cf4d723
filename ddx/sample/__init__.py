"""Sampling from trained models and writing the results (grids, lossless PNGs, npz, scatter plots)."""
