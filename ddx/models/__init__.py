"""Backbones: tensors to tensors, knowing nothing of betas."""
