"""Generate the sample inputs in samples/: two clips (one with its region mask) and two style images.

    python scripts/make_samples.py [--out samples] [--only landscape|subject|ink|swirl]

Everything is procedural (numpy + OpenCV, fixed seeds), so the repository needs no downloaded
media and re-running gives the same pictures and sound:

- `landscape.mp4`: 3 s, 24 fps, 320x180 H.264 + stereo AAC. A golden-hour valley (sky with clouds,
  three mountain ranges from fractal noise, a forested shore, a lake reflecting it all with
  ripples, rocks and grass in front) seen by a camera that pans and zooms slightly, every layer
  moving at its own depth (parallax). Sound: wind gusts plus a few soft bell-like tones.
- `landscape_still.png`: the clip's middle frame, lossless, for `vidstyle image`.
- `subject.mp4`: 2 s, 24 fps, 320x180 H.264, no sound. A hiker (striped sweater, backpack, swinging
  arms and legs) walks left to right along a meadow path below the landscape's mountains and
  forest, under a slow pan: a moving foreground subject with internal detail, for spatial control.
- `subject_mask.mp4`: the hiker's exact mask, frame k for frame k: white = hiker, black = the rest
  (his ground shadow included), grey only on the anti-aliased edge. Lossless H.264 (crf 0), so a
  decoded frame is within a grey level of the rendered coverage.
- `ink_wash.png`: Chinese ink-wash texture: misty ink mountains with wet edges, dry-brush strokes,
  splatter, a red seal, on fibrous paper.
- `swirl_paint.png`: thick impressionist swirls in a Van Gogh palette, by line-integral
  convolution of paint dabs along a vortex field, with impasto lighting.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.media.images import save_image  # noqa: E402
from vidstyle.media.writer import VideoWriter  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS = 320, 180, 24, 3.0
SS = 2  # supersampling factor of the landscape render
AUDIO_RATE = 44100


# ----------------------------------------------------------------------------------------- noise


def fbm(rng: np.random.Generator, h: int, w: int, base: int, octaves: int, gain: float = 0.5) -> np.ndarray:
    """Fractal value noise in [0, 1]: octaves of bicubically upsampled random grids."""
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    cells = base
    for _ in range(octaves):
        gh = max(2, int(h * cells / max(h, w)) + 2)
        gw = max(2, int(w * cells / max(h, w)) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        total += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amp
        amp *= gain
        cells *= 2
    out = total / norm
    out -= out.min()
    return out / max(out.max(), 1e-6)


def ridge(rng: np.random.Generator, n: int, base: int, octaves: int, gain: float = 0.55) -> np.ndarray:
    """A 1D fractal profile in [0, 1] (a mountain skyline)."""
    total = np.zeros(n, np.float64)
    amp, norm, cells = 1.0, 0.0, base
    x = np.linspace(0, 1, n)
    for _ in range(octaves):
        knots = rng.random(cells + 3)
        xs = np.linspace(-1 / cells, 1 + 1 / cells, cells + 3)
        total += amp * np.interp(x, xs, knots)
        norm += amp
        amp *= gain
        cells *= 2
    total = cv2.GaussianBlur((total / norm).astype(np.float32)[None, :], (0, 0), 1.0)[0]
    total -= total.min()
    return total / max(total.max(), 1e-6)


def smoothstep(e0, e1, x: np.ndarray) -> np.ndarray:
    span = np.asarray(e1 - e0, dtype=np.float32)
    span = np.where(np.abs(span) < 1e-9, 1e-9, span)
    t = np.clip((x - e0) / span, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def hexrgb(code: str) -> np.ndarray:
    return np.array([int(code[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255.0


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t


# ------------------------------------------------------------------------------------- landscape


class Layer:
    """An RGBA picture (float, premultiplied-free) placed in the world at a parallax depth.

    `depth` 0 stays fixed on screen (infinitely far), 1 moves with the foreground.
    """

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray, depth: float) -> None:
        self.rgb, self.alpha, self.depth = rgb, alpha, depth


def _canvas_size() -> tuple[int, int, int]:
    """Layer pictures are wider than the frame so the pan never shows an edge."""
    h = HEIGHT * SS
    w = int(WIDTH * SS * 1.5)
    return h, w, int(h * 0.60)  # horizon / far shore line


def sky_layer(rng: np.random.Generator) -> tuple[Layer, np.ndarray]:
    h, w, horizon = _canvas_size()
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top, mid, low = hexrgb("#27406e"), hexrgb("#6f93c0"), hexrgb("#f4d6a0")
    t = np.clip(y / (horizon / h), 0, 1)
    sky = np.where(t < 0.55, lerp(top, mid, t / 0.55), lerp(mid, low, (t - 0.55) / 0.45))
    sky = np.broadcast_to(sky, (h, w, 3)).copy()
    # Sun glow low on the right, behind the mountains.
    sun = np.array([w * 0.3, horizon * 0.62])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((xx - sun[0]) ** 2 + ((yy - sun[1]) * 1.3) ** 2) / h
    glow = np.exp(-d * 3.2)[..., None]
    sky = sky + glow * 0.55 * (hexrgb("#ffe2a8") - sky) + np.exp(-d * 25)[..., None] * 0.6
    # Clouds: stretched fbm, brighter on the sun side, with darker undersides.
    n = fbm(rng, h, w, 5, 6, 0.55)
    n = cv2.resize(cv2.resize(n, (w, h // 3)), (w, h), interpolation=cv2.INTER_CUBIC)  # horizontal streaks
    band = smoothstep(0.02, 0.25, y[..., 0]) * (1 - smoothstep(0.45, 0.75, y[..., 0] / (horizon / h)))
    cover = smoothstep(0.48, 0.78, n) * band
    shade = smoothstep(0.35, 0.9, n)
    lit = 0.75 + 0.25 * np.exp(-d * 2)
    cloud = lerp(hexrgb("#8b7f95"), hexrgb("#fff1dc"), (shade * lit)[..., None])
    sky = lerp(sky, cloud, cover[..., None] * 0.9)
    return Layer(np.clip(sky, 0, 1), np.ones((h, w), np.float32), 0.05), sun


def mountain_layer(
    rng: np.random.Generator,
    base_y: float,
    height: float,
    color: str,
    shadow: str,
    haze: str,
    haze_amount: float,
    depth: float,
    roughness: int,
    snow: float = 0.0,
) -> Layer:
    """A mountain range: fractal skyline, flanks that spread below each peak, mist at the foot.

    The face is shaded from a pseudo height field: the skyline profile blurred more and more
    with distance below it (ridges fan out and soften downhill) plus vertically stretched ridged
    noise (gullies), lit from the low sun on the right.
    """
    h, w, horizon = _canvas_size()
    profile = ridge(rng, w, roughness, 7, 0.5) ** 1.6  # pointed peaks, open valleys
    top = (base_y - height * profile) * h  # skyline y per column
    yy = np.arange(h, dtype=np.float32)[:, None]
    alpha = smoothstep(-0.8, 0.8, yy - top[None, :])
    below = np.clip(yy - top[None, :], 0, None)  # pixels under the skyline
    sigmas = [1, 3, 8, 16, 32, 64]
    blurred = np.stack([cv2.GaussianBlur(top[None, :].astype(np.float32), (0, 0), s)[0] for s in sigmas])
    level = np.clip(np.log2(1 + below / 6.0), 0, len(sigmas) - 1.001)
    lo = np.floor(level).astype(int)
    frac = level - lo
    cols = np.arange(w)[None, :].repeat(h, 0)
    field = blurred[lo, cols] * (1 - frac) + blurred[lo + 1, cols] * frac
    slope = np.gradient(field, axis=1)  # > 0: terrain rises to the right (faces the sun, left)
    gully = fbm(rng, h // 4, w, 18, 5)
    gully = cv2.resize(gully, (w, h), interpolation=cv2.INTER_CUBIC)
    gully = 1 - np.abs(2 * gully - 1)  # ridged
    gslope = np.gradient(cv2.GaussianBlur(gully, (0, 0), 1.2), axis=1) * 18
    light = np.clip(0.5 + slope * 0.45 - gslope * smoothstep(0, 25, below) + (gully - 0.5) * 0.2, 0, 1)
    rgb = lerp(hexrgb(shadow), hexrgb(color), light[..., None])
    if snow:
        cap = (1 - smoothstep(0.0, snow * h, below + (gully - 0.5) * 0.4 * snow * h)) * smoothstep(0.45, 0.7, profile)[
            None, :
        ]
        rgb = lerp(rgb, lerp(hexrgb("#aab3cc"), hexrgb("#fff3e4"), light[..., None]), cap[..., None] * 0.92)
    # Aerial perspective: hazier toward the foot of the range (mist in the valley).
    mist = smoothstep(top.min(), base_y * h + 0.06 * h, yy) ** 1.4
    rgb = lerp(rgb, hexrgb(haze), (haze_amount + (1 - haze_amount) * 0.9 * mist)[..., None])
    alpha = alpha * (yy < horizon + 4)
    return Layer(np.clip(rgb, 0, 1).astype(np.float32), alpha.astype(np.float32), depth)


def _conifer(img: np.ndarray, alpha: np.ndarray, x: float, base: float, size: float, rng, dark, light) -> None:
    """A fir tree: stacked jagged tiers, lit on the left (the sun's side)."""
    tiers = 5
    for i in range(tiers):
        f = i / tiers
        width = size * 0.38 * (1 - f * 0.75)
        y0 = base - size * (0.12 + f * 0.78)
        y1 = y0 + size * 0.34
        pts = [(x, y0 - size * 0.12)]
        for k in range(5):
            t = (k + 1) / 5
            pts.append((x + width * t + rng.uniform(-1, 1) * width * 0.12, y0 + (y1 - y0) * t))
        for k in range(5):
            t = 1 - k / 5
            pts.append((x - width * t + rng.uniform(-1, 1) * width * 0.12, y0 + (y1 - y0) * t))
        poly = np.array(pts, np.float32).reshape(-1, 1, 2)
        shade = np.array(dark) + (np.array(light) - np.array(dark)) * rng.uniform(0.1, 0.5)
        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], shade.tolist(), cv2.LINE_AA, shift=4)
        cv2.fillPoly(alpha, [np.round(poly * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        lit = poly.copy()
        lit[:, 0, 0] = np.minimum(lit[:, 0, 0], x)  # left half catches the light
        cv2.fillPoly(
            img, [np.round(lit * 16).astype(np.int32)], (np.array(light) * 0.95).tolist(), cv2.LINE_AA, shift=4
        )
    trunk = np.array(
        [
            [x - size * 0.03, base],
            [x + size * 0.03, base],
            [x + size * 0.02, base - size * 0.2],
            [x - size * 0.02, base - size * 0.2],
        ]
    )
    cv2.fillPoly(img, [np.round(trunk * 16).astype(np.int32)], (0.16, 0.11, 0.08), cv2.LINE_AA, shift=4)
    cv2.fillPoly(alpha, [np.round(trunk * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)


def forest_layer(rng: np.random.Generator) -> Layer:
    """The far shore: a low wooded hill whose foot sits on the waterline."""
    h, w, horizon = _canvas_size()
    profile = ridge(rng, w, 4, 6)
    top = horizon - (0.03 + 0.08 * profile) * h
    yy = np.arange(h, dtype=np.float32)[:, None]
    alpha = (smoothstep(-0.8, 0.8, yy - top[None, :]) * (yy < horizon + 2)).astype(np.float32)
    tex = fbm(rng, h, w, 50, 4)
    rgb = lerp(
        hexrgb("#1f3a25"),
        hexrgb("#5f7d3a"),
        (tex * 0.7 + 0.15 * (1 - np.gradient(top)[None, :].clip(-1, 1)))[..., None],
    )
    rgb = np.ascontiguousarray(rgb)
    # Trees along the hill, a denser band near the water.
    for _ in range(170):
        x = rng.uniform(0, w)
        xi = int(min(w - 1, max(0, x)))
        base = rng.uniform(top[xi] + 4, horizon + 2)
        size = rng.uniform(14, 30) * (0.7 + 0.6 * (base - top[xi]) / max(1.0, horizon - top[xi]))
        _conifer(rgb, alpha, x, base, size, rng, (0.07, 0.16, 0.10), (0.36, 0.47, 0.22))
    # Warm rim light from the low sun.
    rgb = np.clip(rgb * (0.9 + 0.25 * fbm(rng, h, w, 8, 2)[..., None]), 0, 1)
    shore = smoothstep(horizon - 3, horizon + 1, yy)
    rgb = lerp(rgb, hexrgb("#1a2418"), shore[..., None] * 0.6)
    return Layer(rgb.astype(np.float32), alpha, 0.55)


def _bank_profile(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Top of the near shore per column: a mound on the left, low rocks on the right, open water
    in the middle (it dips below the frame there)."""
    xx = np.arange(w, dtype=np.float32)
    left = 0.36 * np.exp(-(((xx - 0.0 * w) / (0.26 * w)) ** 2))
    right = 0.2 * np.exp(-(((xx - 0.93 * w) / (0.14 * w)) ** 2))
    bumps = 0.03 * (ridge(rng, w, 10, 5) - 0.5)
    return h * (1.04 - np.maximum(left, right) - bumps)


def foreground_layer(rng: np.random.Generator) -> Layer:
    """Rocks and grass on the near shore, bottom left and right."""
    h, w, _ = _canvas_size()
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    bank = _bank_profile(w, h, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    land = smoothstep(-0.8, 0.8, yy - bank[None, :])
    tex = fbm(rng, h, w, 40, 5)
    ground = lerp(hexrgb("#1f1d14"), hexrgb("#57532f"), (tex * smoothstep(-20, 40, bank[None, :] - yy + 40))[..., None])
    rgb += ground * land[..., None]
    alpha += land
    # Rocks: shaded blobs on the bank, lit from the upper left.
    for _ in range(9):
        side = rng.random() < 0.6
        cx = rng.uniform(0.02 * w, 0.22 * w) if side else rng.uniform(0.86 * w, 0.99 * w)
        cy = bank[int(min(w - 1, cx))] + rng.uniform(4, 22)
        rx, ry = rng.uniform(14, 34), rng.uniform(9, 18)
        ang = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        rad = 1 + 0.12 * rng.standard_normal(28)
        squash = np.where(np.sin(ang) > 0, 0.45, 1.0)  # flat bottom
        pts = np.stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang) * squash], 1)
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        lightness = np.clip(0.45 + ((cx - xx) / rx * 0.35 - (yy - cy) / ry * 0.45), 0, 1)
        grain = fbm(rng, h // 4, w // 4, 30, 3)
        grain = cv2.resize(grain, (w, h))
        stone = lerp(hexrgb("#2e2d31"), hexrgb("#c2b295"), (lightness * (0.75 + 0.35 * grain))[..., None])
        rgb = lerp(rgb, stone, mask[..., None])
        alpha = np.maximum(alpha, mask)
    # Grass tufts along the bank: mostly dark, a few blades catching the sun.
    rgb = np.ascontiguousarray(rgb)
    for _ in range(700):
        x = rng.uniform(0, w)
        top = bank[int(min(w - 1, x))]
        if top > h - 4:
            continue
        y = top + rng.uniform(-1, 10)
        length = rng.uniform(6, 22) * (1.3 if top < h * 0.8 else 1.0)
        lean = rng.uniform(-0.6, 0.6)
        tip = (x + lean * length, y - length)
        tone = rng.uniform(0, 1) ** 2.2
        green = lerp(hexrgb("#1d2b12"), hexrgb("#a9a14f"), tone)
        p = np.array([[x - 1.0, y], [x + 1.0, y], tip], np.float32)
        cv2.fillPoly(rgb, [np.round(p * 16).astype(np.int32)], green.tolist(), cv2.LINE_AA, shift=4)
        cv2.fillPoly(alpha, [np.round(p * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    return Layer(np.clip(rgb, 0, 1), np.clip(alpha, 0, 1), 1.0)


def build_world(seed: int = 7) -> tuple[list[Layer], list[Layer], np.ndarray]:
    """Layers above the water (reflected), layers in front of the water, and the sun position."""
    rng = np.random.default_rng(seed)
    sky, sun = sky_layer(rng)
    far = mountain_layer(rng, 0.52, 0.40, "#a7a2c2", "#4f5684", "#d9c9c6", 0.18, 0.12, 2, snow=0.05)
    mid = mountain_layer(rng, 0.60, 0.36, "#8a9479", "#263649", "#b3b0b5", 0.0, 0.28, 3, snow=0.02)
    forest = forest_layer(rng)
    front = foreground_layer(rng)
    return [sky, far, mid, forest], [front], sun


def _place(layer: Layer, pan: float, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Warp a layer into the (supersampled) frame for this camera position."""
    h, w = layer.alpha.shape
    fw, fh = WIDTH * SS, HEIGHT * SS
    z = 1 + (zoom - 1) * layer.depth
    shift = pan * layer.depth
    # Frame centre looks at world x = w/2 + shift; scale about the frame centre.
    cx_world = w / 2 + shift
    m = np.array([[z, 0, fw / 2 - z * cx_world], [0, z, fh / 2 - z * (h / 2)]], np.float32)
    rgb = cv2.warpAffine(layer.rgb, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(layer.alpha, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return rgb, a


def render_frame(above: list[Layer], front: list[Layer], t: float, rng_water: np.ndarray) -> np.ndarray:
    """One frame: composite, reflect into the lake, add the foreground, downsample."""
    progress = t / SECONDS
    ease = progress * progress * (3 - 2 * progress)
    pan = -50 * SS + 100 * SS * ease
    zoom = 1.0 + 0.06 * ease
    fh, fw = HEIGHT * SS, WIDTH * SS
    canvas = np.zeros((fh, fw, 3), np.float32)
    for layer in above:
        rgb, a = _place(layer, pan, zoom)
        canvas = lerp(canvas, rgb, a[..., None])
    # Waterline moves with the forest layer (its depth) under the zoom.
    h_world, _, horizon = _canvas_size()
    zf = 1 + (zoom - 1) * above[-1].depth
    water_y = fh / 2 + zf * (horizon - h_world / 2)
    canvas = reflect(canvas, water_y, t, rng_water)
    for layer in front:
        rgb, a = _place(layer, pan, zoom)
        canvas = lerp(canvas, rgb, a[..., None])
    vignette = _vignette(fh, fw)
    canvas = canvas * vignette[..., None]
    small = cv2.resize(canvas, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return np.clip(small * 255 + 0.5, 0, 255).astype(np.uint8)


def reflect(canvas: np.ndarray, water_y: float, t: float, ripple_noise: np.ndarray) -> np.ndarray:
    """Mirror everything above the waterline into the lake, with drifting ripples and glints.

    Ripple texture coordinates follow a soft perspective (log in depth): fine, dense ripples
    near the far shore, broad ones near the camera.
    """
    fh, fw = canvas.shape[:2]
    ys, xs = np.mgrid[0:fh, 0:fw].astype(np.float32)
    below = ys - water_y
    near = np.clip(below / (fh - water_y), 0, 1)
    b = 10.0 * SS
    v = 42.0 * SS * np.log1p(np.clip(below, 0, None) / b)
    u = (xs - fw / 2) * (b * 2.0 / (np.clip(below, 0, None) + b)) + fw / 2 + t * 9 * SS
    wave = cv2.remap(ripple_noise, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    dx = (wave - 0.5) * (1 + 8 * near) * SS
    dy = (wave - 0.5) * (0.5 + 4 * near) * SS
    map_y = np.clip(water_y - below + dy, 0, water_y - 1)
    mirror = cv2.remap(canvas, xs + dx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    fresnel = 0.85 - 0.45 * near
    water = lerp(hexrgb("#1b3044"), mirror * np.array([0.84, 0.9, 0.97], np.float32), fresnel[..., None])
    luma = mirror.mean(axis=2)
    glint = smoothstep(0.62, 0.8, wave) * smoothstep(0.7, 0.95, luma) * 0.35
    water = water + glint[..., None] * hexrgb("#fff0c8")
    rim = np.exp(-((below - 0.5) ** 2) / (2 * 0.8**2))[..., None] * 0.15  # wet line at the far shore
    water = water + rim * hexrgb("#f3dfb8")
    return np.where((below > 0)[..., None], water, canvas)


_VIGNETTE: dict[tuple[int, int], np.ndarray] = {}


def _vignette(h: int, w: int) -> np.ndarray:
    if (h, w) not in _VIGNETTE:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.sqrt(((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2)
        _VIGNETTE[(h, w)] = 1 - 0.18 * smoothstep(0.6, 1.45, r)
    return _VIGNETTE[(h, w)]


def landscape_frames(seed: int = 7) -> list[np.ndarray]:
    above, front, _ = build_world(seed)
    rng = np.random.default_rng(seed + 1)
    ripple = cv2.resize(fbm(rng, 256, 256, 24, 4, 0.55), (1024, 256), interpolation=cv2.INTER_CUBIC)
    n = int(round(SECONDS * FPS))
    return [render_frame(above, front, i / FPS, ripple) for i in range(n)]


# ----------------------------------------------------------------------------------------- audio


def landscape_audio(seed: int = 11) -> np.ndarray:
    """Stereo float32 (2, samples): wind gusts (filtered noise) and a few soft bell tones."""
    rng = np.random.default_rng(seed)
    n = int(SECONDS * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    out = np.zeros((2, n), np.float64)
    gust = 0.55 + 0.45 * np.sin(2 * np.pi * 0.33 * t + 0.6) * np.sin(2 * np.pi * 0.21 * t + 1.7)
    for ch in range(2):
        white = rng.standard_normal(n)
        # Band-limited rumble: one-pole low-pass twice, then remove the DC drift.
        spec = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / AUDIO_RATE)
        centre = 420 + 160 * ch
        shape = np.exp(-0.5 * (np.log(np.maximum(freqs, 1) / centre) / 0.7) ** 2)
        wind = np.fft.irfft(spec * shape, n)
        wind /= np.abs(wind).max()
        out[ch] += 0.22 * wind * gust
    notes = [(0.25, 220.0, 0.0), (0.9, 329.63, 0.3), (1.55, 293.66, -0.3), (2.2, 440.0, 0.1)]
    for start, freq, pan in notes:
        env = np.where(t >= start, np.exp(-(t - start) * 1.6) * (1 - np.exp(-(t - start) * 40)), 0.0)
        tone = sum(a * np.sin(2 * np.pi * freq * k * (t - start)) for k, a in ((1, 1.0), (2, 0.35), (3, 0.12)))
        out[0] += 0.16 * env * tone * (1 - pan) / 2 * 2**0.5
        out[1] += 0.16 * env * tone * (1 + pan) / 2 * 2**0.5
    fade = np.minimum(1, np.minimum(t / 0.15, (SECONDS - t) / 0.3))
    return (1.6 * out * fade).astype(np.float32)  # peak around -6 dBFS


def write_audio(path: Path, samples: np.ndarray) -> None:
    """AAC in an .m4a, which the VideoWriter then copies next to the video."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "stereo"
        stream.codec_context.bit_rate = 96000
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_landscape(out: Path, still: Path | None = None) -> None:
    """The clip, plus (optionally) its middle frame as a lossless still for `vidstyle image`."""
    frames = landscape_frames()
    if still is not None:
        save_image(still, frames[len(frames) // 2])
    with tempfile.TemporaryDirectory() as tmp:
        sound = Path(tmp) / "sound.m4a"
        write_audio(sound, landscape_audio())
        with VideoWriter(
            out, WIDTH, HEIGHT, Fraction(FPS), crf=20, preset="slow", audio_from=sound, overwrite=True,
            encoder_options={"x264-params": "mbtree=0"},  # x264's mb-tree asm is not reproducible
        ) as w:
            for frame in frames:
                w.write(frame)


# -------------------------------------------------------------------------------------- subject

SUBJECT_SECONDS = 2.0
FIG_SS = 4  # supersampling of the walker: its edges are the mask's edges, so they get more samples
WALKER_HEIGHT = 92.0  # frame pixels, sole to the top of the hair
GROUND_Y = 166.0  # frame row the soles walk on (the middle of the path)
_INK = "#1b1714"  # cartoon outline


def meadow_layer(rng: np.random.Generator) -> Layer:
    """The ground in front of the far shore: a meadow with flowers, crossed by a sandy path."""
    h, w, horizon = _canvas_size()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    near = np.clip((yy - horizon) / (h - horizon), 0, 1)  # 0 at the horizon, 1 at the bottom
    alpha = smoothstep(horizon - 1.0, horizon + 1.0, yy)
    # Grass: horizontal streaks that grow coarser toward the camera, hazy and yellow far away.
    fine = fbm(rng, h, w, 90, 3)
    coarse = cv2.resize(fbm(rng, h // 3, w, 40, 4), (w, h), interpolation=cv2.INTER_CUBIC)
    tex = lerp(fine, coarse, near)
    patches = fbm(rng, h, w, 6, 3)
    grass = lerp(hexrgb("#2f5a22"), hexrgb("#8fae4a"), (0.25 + 0.55 * tex * (0.6 + 0.6 * patches))[..., None])
    grass = lerp(hexrgb("#b4b98a"), grass, (0.35 + 0.65 * near**0.6)[..., None])  # aerial haze
    rgb = np.ascontiguousarray(grass, dtype=np.float32)
    # Flowers: dots that grow toward the camera.
    colours = [hexrgb("#f4efe2"), hexrgb("#f2c94c"), hexrgb("#b784c9"), hexrgb("#e86a5a")]
    for _ in range(1400):
        y = horizon + (h - horizon) * rng.random() ** 0.7
        x = rng.uniform(0, w)
        r = 0.3 + 1.6 * (y - horizon) / (h - horizon)
        c = colours[int(rng.integers(len(colours)))] * rng.uniform(0.8, 1.0)
        cv2.circle(rgb, (int(x * 16), int(y * 16)), max(1, int(r * 16)), c.tolist(), -1, cv2.LINE_AA, shift=4)
    # The path: a gentle curve of packed sand with wheel ruts and pebbles, frayed edges.
    centre = GROUND_Y * SS + 5 * SS * np.sin(xx / (90 * SS) + 0.7)
    half = 10 * SS + 3 * SS * (fbm(rng, h, w, 20, 3) - 0.5)
    path = smoothstep(half + 1.5, half - 1.5, np.abs(yy - centre))
    ruts = np.exp(-(((np.abs(yy - centre) - 5 * SS) / (1.4 * SS)) ** 2))
    sand = lerp(hexrgb("#b79a6a"), hexrgb("#dcc596"), fbm(rng, h, w, 60, 3)[..., None])
    sand = sand * (1 - 0.22 * ruts)[..., None]
    rgb = lerp(rgb, sand, path[..., None])
    for _ in range(260):
        x = rng.uniform(0, w)
        y = GROUND_Y * SS + 5 * SS * math.sin(x / (90 * SS) + 0.7) + rng.normal(0, 5 * SS)
        tone = hexrgb("#7d6a52") if rng.random() < 0.5 else hexrgb("#efe2c6")
        axes = (int(rng.uniform(0.6, 1.6) * 16), int(rng.uniform(0.4, 1.0) * 16))
        cv2.ellipse(rgb, (int(x * 16), int(y * 16)), axes, 0, 0, 360, tone.tolist(), -1, cv2.LINE_AA, shift=4)
    return Layer(np.clip(rgb, 0, 1).astype(np.float32), alpha.astype(np.float32), 0.8)


def _limb(root: np.ndarray, angle: float, length: float) -> np.ndarray:
    """End of a limb hanging from `root` at `angle` (radians from straight down, + = forward)."""
    return root + length * np.array([math.sin(angle), -math.cos(angle)])


def walker_pose(phase: float) -> dict[str, np.ndarray]:
    """Joint positions of a walker facing right, in body heights (x forward, y up, 0 = ground).

    A gait cycle is one period of `phase`; the far leg and arm run half a cycle behind the near
    ones. The hip sits as high as the lower foot allows, which makes the body bob twice a cycle.
    """
    thigh, shin, foot = 0.245, 0.235, 0.085
    joints: dict[str, np.ndarray] = {}
    lowest = 0.0
    for side, offset in (("near", 0.0), ("far", 0.5)):
        a = 2 * math.pi * (phase + offset)
        hip_angle = 0.45 * math.sin(a)
        knee_bend = 0.1 + 0.9 * max(0.0, math.cos(a)) ** 2  # bent most while the leg swings forward
        knee = _limb(np.zeros(2), hip_angle, thigh)
        ankle = _limb(knee, hip_angle - knee_bend, shin)
        toe_dir = hip_angle - knee_bend + 0.25 * max(0.0, -math.sin(a))  # toe lifts behind the body
        toe = ankle + foot * np.array([math.cos(toe_dir), math.sin(toe_dir)])
        joints[f"{side}_knee"], joints[f"{side}_ankle"], joints[f"{side}_toe"] = knee, ankle, toe
        lowest = min(lowest, ankle[1], toe[1])
        shoulder_angle = -0.42 * math.sin(a)  # arms swing against the legs
        joints[f"{side}_arm"] = np.array([shoulder_angle, shoulder_angle + 0.35 + 0.3 * max(0.0, math.sin(a + 1.0))])
    lift = np.array([0.0, 0.02 - lowest])  # soles 0.02 above the ground line (their thickness)
    for key in [k for k in joints if not k.endswith("_arm")]:
        joints[key] = joints[key] + lift
    joints["hip"] = lift.copy()
    joints["shoulder"] = joints["hip"] + np.array([0.035, 0.30])
    joints["head"] = joints["shoulder"] + np.array([0.035, 0.115])
    for side in ("near", "far"):
        upper, lower = joints.pop(f"{side}_arm")
        elbow = _limb(joints["shoulder"], upper, 0.165)
        joints[f"{side}_elbow"], joints[f"{side}_hand"] = elbow, _limb(elbow, lower, 0.15)
    return joints


class _Sprite:
    """Premultiplied colour and coverage of the walker on a supersampled canvas, built part by part.

    Every part is drawn as coverage (anti-aliased, 8-bit) and laid *over* what is there, so the
    final coverage is exactly the walker's silhouette: the sample's mask.
    """

    def __init__(self, w: int, h: int, origin: tuple[float, float], scale: float) -> None:
        self.colour = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)
        self.origin, self.scale = origin, scale

    def px(self, p: np.ndarray) -> tuple[int, int]:
        """Body heights to canvas pixels in 1/16 units (cv2's `shift=4`)."""
        x = self.origin[0] + p[0] * self.scale
        y = self.origin[1] - p[1] * self.scale
        return int(round(x * 16)), int(round(y * 16))

    def lay(self, draw, colour: np.ndarray | str, pattern: np.ndarray | None = None) -> np.ndarray:
        """Lay one part: `draw(canvas, 255)` paints its shape; `pattern` (HxWx3) overrides the flat colour."""
        cover = np.zeros(self.alpha.shape, np.uint8)
        draw(cover, 255)
        m = cover.astype(np.float32) / 255.0
        paint = (hexrgb(colour) if isinstance(colour, str) else colour) if pattern is None else pattern
        self.colour *= (1 - m)[..., None]
        self.colour += paint * m[..., None]
        self.alpha *= 1 - m
        self.alpha += m
        return m

    def capsule(self, points: list[np.ndarray], width: float, colour: str, outline: float = 0.012) -> None:
        """A limb: a thick polyline with round ends, inked around its edge."""
        pts = [self.px(p) for p in points]

        def stroke(extra: float):
            thick = max(1, int(round((width + 2 * extra) * self.scale)))

            def draw(canvas: np.ndarray, value: int) -> None:
                for a, b in zip(pts[:-1], pts[1:]):
                    cv2.line(canvas, a, b, value, thick, cv2.LINE_AA, shift=4)

            return draw

        self.lay(stroke(outline), _INK)
        self.lay(stroke(0.0), colour)

    def disc(self, centre: np.ndarray, radius: float, colour: str, outline: float = 0.0) -> None:
        c = self.px(centre)
        for r, col in ((radius + outline, _INK), (radius, colour)) if outline else ((radius, colour),):
            rr = int(round(r * self.scale * 16))
            self.lay(lambda canvas, v, rr=rr: cv2.circle(canvas, c, rr, v, -1, cv2.LINE_AA, shift=4), col)


def draw_walker(sprite: _Sprite, joints: dict[str, np.ndarray]) -> None:
    """A hiker in profile: striped sweater, jeans, boots, a backpack with a pocket, hair, face."""
    hip, shoulder, head = joints["hip"], joints["shoulder"], joints["head"]
    shade = {"far": "#27405f", "near": "#3b5f8f"}
    boots = {"far": "#34241a", "near": "#4a3324"}
    for side in ("far", "near"):  # legs: jeans, then boots
        sprite.capsule([hip, joints[f"{side}_knee"], joints[f"{side}_ankle"]], 0.075, shade[side])
        sprite.capsule([joints[f"{side}_ankle"], joints[f"{side}_toe"]], 0.05, boots[side])
    far_arm = [shoulder, joints["far_elbow"], joints["far_hand"]]
    sprite.capsule(far_arm[:2], 0.06, "#8e2a22")
    sprite.capsule(far_arm[1:], 0.05, "#8e2a22")
    sprite.disc(joints["far_hand"], 0.024, "#b07c5c", 0.01)
    # Backpack on the back, with a lighter pocket and a bedroll on top.
    back = shoulder + np.array([-0.085, -0.03])
    sprite.capsule([back, back + np.array([-0.01, -0.16])], 0.11, "#2f6f6a")
    sprite.capsule([back + np.array([-0.03, -0.09]), back + np.array([-0.03, -0.14])], 0.045, "#4f9a90", 0.006)
    sprite.capsule([back + np.array([-0.05, 0.05]), back + np.array([0.02, 0.05])], 0.05, "#c9a45c")
    # Torso: a red sweater with cream stripes that follow the body's axis.
    axis = shoulder - hip
    h, w = sprite.alpha.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    bx, by = (xs - sprite.origin[0]) / sprite.scale - hip[0], (sprite.origin[1] - ys) / sprite.scale - hip[1]
    u = (bx * axis[0] + by * axis[1]) / float(axis @ axis)  # 0 at the hip, 1 at the shoulder
    stripes = smoothstep(0.35, 0.45, 0.5 + 0.5 * np.sin(u * 2 * np.pi * 4.5))
    sweater = lerp(hexrgb("#c8372d"), hexrgb("#f1e3c6"), stripes[..., None])
    top, bottom = sprite.px(shoulder + np.array([0.0, -0.01])), sprite.px(hip + np.array([0.0, 0.03]))
    for extra, pattern in ((0.012, None), (0.0, sweater)):
        thick = int(round((0.15 + 2 * extra) * sprite.scale))
        sprite.lay(lambda c, v, t=thick: cv2.line(c, top, bottom, v, t, cv2.LINE_AA, shift=4), _INK, pattern)
    # Strap over the chest, neck, head with hair, ear, eye and nose.
    sprite.capsule([back + np.array([0.02, 0.01]), shoulder + np.array([0.06, -0.12])], 0.018, "#1f4a46", 0.004)
    sprite.capsule([shoulder, head], 0.05, "#d69c78", 0.01)
    sprite.disc(head + np.array([0.052, -0.005]), 0.017, "#d69c78", 0.008)  # nose
    sprite.disc(head, 0.066, "#e0a982", 0.012)
    hc, r = sprite.px(head + np.array([-0.006, 0.008])), int(round(0.07 * sprite.scale * 16))
    sprite.lay(lambda c, v: cv2.ellipse(c, hc, (r, r), 0, 150, 345, v, -1, cv2.LINE_AA, shift=4), "#3a2418")
    sprite.disc(head + np.array([-0.012, -0.004]), 0.016, "#c98d6a")  # ear
    sprite.disc(head + np.array([0.034, 0.012]), 0.011, _INK)  # eye
    # Near arm last: it swings in front of the body.
    near_arm = [shoulder, joints["near_elbow"], joints["near_hand"]]
    sprite.capsule(near_arm[:2], 0.06, "#c8372d")
    sprite.capsule(near_arm[1:], 0.05, "#c8372d")
    sprite.disc(joints["near_hand"], 0.024, "#e0a982", 0.01)


def subject_frames(seed: int = 7) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a hiker walking left to right along a meadow path, and their exact masks.

    The background is the landscape's world (sky, ranges, forest) above a meadow instead of the
    lake, under a slow pan. The walker is rendered as coverage at FIG_SS× and composited at frame
    size as `background·(1 − A) + colour`, so the mask A (0–255) is exactly how much of each pixel
    is walker, anti-aliased edge included; its ground shadow belongs to the background.
    """
    above, _, _ = build_world(seed)
    layers = [*above, meadow_layer(np.random.default_rng(seed + 10))]
    n = int(round(SUBJECT_SECONDS * FPS))
    scale = WALKER_HEIGHT * FIG_SS
    # The walker is drawn in a box around it (frame-pixel aligned, so its area downsample is the
    # same as the whole canvas's), not on the whole supersampled frame: 6× less to draw.
    box_w, box_h = math.ceil(0.9 * WALKER_HEIGHT), math.ceil(1.2 * WALKER_HEIGHT)
    frames, masks = [], []
    for i in range(n):
        t = i / FPS
        pan = (-8 + 16 * t / SUBJECT_SECONDS) * SS
        canvas = np.zeros((HEIGHT * SS, WIDTH * SS, 3), np.float32)
        for layer in layers:
            rgb, a = _place(layer, pan, 1.0)
            canvas = lerp(canvas, rgb, a[..., None])
        x = 72 + 82 * t  # frame pixels: about 0.9 body heights a second
        shadow = np.zeros(canvas.shape[:2], np.float32)
        centre, axes = (int(x * SS * 16), int(GROUND_Y * SS * 16)), (int(26 * SS * 16), int(4 * SS * 16))
        cv2.ellipse(shadow, centre, axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
        canvas *= (1 - 0.4 * cv2.GaussianBlur(shadow, (0, 0), 2.0 * SS))[..., None]
        background = cv2.resize(canvas, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        left, top = math.floor(x - 0.42 * WALKER_HEIGHT), math.floor(GROUND_Y - 1.12 * WALKER_HEIGHT)
        sprite = _Sprite(box_w * FIG_SS, box_h * FIG_SS, ((x - left) * FIG_SS, (GROUND_Y - top) * FIG_SS), scale)
        draw_walker(sprite, walker_pose(t / 0.95))
        edge = np.concatenate([sprite.alpha[0], sprite.alpha[-1], sprite.alpha[:, 0], sprite.alpha[:, -1]])
        if edge.any() or left < 0 or top < 0 or left + box_w > WIDTH or top + box_h > HEIGHT:
            raise RuntimeError(f"the walker leaves its box or the frame at frame {i}")
        colour = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        alpha = np.zeros((HEIGHT, WIDTH), np.float32)
        box = (slice(top, top + box_h), slice(left, left + box_w))
        colour[box] = cv2.resize(sprite.colour, (box_w, box_h), interpolation=cv2.INTER_AREA)
        alpha[box] = cv2.resize(sprite.alpha, (box_w, box_h), interpolation=cv2.INTER_AREA)
        frame = (background * (1 - alpha)[..., None] + colour) * _vignette(HEIGHT, WIDTH)[..., None]
        frames.append(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
        cover = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
        masks.append(np.repeat(cover[..., None], 3, axis=2))
    return frames, masks


def make_subject(out: Path, mask_out: Path) -> None:
    """The walker clip (lossy, like the landscape) and its mask video (lossless, so it stays exact)."""
    frames, masks = subject_frames()
    reproducible = {"x264-params": "mbtree=0"}  # x264's mb-tree asm is not reproducible
    for path, pictures, crf in ((out, frames, 20), (mask_out, masks, 0)):
        options = dict(crf=crf, preset="slow", overwrite=True, encoder_options=reproducible)
        with VideoWriter(path, WIDTH, HEIGHT, Fraction(FPS), **options) as w:
            for picture in pictures:
                w.write(picture)


# -------------------------------------------------------------------------------------- ink wash


def paper(rng: np.random.Generator, size: int, tint: str = "#efe8d8") -> np.ndarray:
    """Xuan paper: warm base, soft blotches, fibres and grain (RGB float in [0, 1])."""
    base = np.broadcast_to(hexrgb(tint), (size, size, 3)).copy()
    blotch = fbm(rng, size, size, 4, 4) - 0.5
    grain = rng.standard_normal((size, size)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.6)
    fibres = np.zeros((size, size), np.float32)
    for _ in range(900):
        x, y = rng.uniform(0, size, 2)
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(4, 22)
        dx, dy = math.cos(ang) * length, math.sin(ang) * length
        cv2.line(
            fibres,
            (int(x * 16), int(y * 16)),
            (int((x + dx) * 16), int((y + dy) * 16)),
            float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0)),
            1,
            cv2.LINE_AA,
            shift=4,
        )
    fibres = cv2.GaussianBlur(fibres, (0, 0), 0.5)
    shade = 1 + 0.035 * blotch + 0.012 * grain + 0.025 * fibres
    return np.clip(base * shade[..., None], 0, 1)


def ink_mountains(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ink density of misty ranges: dark ridges with wet edges fading into mist below."""
    density = np.zeros((size, size), np.float32)
    yy = np.arange(size, dtype=np.float32)[:, None]
    layers = [  # (skyline base, height, strength, fade length, roughness)
        (0.42, 0.30, 0.30, 0.10, 2),
        (0.56, 0.28, 0.48, 0.085, 3),
        (0.74, 0.24, 0.75, 0.07, 3),
    ]
    for base, height, strength, fade, rough in layers:
        profile = ridge(rng, size, rough, 7, 0.55) ** 1.4
        top = (base - height * profile) * size
        below = yy - top[None, :]
        inside = smoothstep(-1.0, 1.5, below)
        body = np.exp(-np.clip(below, 0, None) / (fade * size))
        wash = 0.75 + 0.5 * fbm(rng, size, size, 6, 5)
        # Texture strokes (cun): vertical streaks down the flanks.
        streak = cv2.resize(fbm(rng, size // 4, size, 30, 3), (size, size), interpolation=cv2.INTER_CUBIC)
        streak = smoothstep(0.55, 0.85, streak) * (1 - np.exp(-np.clip(below, 0, None) / 5))
        wet_edge = np.exp(-np.clip(below, 0, None) / 3.0) * 0.6  # pigment pools at the edge
        d = strength * inside * (body * wash + wet_edge + 0.3 * streak * body)
        # Each range hides what is behind it; its foot dissolves into mist (bare paper).
        density = density * (1 - inside) + d
    return np.clip(density, 0, 1)


def _bezier(points: np.ndarray, n: int) -> np.ndarray:
    """Points along a cubic Bezier (4 control points)."""
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2, p3 = points
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def dry_brush(
    density: np.ndarray,
    rng: np.random.Generator,
    ctrl: list[tuple[float, float]],
    width: float,
    ink: float = 0.9,
    dryness: float = 0.5,
    blunt: bool = False,
) -> None:
    """Stamp a dry-brush stroke: bristles that run out of ink in streaks along the path.

    The stroke swells as the brush is pressed and thins as it lifts; `blunt` keeps the full
    width to the end (a trunk rather than a leaf-shaped sweep)."""
    size = density.shape[0]
    path = _bezier(np.array(ctrl, np.float64) * size, 500)
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    n_bristles = max(8, int(width * 2.5))
    offsets = np.linspace(-0.5, 0.5, n_bristles) + rng.normal(0, 0.01, n_bristles)
    s = np.linspace(0, 1, len(path))
    if blunt:
        profile = np.clip(s * 8, 0.6, 1) * (1 - 0.3 * s)
    else:
        profile = np.sin(np.pi * np.clip(s * 1.2, 0, 1)) ** 0.4 * (1 - 0.35 * s)  # press, then lift
    layer = np.zeros_like(density)
    for off in offsets:
        # Ink along this bristle: noise thresholded harder as the brush dries out.
        noise = np.interp(s, np.linspace(0, 1, 40), rng.random(40))
        noise = 0.6 * noise + 0.4 * np.interp(s, np.linspace(0, 1, 160), rng.random(160))
        edge = abs(off) * 2
        keep = noise > (dryness * s * 1.3 + edge * 0.35 - 0.15)
        pts = path + normal * (off * width * profile)[:, None]
        value = ink * (0.75 + 0.25 * rng.random())
        for a, b, k in zip(pts[:-1], pts[1:], keep[:-1]):
            if k:
                cv2.line(
                    layer,
                    (int(a[0] * 16), int(a[1] * 16)),
                    (int(b[0] * 16), int(b[1] * 16)),
                    value,
                    1,
                    cv2.LINE_AA,
                    shift=4,
                )
    layer = cv2.GaussianBlur(layer, (0, 0), 0.7)
    np.maximum(density, layer, out=density)


def needle_fan(density: np.ndarray, rng: np.random.Generator, cx: float, cy: float) -> None:
    """A pine-needle tuft: tapered strokes radiating upward from one point, two fans overlaid."""
    size = density.shape[0]
    x0, y0 = cx * size, cy * size
    for fan in range(2):
        count = int(rng.integers(12, 17))
        for k in range(count):
            ang = np.pi * (1.05 + 0.9 * (k + rng.uniform(0.1, 0.9)) / count)  # upper half-circle
            length = rng.uniform(0.03, 0.05) * size * (0.8 if fan else 1.0)
            tip = np.array([x0 + length * math.cos(ang), y0 - 2 * fan + length * math.sin(ang) * 0.7])
            direction = (tip - [x0, y0]) / (np.linalg.norm(tip - [x0, y0]) + 1e-9)
            side = np.array([-direction[1], direction[0]]) * rng.uniform(0.9, 1.5)
            poly = np.array([[x0, y0] + side, tip, [x0, y0] - side], np.float32)
            cv2.fillPoly(
                density, [np.round(poly * 16).astype(np.int32)], float(rng.uniform(0.7, 0.95)), cv2.LINE_AA, shift=4
            )
    cv2.circle(density, (int(x0 * 16), int(y0 * 16)), int(2.5 * 16), 0.92, -1, cv2.LINE_AA, shift=4)


def splatter(density: np.ndarray, rng: np.random.Generator, centre: tuple[float, float], count: int) -> None:
    size = density.shape[0]
    for _ in range(count):
        r = abs(rng.normal(0, 0.06)) * size
        ang = rng.uniform(0, 2 * np.pi)
        x, y = centre[0] * size + r * math.cos(ang), centre[1] * size + r * math.sin(ang)
        rad = max(0.6, rng.gamma(1.2, 0.9))
        cv2.circle(
            density, (int(x * 16), int(y * 16)), int(rad * 16), float(rng.uniform(0.5, 0.95)), -1, cv2.LINE_AA, shift=4
        )


def seal(rng: np.random.Generator, px: int) -> tuple[np.ndarray, np.ndarray]:
    """A vermilion seal: a rough square with carved (white) rectilinear glyph strokes."""
    mask = np.zeros((px, px), np.float32)
    m = px * 0.08
    cv2.rectangle(mask, (int(m), int(m)), (int(px - m), int(px - m)), 1.0, -1)
    carve = np.zeros_like(mask)
    cells = 2
    step = (px - 2 * m) / cells
    for cy in range(cells):
        for cx in range(cells):
            x0, y0 = m + cx * step + step * 0.18, m + cy * step + step * 0.18
            span = step * 0.64
            for _ in range(4):
                if rng.random() < 0.5:
                    y = y0 + rng.uniform(0, span)
                    cv2.line(carve, (int(x0), int(y)), (int(x0 + span), int(y)), 1.0, max(1, px // 28))
                else:
                    x = x0 + rng.uniform(0, span)
                    cv2.line(carve, (int(x), int(y0)), (int(x), int(y0 + span)), 1.0, max(1, px // 28))
    rough = fbm(rng, px, px, 8, 3)
    mask = mask * (1 - carve) * smoothstep(0.15, 0.35, rough + 0.25 * mask)
    colour = np.broadcast_to(hexrgb("#b3261e"), (px, px, 3)) * (0.85 + 0.3 * rough[..., None])
    return colour, cv2.GaussianBlur(mask, (0, 0), 0.5)


def make_ink_wash(size: int = 512, seed: int = 3) -> np.ndarray:
    """Chinese ink wash on paper: misty ranges, a pine in dry-brush strokes, splatter, a seal."""
    rng = np.random.default_rng(seed)
    sheet = paper(rng, size)
    density = ink_mountains(rng, size)
    # A pine leaning in from the lower left: trunk and branches in dry brush, needle fans.
    dry_brush(density, rng, [(0.06, 1.02), (0.12, 0.86), (0.07, 0.74), (0.17, 0.60)], 12, 0.9, 0.45, blunt=True)
    dry_brush(density, rng, [(0.15, 0.64), (0.24, 0.60), (0.31, 0.64), (0.40, 0.60)], 5, 0.88, 0.55)
    dry_brush(density, rng, [(0.10, 0.78), (0.05, 0.75), (0.03, 0.73), (0.00, 0.72)], 5, 0.85, 0.55)
    for cx, cy in [(0.40, 0.60), (0.33, 0.62), (0.26, 0.58), (0.17, 0.58), (0.21, 0.54), (0.03, 0.72), (0.09, 0.70)]:
        needle_fan(density, rng, cx, cy)
    # A bold calligraphic sweep across the lower right, dry at its tail.
    dry_brush(density, rng, [(0.52, 0.93), (0.66, 0.82), (0.82, 0.90), (0.98, 0.80)], 26, 0.85, 0.9)
    splatter(density, rng, (0.62, 0.88), 26)
    # Two birds in the sky.
    for bx, by, sc in [(0.62, 0.16, 1.0), (0.69, 0.13, 0.8)]:
        dry_brush(
            density,
            rng,
            [(bx - 0.025 * sc, by - 0.008), (bx - 0.012 * sc, by - 0.014), (bx - 0.004, by - 0.004), (bx, by)],
            2.2,
            0.9,
            0.1,
        )
        dry_brush(
            density,
            rng,
            [(bx, by), (bx + 0.006, by - 0.012 * sc), (bx + 0.02 * sc, by - 0.014), (bx + 0.03 * sc, by - 0.006)],
            2.2,
            0.9,
            0.1,
        )
    # Ink bleeds into the fibres: a soft halo plus granulation in the washes.
    bleed = cv2.GaussianBlur(density, (0, 0), 2.5)
    grain = fbm(rng, size, size, 120, 2)
    density = np.clip(np.maximum(density, bleed * 0.55) * (0.9 + 0.2 * grain), 0, 1)
    ink = hexrgb("#15161a")
    img = lerp(sheet, np.broadcast_to(ink, sheet.shape), density[..., None] ** 0.9)
    colour, mask = seal(rng, int(size * 0.09))
    x0, y0 = int(size * 0.86), int(size * 0.06)
    px = colour.shape[0]
    img[y0 : y0 + px, x0 : x0 + px] = lerp(img[y0 : y0 + px, x0 : x0 + px], colour, mask[..., None] * 0.92)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ swirl paint


def lic(texture: np.ndarray, vx: np.ndarray, vy: np.ndarray, length: int, step: float = 1.0) -> np.ndarray:
    """Line-integral convolution: average `texture` along the streamlines of (vx, vy).

    Smearing noise along a flow field is what turns specks into brush strokes that follow it.
    Works on HxW or HxWxC float32 textures; a Hann window keeps stroke ends soft.
    """
    h, w = vx.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    total = texture.astype(np.float32).copy()
    weight = 1.0
    for direction in (1.0, -1.0):
        px, py = xs.copy(), ys.copy()
        for k in range(1, length + 1):
            ux = cv2.remap(vx, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            uy = cv2.remap(vy, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            px += direction * step * ux
            py += direction * step * uy
            wk = 0.5 + 0.5 * math.cos(math.pi * k / (length + 1))
            total += wk * cv2.remap(texture, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            weight += wk
    return total / weight


def _vortex(xs, ys, cx, cy, radius, strength, spiral=0.15):
    """Tangential (plus slight inward) flow around a centre, fading beyond `radius`."""
    dx, dy = xs - cx, ys - cy
    r = np.sqrt(dx * dx + dy * dy) + 1e-3
    fall = strength * np.exp(-((r / radius) ** 2))
    return fall * (-dy / r - spiral * dx / r), fall * (dx / r - spiral * dy / r), r


def make_swirl_paint(size: int = 512, seed: int = 5) -> np.ndarray:
    """A Van Gogh-like night: swirling sky, haloed stars and moon, rolling hills, a cypress.

    Colour comes from a smooth scene plus per-stroke jitter; strokes come from LIC of paint dabs
    along a flow field (vortices around lights, a wave through the sky, contours on the hills, a
    rising flame in the cypress); impasto relief is an emboss of the stroke texture.
    """
    rng = np.random.default_rng(seed)
    n = size
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    u, v = xs / n, ys / n
    horizon = 0.70 + 0.05 * np.sin(u * 5.0 + 0.8) + 0.025 * np.sin(u * 13.0)
    sky = smoothstep(horizon + 0.01, horizon - 0.01, v)

    # ---- flow field
    fx = np.ones_like(xs)
    fy = 0.45 * np.sin(u * 2 * np.pi * 1.6 + v * 7.0)
    lights = [(0.84, 0.15, 0.075, "moon"), (0.16, 0.12, 0.035, "star"), (0.38, 0.09, 0.03, "star"),
              (0.60, 0.22, 0.03, "star"), (0.50, 0.50, 0.028, "star"), (0.92, 0.46, 0.032, "star"),
              (0.30, 0.33, 0.025, "star")]
    for cx, cy, rad, _ in lights:
        ax, ay, _ = _vortex(xs, ys, cx * n, cy * n, rad * n * 2.6, 2.5, 0.0)
        fx, fy = fx + ax, fy + ay
    for cx, cy, rad, sign in [(0.40, 0.40, 0.13, 1), (0.62, 0.36, 0.10, -1)]:  # the great swirl
        ax, ay, _ = _vortex(xs, ys, cx * n, cy * n, rad * n, 3.0 * sign, 0.25)
        fx, fy = fx + ax, fy + ay
    # Hills: strokes follow the contours; cypress: a flame rising.
    hx = np.ones_like(xs)
    hy = np.gradient(horizon, axis=1) * n * (0.6 + 0.8 * (v - horizon)) + 0.3 * np.sin(u * 20 + v * 30)
    cyp_w = 0.085 * (1 - smoothstep(0.2, 0.95, 1 - v)) * (1 + 0.15 * np.sin(v * 40))
    cypress = smoothstep(cyp_w, cyp_w * 0.7, np.abs(u - 0.17 + 0.02 * np.sin(v * 9))) * smoothstep(0.16, 0.26, v)
    cx_, cy_ = 0.35 * np.sin(v * 55 + u * 20), -np.ones_like(xs)
    fx = fx * sky + hx * (1 - sky)
    fy = fy * sky + hy * (1 - sky)
    fx = fx * (1 - cypress) + cx_ * cypress
    fy = fy * (1 - cypress) + cy_ * cypress
    norm = np.sqrt(fx * fx + fy * fy) + 1e-6
    fx, fy = (fx / norm).astype(np.float32), (fy / norm).astype(np.float32)

    # ---- scene colour
    deep, cobalt, light, pale = hexrgb("#14285e"), hexrgb("#2c54a0"), hexrgb("#6f9fd6"), hexrgb("#cfe0e8")
    yellow, orange, white = hexrgb("#f2c23a"), hexrgb("#e08a2c"), hexrgb("#fbf3cf")
    band = 0.5 + 0.5 * np.sin(u * 2 * np.pi * 1.6 + v * 7.0 + 1.2)
    colour = lerp(deep, cobalt, np.clip(v / 0.7, 0, 1)[..., None] * 0.8 + 0.2 * band[..., None])
    swirl_glow = np.zeros_like(xs)
    for cx, cy, rad, _ in [(0.40, 0.40, 0.13, 1), (0.62, 0.36, 0.10, -1)]:
        r = np.hypot(xs - cx * n, ys - cy * n) / (rad * n)
        swirl_glow += np.exp(-((r - 0.75) ** 2) / 0.05) * (0.6 + 0.4 * np.cos(r * 9))
    colour = lerp(colour, light, np.clip(swirl_glow, 0, 1)[..., None] * 0.7)
    colour = lerp(colour, pale, np.clip(swirl_glow - 0.6, 0, 1)[..., None])
    for cx, cy, rad, kind in lights:
        r = np.hypot(xs - cx * n, ys - cy * n) / (rad * n)
        halo = np.exp(-np.clip(r - 1, 0, None) * 0.9) * (0.55 + 0.45 * np.cos(np.clip(r - 1, 0, None) * 3.2))
        ring = lerp(light, pale if kind == "star" else yellow, 0.5)
        colour = lerp(colour, ring, (halo * (r > 1) * 0.75)[..., None])
        core = smoothstep(1.1, 0.9, r)
        centre = white if kind == "star" else yellow
        colour = lerp(
            colour,
            lerp(orange if kind == "moon" else yellow, centre, smoothstep(1.0, 0.3, r)[..., None]),
            core[..., None],
        )
        if kind == "moon":  # crescent: a dark bite out of the disc
            bite = smoothstep(1.0, 0.9, np.hypot(xs - (cx + 0.03) * n, ys - (cy - 0.025) * n) / (rad * n * 0.85))
            colour = lerp(colour, lerp(orange, yellow, 0.3), (bite * core)[..., None] * 0.8)
    depth_h = np.clip((v - horizon) / 0.3, 0, 1)
    hills = lerp(hexrgb("#2d4d6e"), hexrgb("#1e3b2a"), depth_h[..., None])
    stripes = 0.5 + 0.5 * np.sin((v - horizon) * 90 + np.sin(u * 9) * 2)
    hills = lerp(hills, hexrgb("#7f8a3a"), (stripes * 0.35 * (0.3 + depth_h))[..., None])
    colour = lerp(hills, colour, sky[..., None])
    # A few lit windows in the valley: soft warm dabs.
    windows = np.zeros((n, n), np.float32)
    for _ in range(16):
        wx = rng.uniform(0.32, 0.8)
        wy = float(np.interp(wx, u[0], horizon[0])) + rng.uniform(0.04, 0.1)
        cv2.ellipse(windows, (int(wx * n), int(wy * n)), (4, 2), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    windows = cv2.GaussianBlur(windows, (0, 0), 1.2)
    colour = lerp(colour, yellow, np.clip(windows * 1.5, 0, 1)[..., None])
    cyp = lerp(hexrgb("#0f1d16"), hexrgb("#3f5a2a"), (0.5 + 0.5 * np.sin(u * 120 + v * 35))[..., None] * 0.7)
    colour = lerp(colour, cyp, cypress[..., None])

    # ---- strokes
    dabs = rng.random((n, n)).astype(np.float32)
    dabs = cv2.GaussianBlur(dabs, (0, 0), 1.1)
    dabs = np.clip((dabs - dabs.mean()) / dabs.std() * 0.5 + 0.5, 0, 1)
    strokes = lic(dabs, fx, fy, 14)
    strokes = np.clip((strokes - strokes.mean()) / (strokes.std() + 1e-6) * 0.22 + 0.5, 0, 1)
    jitter = cv2.GaussianBlur(rng.standard_normal((n, n, 3)).astype(np.float32), (0, 0), 2.0)
    jitter = lic(jitter, fx, fy, 10)
    jitter /= jitter.std() + 1e-6
    jitter = 0.7 * jitter.mean(axis=2, keepdims=True) + 0.3 * jitter  # mostly value, a little hue
    paint = colour * (0.78 + 0.44 * strokes[..., None]) + 0.035 * jitter
    # ---- impasto: emboss the stroke relief, light from the upper left
    relief = cv2.GaussianBlur(strokes, (0, 0), 0.8)
    gx = cv2.Sobel(relief, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(relief, cv2.CV_32F, 0, 1, ksize=3)
    shade = np.clip(-(gx + gy) * 0.6, -0.25, 0.25)
    paint = paint * (1 + shade[..., None]) + np.clip(shade, 0, None)[..., None] * 0.15
    # Canvas weave showing through thin paint.
    weave = (np.sin(xs * 1.9) * np.sin(ys * 1.9)).astype(np.float32)
    paint += 0.012 * weave[..., None]
    return np.clip(paint * 255 + 0.5, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    parser.add_argument("--only", choices=["landscape", "subject", "ink", "swirl"], default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "landscape"):
        make_landscape(args.out / "landscape.mp4", args.out / "landscape_still.png")
    if args.only in (None, "subject"):
        make_subject(args.out / "subject.mp4", args.out / "subject_mask.mp4")
    if args.only in (None, "ink"):
        save_image(args.out / "ink_wash.png", make_ink_wash())
    if args.only in (None, "swirl"):
        save_image(args.out / "swirl_paint.png", make_swirl_paint())
    for path in sorted(args.out.iterdir()):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
