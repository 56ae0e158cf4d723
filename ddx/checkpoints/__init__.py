"""Readers and writers of the official implementations' checkpoint layouts (one module per model)."""
