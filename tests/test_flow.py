"""Flow conventions, warps and Ruder et al.'s occlusion tests on tiny synthetic images."""

import math

import cv2
import numpy as np
import pytest
import torch

from vidstyle import flow as F

H, W = 48, 64
M = 8  # interior margin for checks that DIS / borders may spoil


def texture(h: int, w: int, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smooth random RGB uint8 texture: enough structure for DIS, smooth enough for bilinear."""
    r = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    r = cv2.GaussianBlur(r, (0, 0), sigma)
    r = (r - r.min()) / (r.max() - r.min())
    return (r * 255.0 + 0.5).astype(np.uint8)


def shifted_pair(dx: int, dy: int, h: int = H, w: int = W, seed: int = 0):
    """(a, b) where b is a with its content moved by (+dx, +dy): b(x) = a(x - d)."""
    big = texture(h + 40, w + 40, seed)
    a = big[20 : 20 + h, 20 : 20 + w]
    b = big[20 - dy : 20 - dy + h, 20 - dx : 20 - dx + w]
    return a, b


# ----------------------------------------------------------------------------- warp


def test_warp_integer_translation_recovers_original():
    a, b = shifted_pair(3, 2)
    # b(x + (3, 2)) = a(x): reading b at x + d undoes the move
    back = F.warp(b, F.translate_flow(H, W, 3, 2))
    assert back.dtype == np.uint8 and back.shape == a.shape
    np.testing.assert_array_equal(back[: H - 2, : W - 3], a[: H - 2, : W - 3])


def test_warp_subpixel_translation_matches_analytic_image():
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)

    def img(x, y):
        return 0.5 + 0.25 * np.sin(0.3 * x + 0.1 * y) + 0.2 * np.cos(0.17 * y - 0.05 * x)

    dx, dy = 0.5, -0.25
    out = F.warp(img(xs, ys).astype(np.float32), F.translate_flow(H, W, dx, dy))
    expected = img(xs + dx, ys + dy)
    err = np.abs(out - expected)[2:-2, 2:-2]
    assert err.max() < 0.01  # bilinear + cv2's 1/32-px weights on a smooth image


def test_warp_shapes_dtypes_and_borders():
    rng = np.random.default_rng(1)
    flow = F.translate_flow(H, W, 1.5, -0.5)
    for img in (
        rng.random((H, W), dtype=np.float32),
        rng.random((H, W, 1)).astype(np.float64),
        rng.random((H, W, 6), dtype=np.float32),
        texture(H, W),
    ):
        out = F.warp(img, flow)
        assert out.shape == img.shape and out.dtype == img.dtype
    six = rng.random((H, W, 6), dtype=np.float32)
    np.testing.assert_allclose(F.warp(six, flow)[..., 4], F.warp(six[..., 4], flow), atol=1e-6)
    ones = np.ones((H, W), np.float32)
    far = F.translate_flow(H, W, 100, 0)
    assert np.all(F.warp(ones, far, border="constant") == 0)
    assert np.all(F.warp(ones, far, border="replicate") == 1)
    # reflect is about the edge pixel centre: reading x = -1 gives column 1
    ramp = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    refl = F.warp(ramp, F.translate_flow(H, W, -1, 0), border="reflect")
    assert refl[0, 0] == 1.0
    with pytest.raises(ValueError):
        F.warp(ones, far, border="wrap")
    with pytest.raises(ValueError):
        F.warp(ones, np.zeros((H, W + 1, 2), np.float32))


def _smooth_flow(seed: int, scale: float) -> np.ndarray:
    r = np.random.default_rng(seed).standard_normal((H, W, 2)).astype(np.float32)
    r = cv2.GaussianBlur(r, (0, 0), 6.0)
    return r / np.abs(r).max() * scale


@pytest.mark.parametrize("border", ["replicate", "constant", "reflect"])
def test_warp_torch_matches_numpy(border):
    img = texture(H, W, seed=3).astype(np.float32) / 255.0
    flow = _smooth_flow(4, 6.0)  # reaches outside the frame near the edges
    ref = F.warp(img, flow, border=border)
    t_img = torch.from_numpy(img).permute(2, 0, 1)[None]
    out = F.warp_torch(t_img, torch.from_numpy(flow)[None], border=border)
    out = out[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 0.02  # cv2 quantizes bilinear weights to 1/32 px
    assert np.abs(out - ref).mean() < 2e-3
    # integer flows involve no interpolation: exact agreement
    iflow = np.round(flow)
    ref_i = F.warp(img, iflow, border=border)
    out_i = F.warp_torch(t_img, torch.from_numpy(iflow)[None], border=border)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out_i, ref_i, atol=1e-6)


def test_warp_torch_is_differentiable_and_broadcasts_flow():
    img = torch.rand(2, 3, H, W, dtype=torch.float64, requires_grad=True)
    flow = torch.from_numpy(_smooth_flow(5, 3.0)).double().requires_grad_(True)  # H×W×2, broadcast
    out = F.warp_torch(img, flow)
    assert out.shape == img.shape
    out.square().sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0
    assert flow.grad is not None and torch.isfinite(flow.grad).all() and flow.grad.abs().sum() > 0


def test_pixel_area_convention_samples_the_same_points_as_warp_torch():
    """The painter used to warp with pixel centres at i + ½ and grid_sample(align_corners=False);
    that reads the same point x + flow(x) as warp_torch (centres at i, align_corners=True), so
    the two differ by float rounding only: the conventions differ by half a pixel in *where a pixel
    centre is*, not in what is sampled."""
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, H, W, generator=gen)
    flows = (torch.rand(2, H, W, 2, generator=gen) - 0.5) * 9.0  # sub-pixel, some outside the frame
    xs = torch.arange(W, dtype=torch.float32).view(1, 1, W) + 0.5
    ys = torch.arange(H, dtype=torch.float32).view(1, H, 1) + 0.5
    grid = torch.stack(((xs + flows[..., 0]) / W * 2 - 1, (ys + flows[..., 1]) / H * 2 - 1), dim=-1)
    area = torch.nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert (area - F.warp_torch(img, flows)).abs().max() < 2e-5


def test_out_of_frame_torch_matches_numpy_mask():
    flow = _smooth_flow(4, 6.0)
    flow[5, 7] = (-7.5, 0.0)  # x + u = −0.5: outside by the pixel-centre rule
    expected = F.out_of_frame_mask(flow)
    got = F.out_of_frame_torch(torch.from_numpy(flow)[None])[0].numpy()
    np.testing.assert_array_equal(got, expected)
    assert got[5, 7] and got.any() and not got.all()


# ----------------------------------------------------------------------------- flow


def test_compute_flow_recovers_translation_with_documented_sign():
    a, b = shifted_pair(3, 2, seed=7)
    flow = F.compute_flow(a, b)  # a(x) = b(x + (3, 2))
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    inner = flow[M:-M, M:-M]
    assert abs(float(np.median(inner[..., 0])) - 3.0) < 0.25
    assert abs(float(np.median(inner[..., 1])) - 2.0) < 0.25
    assert np.abs(inner - [3.0, 2.0]).mean() < 0.25
    # and warp(dst, flow) ≈ src
    assert np.abs(F.warp(b, flow).astype(float) - a)[M:-M, M:-M].mean() < 2.0


def test_backward_and_forward_flow_signs_for_video():
    prev, cur = shifted_pair(3, 2, h=96, w=128, seed=8)  # content moves by (+3, +2) from prev to cur
    b = F.backward_flow(cur, prev)
    f = F.forward_flow(prev, cur)
    inner = (slice(M, -M), slice(M, -M))
    np.testing.assert_allclose(np.median(b[inner].reshape(-1, 2), axis=0), [-3, -2], atol=0.25)
    np.testing.assert_allclose(np.median(f[inner].reshape(-1, 2), axis=0), [3, 2], atol=0.25)
    # float [0, 1] frames give the same flow as uint8
    bf = F.backward_flow(cur.astype(np.float32) / 255.0, prev.astype(np.float32) / 255.0)
    np.testing.assert_allclose(bf, b, atol=1e-4)
    with pytest.raises(ValueError):
        F.compute_flow(cur, prev[:-2])
    with pytest.raises(ValueError):
        F.compute_flow(cur, prev, preset="slowest")


def test_compute_flow_is_thread_safe():
    from concurrent.futures import ThreadPoolExecutor

    pairs = [shifted_pair(dx, 1, seed=dx) for dx in range(1, 5)] * 2
    serial = [F.compute_flow(a, b) for a, b in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda ab: F.compute_flow(*ab), pairs))
    for s, t in zip(serial, threaded):
        np.testing.assert_array_equal(s, t)


def test_flow_and_mask_on_translating_frames():
    prev, cur = shifted_pair(3, 2, h=96, w=128, seed=9)
    b, mask = F.flow_and_mask(cur, prev)
    assert b.shape == (96, 128, 2) and mask.shape == (96, 128) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # the content entering at the left / top has no source in the previous frame
    assert np.all(mask[:, :2] == 0) and np.all(mask[:1, :] == 0)
    assert mask[M:-M, M:-M].mean() > 0.95


# ----------------------------------------------------------------------------- masks


def test_consistent_constant_flows_only_lose_the_out_of_frame_band():
    b = F.translate_flow(H, W, 2, 0)
    f = F.translate_flow(H, W, -2, 0)
    assert not F.disocclusion_mask(b, f).any()
    assert not F.motion_boundary_mask(b).any()
    oof = F.out_of_frame_mask(b)
    assert oof[:, W - 2 :].all() and not oof[:, : W - 2].any()  # x + 2 > W - 1 only for the last 2
    mask = F.consistency_mask(b, f)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, (~oof).astype(np.float32))
    # the other direction and vertical flows
    assert F.out_of_frame_mask(F.translate_flow(H, W, -2, 0))[:, :2].all()
    up = F.out_of_frame_mask(F.translate_flow(H, W, 0, -1.5))
    assert up[:2].all() and not up[2:].any()


def test_inconsistent_patch_is_masked():
    b = F.translate_flow(H, W, 2, 0)
    f = F.translate_flow(H, W, -2, 0)
    f[10:20, 30:40] = (2.0, 0.0)  # forward flow disagrees there (in frame t−1 coordinates)
    mask = F.consistency_mask(b, f)
    expected = np.ones((H, W), np.float32)
    expected[:, W - 2 :] = 0
    expected[10:20, 28:38] = 0  # f̃(x) = f(x + b(x)) = f(x + 2) hits the patch for x in 28..37
    np.testing.assert_array_equal(mask, expected)


def test_disocclusion_threshold_hand_cases():
    zero = F.translate_flow(H, W, 0, 0)
    a_star = math.sqrt(0.5 / 0.99)  # |f|² > 0.01|f|² + 0.5 with b = 0
    assert not F.disocclusion_mask(zero, F.translate_flow(H, W, a_star - 0.01, 0)).any()
    assert F.disocclusion_mask(zero, F.translate_flow(H, W, a_star + 0.01, 0)).all()
    # b = (10, 0), f̃ = (−10 + d, 0): d² > 0.01(100 + (10 − d)²) + 0.5
    b = F.translate_flow(H, W, 10, 0)
    assert F.disocclusion_mask(b, F.translate_flow(H, W, -8.5, 0)).all()  # 2.25 > 2.2225
    assert not F.disocclusion_mask(b, F.translate_flow(H, W, -8.55, 0)).any()  # 2.1025 < 2.231


def test_motion_boundary_flags_sharp_edges_only():
    b = F.translate_flow(H, W, 0, 0)
    b[:, 32:, 0] = 5.0
    mb = F.motion_boundary_mask(b)
    cols = np.flatnonzero(mb.any(axis=0))
    np.testing.assert_array_equal(cols, [31, 32])  # central differences of 2.5 on both sides
    assert mb[:, [31, 32]].all()
    # a gentle linear ramp is fine; threshold at |b| = 0 is |∇b|² > 0.002, k² vs 0.002
    xs = np.arange(W, dtype=np.float32)
    for k, flagged_at_zero in ((0.044, False), (0.046, True)):
        ramp = F.translate_flow(H, W, 0, 0)
        ramp[..., 0] = k * xs
        mb = F.motion_boundary_mask(ramp)
        assert bool(mb[:, 0].all()) == flagged_at_zero and bool(mb[:, 0].any()) == flagged_at_zero
        assert not mb[:, 10:].any()  # 0.01·|b|² raises the bar away from x = 0
    # vertical edges too
    bv = F.translate_flow(H, W, 0, 0)
    bv[24:, :, 1] = -4.0
    np.testing.assert_array_equal(np.flatnonzero(F.motion_boundary_mask(bv).any(axis=1)), [23, 24])


# ----------------------------------------------------------------------------- helpers


def test_resize_flow_scales_vectors():
    flow = F.translate_flow(H, W, 2.0, 1.0)
    up = F.resize_flow(flow, 2 * H, 2 * W)
    assert up.shape == (2 * H, 2 * W, 2)
    np.testing.assert_allclose(up[..., 0], 4.0, atol=1e-5)
    np.testing.assert_allclose(up[..., 1], 2.0, atol=1e-5)
    down = F.resize_flow(flow, H // 2, W // 4)
    np.testing.assert_allclose(down[..., 0], 0.5, atol=1e-5)
    np.testing.assert_allclose(down[..., 1], 0.5, atol=1e-5)
    same = F.resize_flow(flow, H, W)
    np.testing.assert_array_equal(same, flow)
    assert same is not flow


def test_advect_residual_moves_the_stylization_not_the_input():
    """Hand-computed: the residual output − input moves along the flow; this frame's own input stays put."""
    content_prev = np.zeros((4, 6, 3), np.uint8)
    content_prev[:, 1] = 255  # a white column at x = 1
    output_prev = np.full((4, 6, 3), 0.25, np.float32)  # stylization: +0.25 everywhere but the white column
    output_prev[:, 1] = 0.5  # there: −0.5
    content = np.full((4, 6, 3), 51, np.uint8)  # this frame's input: 0.2 everywhere
    # zero flow: content + (output_prev − content_prev)
    untrusted = np.zeros((4, 6), np.float32)
    out = F.advect_residual(output_prev, content_prev, content, np.zeros((4, 6, 2), np.float32), untrusted)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], [0.45, 0.0, 0.45, 0.45, 0.45, 0.45], atol=1e-6)  # 0.2 − 0.5 clips at 0
    # the picture moved right by 2 px: this frame reads the residual at x − 2
    out = F.advect_residual(output_prev, content_prev, content, F.translate_flow(4, 6, -2.0, 0.0), untrusted)
    np.testing.assert_allclose(out[0, :, 0], [0.45, 0.45, 0.45, 0.0, 0.45, 0.45], atol=1e-6)
    # a linear ramp of residual, half a pixel: interpolated exactly (bicubic reproduces lines), the input not moved
    ramp = np.tile(np.arange(6, dtype=np.float32)[None, :, None] * 0.05, (4, 1, 3))
    out = F.advect_residual(ramp, np.zeros_like(content), content, F.translate_flow(4, 6, -0.5, 0.0), untrusted)
    np.testing.assert_allclose(out[0, 2:5, 0], 0.2 + (np.arange(2, 5) - 0.5) * 0.05, atol=2e-3)


def test_cubic_warp_keeps_fine_detail_that_bilinear_blurs():
    stripes = np.tile(np.array([0, 0, 1, 1], np.float32), 8)[None, :].repeat(8, 0)  # a 4-pixel period
    half = F.translate_flow(8, 32, 0.5, 0.0)
    inner = slice(4, 28)
    linear = F.warp(stripes, half)[:, inner].std()
    cubic = F.warp(stripes, half, interpolation="cubic")[:, inner].std()
    assert linear < 0.75 * stripes[:, inner].std() and cubic > 1.15 * linear
    with pytest.raises(ValueError, match="interpolation"):
        F.warp(stripes, half, interpolation="lanczos")


def test_advect_residual_is_the_moved_output_where_trusted_and_the_moved_residual_where_not():
    rng = np.random.default_rng(0)
    prev_in = rng.integers(0, 256, (16, 20, 3)).astype(np.uint8)
    prev_out = rng.random((16, 20, 3), dtype=np.float32) * 0.5 + 0.25
    this_in = rng.integers(0, 256, (16, 20, 3)).astype(np.uint8)  # nothing like the previous input
    flow = F.translate_flow(16, 20, 1.0, -1.0)
    trust = np.zeros((16, 20), np.float32)
    trust[:, :10] = 1.0
    out = F.advect_residual(prev_out, prev_in, this_in, flow, trust)
    moved = np.clip(F.warp(prev_out, flow, interpolation="cubic"), 0, 1)
    np.testing.assert_allclose(out[:, :10], moved[:, :10], atol=1e-6)  # trusted: the previous output, moved
    residual = F.warp(prev_out - prev_in / 255.0, flow, interpolation="cubic")
    expected = np.clip(this_in / 255.0 + residual, 0, 1)
    np.testing.assert_allclose(out[:, 10:], expected[:, 10:], atol=1e-5)  # untrusted: this input + the residual
