"""Spatial control (seed 004): its settings, the temporal smoothing of segmentations, a still's mask."""
