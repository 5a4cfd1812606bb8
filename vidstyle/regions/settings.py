"""Spatial-control settings (seed 004): where the mask comes from and what its black region gets.

One declaration per option, like every settings class (`config.setting`); the `[regions]` table of a
settings file holds the same keys. `--background-style` itself is a command-line choice like
`--style` (a path, or `keep`); a blend of several background styles is written in the settings file
as `background_style = ["a.jpg", "b.jpg"]` with `background_blend = [0.7, 0.3]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidstyle.config import Panel, check, setting

KEEP = "keep"  # a region that shows the input's own pixels; a file really named keep is given as ./keep


@dataclass(frozen=True)
class RegionSettings:
    """Where the region mask comes from (a file or a segmentation network) and the black region's style."""

    mask: str | None = setting(
        None,
        "Mask: an image (every frame), a video or a folder of images (frame k for frame k); "
        "white = --style, black = --background-style, grey = both in part.",
        Panel.REGIONS,
        metavar="PATH",
    )
    mask_feather: float = setting(
        0.0, "Soften the mask's edges (Gaussian blur, σ = PX/2).", Panel.REGIONS, metavar="PX"
    )
    segment: tuple[str, ...] = setting(
        (),
        "Mask from a segmentation network instead of a file: PASCAL VOC classes, comma separated (e.g. person,dog).",
        Panel.REGIONS,
        metavar="CLASS,...",
    )
    segment_weights: str | None = setting(
        None,
        "LRASPP MobileNetV3-Large VOC weights for --segment (default: torch's hub cache).",
        Panel.REGIONS,
        metavar="PATH",
    )
    background_style: tuple[str, ...] = setting(
        (),
        "Style(s) of the mask's black region, or keep (settings file; see --background-style).",
        Panel.REGIONS,
        cli=False,
    )
    background_blend: tuple[float, ...] = setting(
        (), "Blend weight of each background style (settings file).", Panel.REGIONS, cli=False
    )

    @property
    def active(self) -> bool:
        """Spatial control is on: a mask file or segmentation classes were given."""
        return self.mask is not None or bool(self.segment)

    @property
    def keep_outside(self) -> bool:
        return self.background_style == (KEEP,)

    def validate(self) -> RegionSettings:
        check(not (self.mask is not None and self.segment), "give --mask or --segment, not both")
        check(
            math.isfinite(self.mask_feather) and self.mask_feather >= 0,
            f"--mask-feather must be ≥ 0 px, got {self.mask_feather}",
        )
        if self.segment:
            from vidstyle.features.segmentation import parse_classes

            parse_classes(",".join(self.segment))
        if self.segment_weights is not None:
            check(bool(self.segment), "--segment-weights needs --segment")
        if not self.active:
            check(not self.background_style, "--background-style needs --mask or --segment (the region it styles)")
            check(self.mask_feather == 0, "--mask-feather needs --mask or --segment")
            return self
        check(
            bool(self.background_style),
            "--mask/--segment need --background-style IMAGE or keep for the mask's black region",
        )
        check(
            KEEP not in self.background_style or len(self.background_style) == 1,
            "--background-style keep cannot be blended with images",
        )
        if self.background_blend:
            check(
                len(self.background_blend) == len(self.background_style),
                f"{len(self.background_blend)} background_blend weight(s) for "
                f"{len(self.background_style)} background style(s): give one per style",
            )
        return self
