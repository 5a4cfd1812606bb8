"""The region mask of one picture (`vidstyle image` with --mask or --segment): no time, so no smoothing."""

from __future__ import annotations

import numpy as np

from vidstyle.regions.settings import RegionSettings


def still_mask(settings: RegionSettings, picture: np.ndarray, device: str = "auto") -> np.ndarray:
    """HxW float32 in [0, 1] at the picture's size: the mask file (a video's or folder's first frame), or segmented."""
    from vidstyle.media.masks import check_not_constant, feather, open_mask

    height, width = picture.shape[:2]
    if settings.mask is not None:
        source = open_mask(settings.mask)
        source.check(width, height, 0, 1)
        mask = next(source.frames(0, 1, width, height))
        check_not_constant([mask], f"mask {settings.mask}")
    else:
        from vidstyle.device import resolve_device
        from vidstyle.features.segmentation import Segmenter, load_segmentation_weights, segmentation_weights_path

        weights = load_segmentation_weights(segmentation_weights_path(settings.segment_weights))
        mask = Segmenter(settings.segment, weights, resolve_device(device)).probabilities(picture[None])[0]
        check_not_constant([mask], f"the --segment {','.join(settings.segment)} mask", option="--segment")
    return feather(mask, settings.mask_feather) if settings.mask_feather > 0 else mask
