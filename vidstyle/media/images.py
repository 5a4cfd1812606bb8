"""Still images: style images in, previews and contact sheets out.

Style images arrive in every shape a user's folder holds (grayscale scans, RGBA PNGs, CMYK JPEGs,
phone photos with an EXIF orientation, 16-bit TIFFs); they all become upright RGB uint8 here so
nothing downstream branches on image modes. Outputs are written atomically (`vidstyle.fileio`),
sizes and resizing follow `vidstyle.geometry`, float pixels round like every other output
(`vidstyle.tensors.to_uint8`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from vidstyle.errors import ConfigError, InputError, OutputError
from vidstyle.fileio import atomic_path
from vidstyle.geometry import fit_long_side, image_size, resize_image
from vidstyle.media.errors import reason
from vidstyle.media.paths import PathLike, output_folder
from vidstyle.tensors import to_uint8

_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_QUALITY_FORMATS = ("JPEG", "WEBP")


def load_image(path: PathLike, long_side: int | None = None) -> np.ndarray:
    """Upright RGB uint8 HxWx3 (EXIF orientation applied, alpha composited on white)."""
    name = str(path)
    if not os.path.exists(path):
        raise InputError(f"cannot read image {name}: no such file")
    if os.path.isdir(path):
        raise InputError(f"cannot read image {name}: it is a directory")
    try:
        with Image.open(path) as im:
            im.load()
            rgb = _to_rgb(ImageOps.exif_transpose(im) or im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read image {name}: {reason(exc)}") from exc
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"cannot read image {name}: it is empty")
    return resize_long_side(rgb, long_side) if long_side else rgb


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Every PIL mode to RGB uint8; wide modes are scaled, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def resize_long_side(img: np.ndarray, long_side: int | None) -> np.ndarray:
    """Scale so the longer side is `long_side` px, keeping aspect (area filter when shrinking)."""
    if long_side is None:
        return img
    if int(long_side) != long_side or long_side < 1:
        raise ConfigError(f"long side must be a whole number of pixels >= 1, got {long_side}")
    return resize_image(img, *fit_long_side(*image_size(img), long_side))


def save_image(path: PathLike, img: np.ndarray, quality: int = 95) -> Path:
    """Write RGB(A)/gray uint8 or [0, 1] float to PNG/JPEG/... (by extension), atomically.

    The folder must exist (a typo in `-o` should fail, not create folders); the format comes from
    the target's extension because the temporary file's name does not keep it.
    """
    out = Path(path)
    fmt = _SAVE_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise OutputError(f"cannot write {out}: unknown image format '{out.suffix}' (use .png or .jpg)")
    folder = output_folder(out)
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist (for {out})")
    pil = Image.fromarray(_pixels(img))
    if fmt == "JPEG" and pil.mode not in ("RGB", "L"):
        pil = pil.convert("RGB")
    options = {"quality": quality} if fmt in _QUALITY_FORMATS else {}
    with atomic_path(out, what="image") as temporary:
        pil.save(temporary, format=fmt, **options)
    return out


def _pixels(img: np.ndarray) -> np.ndarray:
    """C-contiguous uint8: uint8 as is, [0, 1] floats (what the stylizers produce) rounded (ties to even)."""
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got {img.dtype}")
    return np.ascontiguousarray(to_uint8(img))


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    pad: int = 4,
    labels: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    background: tuple[int, int, int] = (24, 24, 24),
    text_color: tuple[int, int, int] = (230, 230, 230),
) -> np.ndarray:
    """A grid: each inner list is one row (e.g. originals above stylized), cells centred.

    `labels` are drawn in a left column, one per row; `captions` (per cell, e.g. frame numbers)
    in a strip under each cell. Cells may differ in size; each column is as wide as its widest.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("contact_sheet needs at least one image")
    font = ImageFont.load_default()
    n_cols = max(len(r) for r in rows)
    col_w = [max((r[c].shape[1] for r in rows if c < len(r)), default=0) for c in range(n_cols)]
    row_h = [max(img.shape[0] for img in r) if r else 0 for r in rows]
    cap_h = 14 if captions else 0
    label_w = 0
    if labels:
        label_w = max(_text_width(font, t) for t in labels) + 2 * pad
    width = label_w + sum(col_w) + pad * (n_cols + 1)
    height = sum(h + cap_h for h in row_h) + pad * (len(rows) + 1)
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = background
    y = pad
    texts: list[tuple[int, int, str]] = []
    for r, row in enumerate(rows):
        x = label_w + pad
        for c, img in enumerate(row):
            cell = _as_rgb(img)
            oy = y + (row_h[r] - cell.shape[0]) // 2
            ox = x + (col_w[c] - cell.shape[1]) // 2
            sheet[oy : oy + cell.shape[0], ox : ox + cell.shape[1]] = cell
            if captions and r < len(captions) and c < len(captions[r]):
                texts.append((x, y + row_h[r] + 1, captions[r][c]))
            x += col_w[c] + pad
        if labels and r < len(labels):
            texts.append((pad, y + row_h[r] // 2 - 6, labels[r]))
        y += row_h[r] + cap_h + pad
    if texts:
        pil = Image.fromarray(sheet)
        draw = ImageDraw.Draw(pil)
        for tx, ty, text in texts:
            draw.text((tx, ty), text, fill=text_color, font=font)
        sheet = np.asarray(pil).copy()
    return sheet


def _as_rgb(img: np.ndarray) -> np.ndarray:
    img = _pixels(img)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def _text_width(font: ImageFont.ImageFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)
