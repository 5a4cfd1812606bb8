"""`vidstyle eval`: how stable, how far from the original, and how the seams compare, for a stylized video.

Reads the stylized video's JSON sidecar (when present) for the frame range it covers and for which
frame pairs cross a chunk seam or a shot cut; cut pairs are left out of E_warp and of the seam ratio
(no flow links them). The seam ratio itself is `metrics.seam_ratio`, the one definition.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidstyle.errors import InputError
from vidstyle.geometry import image_size, resize_image
from vidstyle.metrics import color_kl, psnr, seam_ratio, ssim, warp_error

MAX_QUALITY_FRAMES = 48  # KL / PSNR / SSIM on an even sample of frames: cheap and representative


def _sidecar(stylized: str) -> dict[str, Any] | None:
    path = stylized + ".json"
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SeamStats:
    """What the report says about seams: `ratio` is None when there is nothing to compare."""

    seam_mean: float | None
    interior_median: float
    ratio: float | None


def seam_statistics(per_pair: Sequence[float], seam_pairs: Sequence[int], cut_pairs: Collection[int]) -> SeamStats:
    """Seam ratio over the pairs no shot cut separates (cut pairs are dropped, the rest renumbered)."""
    kept = [i for i in range(len(per_pair)) if i not in cut_pairs]
    errors = [float(per_pair[i]) for i in kept]
    position = {pair: k for k, pair in enumerate(kept)}
    seams = sorted({position[p] for p in seam_pairs if p in position})
    interior = [e for k, e in enumerate(errors) if k not in seams]
    ratio = seam_ratio(errors, seams) if seams and interior else None
    return SeamStats(
        seam_mean=float(np.mean([errors[k] for k in seams])) if seams else None,
        interior_median=float(np.median(interior)) if interior else math.nan,
        ratio=ratio if ratio is not None and math.isfinite(ratio) else None,
    )


def evaluate_video(original: str, stylized: str) -> dict[str, Any]:
    from vidstyle.media.probe import probe
    from vidstyle.media.reader import read_frames

    info_original, info_stylized = probe(original), probe(stylized)
    sidecar = _sidecar(stylized)
    if sidecar is not None:
        first, last = sidecar["range"]
    else:
        first, last = 0, info_stylized.frames
    if last - first != info_stylized.frames:
        raise InputError(
            f"{stylized} has {info_stylized.frames} frames but covers {last - first} frames of {original}; "
            "is the sidecar from another run?"
        )
    if last > info_original.frames:
        raise InputError(f"{stylized} has more frames ({last - first}) than {original} ({info_original.frames})")
    size = (info_stylized.display_width, info_stylized.display_height)
    long_side = max(size)

    def originals():
        return read_frames(original, first, last, long_side=long_side)

    def outputs():
        return read_frames(stylized, 0, last - first)

    warp = warp_error(originals(), outputs(), size=size)
    cut_pairs = set(sidecar.get("cut_pairs", [])) if sidecar else set()
    seam_pairs = [p for p in (sidecar.get("seam_pairs", []) if sidecar else []) if p not in cut_pairs]
    usable = [e for i, e in enumerate(warp.per_pair) if i not in cut_pairs]
    seams = seam_statistics(warp.per_pair, seam_pairs, cut_pairs)

    step = max(1, (last - first) // MAX_QUALITY_FRAMES)
    kls, psnrs, ssims = [], [], []
    for i, (a, b) in enumerate(zip(originals(), outputs())):
        if i % step:
            continue
        if a.shape != b.shape:
            a = resize_image(a, *image_size(b))
        kls.append(color_kl(b, a))
        psnrs.append(psnr(a, b))
        ssims.append(ssim(a, b))
    kl = np.mean(np.stack(kls), axis=0) if kls else np.full(3, math.nan)
    return {
        "original": original,
        "stylized": stylized,
        "range": [first, last],
        "pairs": len(warp.per_pair),
        "e_warp": float(np.mean(usable)) if usable else math.nan,
        "e_warp_per_pair": [float(e) for e in warp.per_pair],
        "cut_pairs": sorted(cut_pairs),
        "seam_pairs": seam_pairs,
        "seam_e_warp": seams.seam_mean,
        "interior_median_e_warp": seams.interior_median,
        "seam_ratio": seams.ratio,
        "color_kl": {"r": float(kl[0]), "g": float(kl[1]), "b": float(kl[2]), "mean": float(np.mean(kl))},
        "psnr": float(np.mean([p for p in psnrs if math.isfinite(p)])) if psnrs else math.nan,
        "ssim": float(np.mean(ssims)) if ssims else math.nan,
        "sidecar": sidecar is not None,
    }


def format_report(report: dict[str, Any]) -> str:
    seam = report["seam_ratio"]
    lines = [
        f"frames {report['range'][0]}:{report['range'][1]} ({report['pairs']} pairs)",
        f"E_warp (mean over visible pixels, RGB [0,1]): {report['e_warp']:.6f}",
        f"seam pairs: {len(report['seam_pairs'])}; seam/interior-median ratio: "
        + ("n/a" if seam is None else f"{seam:.3f}"),
        f"colour-histogram KL (stylized || original): mean {report['color_kl']['mean']:.4f} "
        f"(R {report['color_kl']['r']:.4f}, G {report['color_kl']['g']:.4f}, B {report['color_kl']['b']:.4f})",
        f"PSNR to original: {report['psnr']:.2f} dB; SSIM: {report['ssim']:.4f}",
    ]
    if not report["sidecar"]:
        lines.append("(no sidecar JSON: whole video compared from frame 0, no seam information)")
    return "\n".join(lines)
