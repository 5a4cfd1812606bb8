"""One stroke as SVG fragments (defs, element) that reproduce the renderer's footprint.

Texture coordinates are the renderer's: u runs along the stroke (−1 head, +1 tail), v across it
(±1 at the edges), and texel i of a tile sits at u = 2i/(W−1) − 1 (rows likewise). A stroke's
alpha is its texture mapped to the screen by an affine map per piece, colour a linear ramp in u
from the head colour to the tail colour (pad = the renderer's clamp).

- oil, rect: one rotated rectangle, one affine map (`affine_stroke`).
- Bézier: the renderer measures u and v from the nearest point of an 8-segment polyline, with the
  radius varying linearly along the curve. Each segment is a piece bounded by the bisectors
  between neighbouring segments (the nearest-segment rule); a tapering piece is split in triangles
  so the map follows the radius without steps; the ends are round caps whose radial gradients are
  the texture's end columns (`bezier_stroke`).
"""

from __future__ import annotations

import base64
import math

import cv2
import numpy as np
import torch

from vidstyle.methods.paint.brushes import TEXTURE_HEIGHT, TEXTURE_WIDTH, texture_atlas, texture_bank
from vidstyle.methods.paint.layouts import StrokeSpec
from vidstyle.methods.paint.renderer import BEZIER_SEGMENTS, MAX_ALPHA, footprint, stroke_colors

MIN_HALF_SIZE = 0.35  # px: the renderer's floor for half-widths and radii
CAP_STOPS = 12  # radial-gradient stops describing a Bézier cap's profile
TAPER_TOLERANCE = 0.3  # px of radius change along a segment below which one affine map is exact enough
HALF_DISC = "M0,-1 A1,1 0 0 1 0,1 Z"  # the x ≥ 0 half of the unit disc

# texture image coordinates (X, Y; texel i covers [i, i+1)) → (u, v)
TEXEL_TO_UV = np.array(
    [
        [2.0 / (TEXTURE_WIDTH - 1), 0.0, -1.0 - 1.0 / (TEXTURE_WIDTH - 1)],
        [0.0, 2.0 / (TEXTURE_HEIGHT - 1), -1.0 - 1.0 / (TEXTURE_HEIGHT - 1)],
        [0.0, 0.0, 1.0],
    ]
)


# --- formatting -----------------------------------------------------------------------------------
def num(v: float, digits: int = 2) -> str:
    """A coordinate: `digits` decimals (2: 1/100 px), no trailing zeros."""
    text = f"{float(v):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def colour(rgb) -> str:
    r, g, b = (int(round(float(np.clip(c, 0.0, 1.0)) * 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def points(poly, digits: int = 2, x_digits: int | None = None) -> str:
    return " ".join(f"{num(x, x_digits or digits)},{num(y, digits)}" for x, y in poly)


def matrix(m: np.ndarray) -> str:
    values = (m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])
    if not all(math.isfinite(v) for v in values):
        return "scale(0)"
    return "matrix(" + ",".join(f"{v:.6g}" for v in values[:4]) + f",{num(values[4])},{num(values[5])})"


def ramp(gid: str, ends: tuple[np.ndarray, np.ndarray], head: np.ndarray, tail: np.ndarray) -> str:
    """A linear gradient in user space from `head` (colour ends[0]) to `tail` (ends[1])."""
    stops = "".join(f'<stop offset="{o}" stop-color="{colour(c)}"/>' for o, c in zip((0, 1), ends))
    return (
        f'<linearGradient id="{gid}" gradientUnits="userSpaceOnUse" x1="{num(head[0])}" y1="{num(head[1])}" '
        f'x2="{num(tail[0])}" y2="{num(tail[1])}">{stops}</linearGradient>'
    )


def mask_region(pts: np.ndarray, margin: float = 1.0) -> str:
    """x, y, width, height of a mask covering `pts` (N, 2), on whole pixels: a rasterizer that
    renders the mask into an offscreen image then applies it without resampling it."""
    x0, y0 = np.floor(pts.min(axis=0) - margin)
    x1, y1 = np.ceil(pts.max(axis=0) + margin)
    return f'x="{int(x0)}" y="{int(y0)}" width="{int(x1 - x0)}" height="{int(y1 - y0)}"'


def opacity(spec: StrokeSpec, p: np.ndarray) -> str:
    return f"{float(np.clip(p[spec.alpha], 0.0, 1.0)) * MAX_ALPHA:.4f}"


# --- affine maps ----------------------------------------------------------------------------------
def translate_rotate(origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """3×3: local x along the unit `direction`, local y 90° clockwise on screen from it, at `origin`."""
    dx, dy = direction
    return np.array([[dx, -dy, origin[0]], [dy, dx, origin[1]], [0.0, 0.0, 1.0]])


def from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3×3 affine map taking the three points `src` (3, 2) to `dst` (3, 2)."""
    a = np.concatenate((src, np.ones((3, 1))), axis=1)
    solved = np.linalg.lstsq(a, dst, rcond=None)[0]  # (3, 2): [x y 1] @ solved = dst
    return np.concatenate((solved.T, [[0.0, 0.0, 1.0]]), axis=0)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:2, :2].T + m[:2, 2]


# --- oil and rect ---------------------------------------------------------------------------------
def affine_stroke(spec: StrokeSpec, p: np.ndarray, variant: int, i: int, width: int, height: int) -> tuple[str, str]:
    """(defs, element) of an oil/rect stroke: its rotated rectangle masked by its texture."""
    long_side = float(max(width, height))
    ix, iy = spec.centre
    centre = np.array([p[ix] * width, p[iy] * height])
    hw = max(p[spec.length] * 0.5 * long_side, MIN_HALF_SIZE)
    hh = max(p[spec.thickness] * 0.5 * long_side, MIN_HALF_SIZE)
    theta = float(p[spec.angle])
    along = np.array([math.cos(theta), math.sin(theta)])
    frame = translate_rotate(centre, along)
    texel = frame @ np.diag([hw, hh, 1.0]) @ TEXEL_TO_UV  # image → screen
    corners = apply(texel, np.array([[0, 0], [TEXTURE_WIDTH, 0], [TEXTURE_WIDTH, TEXTURE_HEIGHT], [0, TEXTURE_HEIGHT]]))
    defs = (
        f'<mask id="m{i}" maskUnits="userSpaceOnUse" {mask_region(corners)}>'
        f'<use xlink:href="#tex{variant}" transform="{matrix(texel)}"/></mask>'
    )
    c0 = p[spec.color0]
    if spec.two_colours:  # the ramp runs along u from the head (u = −1) to the tail (u = 1), clamped
        defs += ramp(f"g{i}", (c0, p[spec.color1]), centre - hw * along, centre + hw * along)
        fill = f"url(#g{i})"
    else:
        fill = colour(c0)
    element = (
        f'<polygon class="stroke" points="{points(corners)}" fill="{fill}" fill-opacity="{opacity(spec, p)}" '
        f'mask="url(#m{i})"/>'
    )
    return defs, element


# --- Bézier ---------------------------------------------------------------------------------------
def polyline(spec: StrokeSpec, p: np.ndarray, width: int, height: int) -> np.ndarray:
    """(BEZIER_SEGMENTS + 1, 2) points of the curve at t = s / BEZIER_SEGMENTS, in px (the renderer's)."""
    (x0, y0), (x1, y1), (x2, y2) = ((p[ix] * width, p[iy] * height) for ix, iy in spec.points)
    t = np.linspace(0.0, 1.0, BEZIER_SEGMENTS + 1)[:, None]
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t * t
    return np.concatenate((a * x0 + b * x1 + c * x2, a * y0 + b * y1 + c * y2), axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _keep_side(poly: list[np.ndarray], origin: np.ndarray, normal: np.ndarray) -> list[np.ndarray]:
    """The part of a convex polygon where (q − origin)·normal ≥ 0 (Sutherland–Hodgman, one edge)."""
    out: list[np.ndarray] = []
    for k, q in enumerate(poly):
        r = poly[(k + 1) % len(poly)]
        dq, dr = float((q - origin) @ normal), float((r - origin) @ normal)
        if dq >= 0:
            out.append(q)
        if dq * dr < 0:
            out.append(q + (r - q) * (dq / (dq - dr)))
    return out


def _half_piece(a, b, cut_a, cut_b, reach: float) -> tuple[list[np.ndarray], float]:
    """One side of a segment's piece: from the segment out to `reach` along the two cut lines, a
    triangle where the cut lines meet sooner (the inside of a bend). Also returns how far from the
    segment they meet (inf: not within reach)."""
    end_a, end_b = a + cut_a * reach, b + cut_b * reach
    m = np.stack((cut_a, -cut_b), axis=1)
    if abs(np.linalg.det(m)) > 1e-9:
        sa, sb = np.linalg.solve(m, b - a)
        if 0 < sa < reach and 0 < sb < reach:
            apex = a + cut_a * sa
            normal = _unit(np.array([-(b - a)[1], (b - a)[0]]))
            return [a, apex, b], abs(float((apex - a) @ normal))
    return [a, end_a, end_b, b], math.inf


def cap_gradient(gid: str, stroke_type: str, variant: int, column: int) -> str:
    """Radial profile of a cap: the texture's end column, averaged over both sides of the curve."""
    rows = texture_bank(stroke_type)[variant][:, column]
    v = np.linspace(-1.0, 1.0, TEXTURE_HEIGHT)
    stops = []
    for k in range(CAP_STOPS + 1):
        d = k / CAP_STOPS
        a = 0.5 * (np.interp(d, v, rows) + np.interp(-d, v, rows))
        stops.append(f'<stop offset="{num(d)}" stop-color="#fff" stop-opacity="{a:.3f}"/>')
    head = f'<radialGradient id="{gid}" gradientUnits="userSpaceOnUse" cx="0" cy="0" r="1">'
    return head + "".join(stops) + "</radialGradient>"


def _textured(i: int, key: str, poly: list[np.ndarray], uv_to_screen: np.ndarray, variant: int) -> tuple[str, str]:
    """(clipPath def, mask item): the texture mapped by `uv_to_screen`, shown inside `poly` (screen
    coordinates; the clip is written in the texture's own space, the user space of the <use>)."""
    texel = uv_to_screen @ TEXEL_TO_UV
    inside = points(apply(np.linalg.inv(texel), np.array(poly)), digits=3)
    clip = f'<clipPath id="k{i}_{key}"><polygon points="{inside}"/></clipPath>'
    item = f'<use clip-path="url(#k{i}_{key})" xlink:href="#tex{variant}" transform="{matrix(texel)}"/>'
    return clip, item


def _piece_regions(a, b, ta: float, tb: float, ra: float, rb: float, piece: list[np.ndarray]):
    """[(polygon, (u, v) → screen map)] covering one segment's piece: one affine map when the
    radius hardly changes along it, else three (a centre wedge and one triangle per side) that
    match the renderer at the segment's ends and band edges."""
    d = _unit(b - a)
    normal = np.array([-d[1], d[0]])
    ua, ub = 2 * ta - 1, 2 * tb - 1
    if abs(rb - ra) < TAPER_TOLERANCE:
        mid = 0.5 * (ra + rb)
        return [(piece, from_points(np.array([[ua, 0.0], [ub, 0.0], [ub, 1.0]]), np.array([a, b, b + normal * mid])))]
    regions = []
    splits = {}
    for side in (1.0, -1.0):
        edge = b + normal * side * rb - a  # from a to the band's edge at b
        split = _unit(np.array([-edge[1], edge[0]]))
        splits[side] = split if float((b - a) @ split) > 0 else -split  # oriented toward b
    far = _keep_side(_keep_side(piece, a, splits[1.0]), a, splits[-1.0])
    centre_map = from_points(np.array([[ua, 0.0], [ub, 0.0], [ub, 1.0]]), np.array([a, b, b + normal * rb]))
    regions.append((far, centre_map))
    for side in (1.0, -1.0):
        near = _keep_side(_keep_side(piece, a, normal * side), a, -splits[side])
        uv = np.array([[ua, 0.0], [ub, side], [ua, side]])
        regions.append((near, from_points(uv, np.array([a, b + normal * side * rb, a + normal * side * ra]))))
    return [(poly, m) for poly, m in regions if len(poly) >= 3]


def bezier_stroke(
    spec: StrokeSpec, p: np.ndarray, variant: int, i: int, width: int, height: int, caps: set[str]
) -> tuple[str, str]:
    """(defs, element) of a Bézier stroke: per-segment textured pieces and round caps, colour
    from one gradient in the pieces' own frames (x = curve parameter t). `caps` collects the cap
    gradients already defined (one per texture variant and end, shared by all strokes)."""
    long_side = float(max(width, height))
    r0, r1 = np.maximum(np.asarray(p[spec.radii], np.float64) * long_side, MIN_HALF_SIZE)
    pts = polyline(spec, p, width, height)
    n = BEZIER_SEGMENTS
    c0, c1 = np.clip(p[spec.color0], 0, 1), np.clip(p[spec.color1], 0, 1)
    reach = 1.25 * max(r0, r1) + 1.5  # pieces reach this far from the curve (the texture is 0 beyond r)
    dirs = [_unit(pts[s + 1] - pts[s]) for s in range(n)]
    normals = [np.array([-d[1], d[0]]) for d in dirs]
    # nearest-segment boundaries: the bisector of the two normals through each joint
    cuts = [normals[0]] + [_unit(normals[s - 1] + normals[s]) for s in range(1, n)] + [normals[-1]]
    defs = [ramp(f"g{i}", (c0, c1), np.zeros(2), np.array([1.0, 0.0]))]
    masks, fills = [], []
    far = reach / 0.2  # cut lines are followed this far (they may be oblique), then the piece is cut at reach
    for s in range(n):
        a, b = pts[s], pts[s + 1]
        ta, tb = s / n, (s + 1) / n
        ra, rb = r0 + (r1 - r0) * ta, r0 + (r1 - r0) * tb
        plus, apex_plus = _half_piece(a, b, cuts[s], cuts[s + 1], far)
        minus, apex_minus = _half_piece(a, b, -cuts[s], -cuts[s + 1], far)
        if min(apex_plus, apex_minus) < max(ra, rb) + 1.0:  # a tight bend: farther segments compete in the band
            return "", bitmap_stroke(spec, p, variant, width, height)
        piece = plus + minus[-2:0:-1]  # a … b along the + side, back to a along the − side
        piece = _keep_side(_keep_side(piece, a + normals[s] * reach, -normals[s]), a - normals[s] * reach, normals[s])
        if len(piece) < 3:
            continue
        # colour: the piece in its own frame, x = curve parameter t, y = px along the normal
        per_t = float(np.hypot(*(b - a))) / (tb - ta)
        frame = translate_rotate(a, dirs[s]) @ np.array([[per_t, 0.0, -ta * per_t], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        if per_t > 1e-9:
            in_frame = points(apply(np.linalg.inv(frame), np.array(piece)), x_digits=5)  # x is t: 1/100 is too coarse
            fills.append(f'<polygon points="{in_frame}" transform="{matrix(frame)}"/>')
        for k, (poly, uv_to_screen) in enumerate(_piece_regions(a, b, ta, tb, ra, rb, piece)):
            clip, item = _textured(i, f"{s}_{k}", poly, uv_to_screen, variant)
            defs.append(clip)
            masks.append(item)
    for end, point, direction, radius, rgb, column in (
        ("0", pts[0], -dirs[0], r0, c0, 0),
        ("1", pts[-1], dirs[-1], r1, c1, TEXTURE_WIDTH - 1),
    ):
        gid = f"cap{variant}_{end}"
        if gid not in caps:
            caps.add(gid)
            defs.append(cap_gradient(gid, spec.name, variant, column))
        # a half disc beyond the end, where the nearest point of the curve is the end itself; a
        # unit half disc scaled to the radius, so one gradient per texture column serves every stroke
        disc = matrix(translate_rotate(point, direction) @ np.diag([radius, radius, 1.0]))
        masks.append(f'<path d="{HALF_DISC}" transform="{disc}" fill="url(#{gid})"/>')
        fills.append(f'<path d="{HALF_DISC}" transform="{disc}" fill="{colour(rgb)}"/>')
    defs.append(
        f'<mask id="m{i}" maskUnits="userSpaceOnUse" {mask_region(pts, reach)}>'
        f'<g shape-rendering="crispEdges">{"".join(masks)}</g></mask>'
    )
    element = (
        f'<g class="stroke" mask="url(#m{i})" fill="url(#g{i})" fill-opacity="{opacity(spec, p)}" '
        f'shape-rendering="crispEdges">{"".join(fills)}</g>'
    )
    return "".join(defs), element


def bitmap_stroke(spec: StrokeSpec, p: np.ndarray, variant: int, width: int, height: int) -> str:
    """The stroke rendered by the renderer into an image on the output's pixel grid: for Bézier
    strokes bent so tightly that pieces between bisectors cannot describe them."""
    long_side = float(max(width, height))
    reach = float(np.max(p[spec.radii])) * long_side + 2.0
    pts = np.array([(p[ix] * width, p[iy] * height) for ix, iy in spec.points])
    x0, y0 = np.maximum(np.floor(pts.min(axis=0) - reach), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(pts.max(axis=0) + reach), (width, height)).astype(int)
    if x1 <= x0 or y1 <= y0:
        return '<g class="stroke"/>'
    params = torch.from_numpy(p.astype(np.float32)).view(1, 1, -1)
    xs = torch.arange(x0, x1, dtype=torch.float32).view(1, 1, -1) + 0.5
    ys = torch.arange(y0, y1, dtype=torch.float32).view(1, -1, 1) + 0.5
    with torch.no_grad():
        alpha, t = footprint(spec, params, torch.tensor([[variant]]), xs, ys, height, width, texture_atlas(spec.name))
        c0, c1 = stroke_colors(spec, params)
        rgb = c0[0, 0, :, None, None] + (0.0 if c1 is None else t[0] * (c1 - c0)[0, 0, :, None, None])
    alpha = alpha[0, 0].numpy() * MAX_ALPHA  # the footprint includes the stroke's alpha
    rgba = np.concatenate((rgb.permute(1, 2, 0).numpy(), alpha[..., None]), axis=2)
    bgra = cv2.cvtColor(np.clip(rgba * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGBA2BGRA)
    ok, png = cv2.imencode(".png", bgra)
    if not ok:
        raise RuntimeError("PNG encoding of a stroke failed")
    uri = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")
    return f'<image class="stroke" x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" xlink:href="{uri}"/>'
