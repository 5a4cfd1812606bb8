"""Spatial control (seed 004): region masks from files or a segmentation network."""
