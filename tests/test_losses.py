"""Loss terms against hand-computed values on tiny tensors; per-image (B,) shapes and independence."""

import pytest
import torch

from vidstyle.losses import (
    content_loss,
    gram_matrix,
    guided_gram,
    laplacian,
    laplacian_loss,
    per_image_mse,
    style_loss,
    temporal_loss,
    tv_loss,
)

# ----------------------------------------------------------------------------- Gram matrix


def test_gram_matrix_hand_computed():
    # channel 0 = [1, 2, 3, 4], channel 1 = [0, 1, 0, 1] (flattened 2x2)
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    g = gram_matrix(f)
    # F Fᵀ = [[30, 6], [6, 2]], divided by C·H·W = 2·2·2 = 8
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 8.0
    assert g.shape == (1, 2, 2)
    assert torch.allclose(g, expected)


def test_gram_matrix_is_per_image_and_float32():
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    b = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    g = gram_matrix(torch.cat([a, b]).to(torch.bfloat16))
    assert g.dtype == torch.float32 and g.shape == (2, 2, 2)
    assert torch.allclose(g[0], gram_matrix(a)[0])
    # b: channel 0 = [2, 0, 0, 0], channel 1 = [1, 1, 1, 1]: [[4, 2], [2, 4]] / 8
    assert torch.allclose(g[1], torch.tensor([[4.0, 2.0], [2.0, 4.0]]) / 8.0)


# ----------------------------------------------------------------------------- total variation


def test_tv_loss_hand_computed():
    x = torch.tensor([[[[1.0, 2.0, 4.0], [0.0, 5.0, 5.0]]]])  # 1x1x2x3
    # vertical |differences|: |0-1|, |5-2|, |5-4| = 1, 3, 1 -> mean 5/3
    # horizontal: |2-1|, |4-2|, |5-0|, |5-5| = 1, 2, 5, 0 -> mean 2
    expected = 5.0 / 3.0 + 2.0
    value = tv_loss(x)
    assert value.shape == (1,)
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_tv_loss_is_l1_not_l2_and_zero_on_flat():
    flat = torch.full((2, 3, 4, 5), 0.3)
    assert torch.equal(tv_loss(flat), torch.zeros(2))
    step = torch.zeros(1, 1, 2, 2)
    step[..., 1] = 2.0  # a vertical edge of height 2: L1 gives mean(2, 2) = 2 (L2 would give 4)
    assert tv_loss(step).item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------- Laplacian


def _hand_laplacian(img: list[list[float]]) -> list[list[float]]:
    """Valid 3x3 correlation with [[0,-1,0],[-1,4,-1],[0,-1,0]], written out term by term."""
    h, w = len(img), len(img[0])
    out = []
    for i in range(1, h - 1):
        row = []
        for j in range(1, w - 1):
            row.append(4 * img[i][j] - img[i - 1][j] - img[i + 1][j] - img[i][j - 1] - img[i][j + 1])
        out.append(row)
    return out


def test_laplacian_single_pixel_by_hand():
    x = torch.tensor([[[[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [0.0, 4.0, 0.0]]]])
    lap = laplacian(x, pool=1)
    assert lap.shape == (1, 1, 1, 1)
    assert lap.item() == pytest.approx(4 * 9 - 1 - 2 - 3 - 4)  # 26


def test_laplacian_valid_conv_per_channel():
    c0 = [[1.0, 2.0, 0.0, 5.0, 1.0], [3.0, 7.0, 1.0, 0.0, 2.0], [0.0, 4.0, 6.0, 2.0, 8.0], [9.0, 1.0, 3.0, 3.0, 0.0]]
    c1 = [[float((i * 5 + j) % 7) for j in range(5)] for i in range(4)]
    x = torch.tensor([[c0, c1]])
    lap = laplacian(x, pool=1)
    assert lap.shape == (1, 2, 2, 3)  # no padding: (4-2) x (5-2)
    assert torch.allclose(lap[0, 0], torch.tensor(_hand_laplacian(c0)))
    assert torch.allclose(lap[0, 1], torch.tensor(_hand_laplacian(c1)))


def test_laplacian_pools_before_the_kernel():
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    pooled = torch.nn.functional.avg_pool2d(x, 4)
    assert torch.allclose(laplacian(x, pool=4), laplacian(pooled, pool=1))
    assert laplacian(x, pool=4).shape == (1, 3, 1, 1)


def test_laplacian_loss_zero_for_identical_and_positive_otherwise():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    target = laplacian(x, pool=4)
    loss = laplacian_loss(x, target, pool=4)
    assert loss.shape == (2,)
    assert torch.equal(loss, torch.zeros(2))
    y = x.clone()
    y[1] = torch.rand(3, 16, 16, generator=gen)
    loss = laplacian_loss(y, target, pool=4)
    assert loss[0].item() == 0.0 and loss[1].item() > 0


# ----------------------------------------------------------------------------- temporal


def test_temporal_loss_hand_value_and_mask():
    x = torch.zeros(1, 3, 1, 2)
    w = torch.zeros(1, 3, 1, 2)
    x[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0])  # trusted pixel: squares 1 + 4 + 9 = 14
    x[0, :, 0, 1] = torch.tensor([50.0, 50.0, 50.0])  # untrusted pixel: ignored
    mask = torch.tensor([[[[1.0, 0.0]]]])
    value = temporal_loss(x, w, mask)
    assert value.shape == (1,)
    assert value.item() == pytest.approx(14.0 / (3 * 1 * 2))  # D = 3·H·W


def test_temporal_loss_zero_where_mask_is_zero_even_if_different():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 4, 5, generator=gen)
    w = torch.rand(2, 3, 4, 5, generator=gen)
    assert torch.equal(temporal_loss(x, w, torch.zeros(2, 1, 4, 5)), torch.zeros(2))
    assert torch.equal(temporal_loss(x, x, torch.ones(2, 1, 4, 5)), torch.zeros(2))


def test_temporal_loss_fractional_mask_and_per_image():
    x = torch.ones(2, 3, 2, 2)
    w = torch.zeros(2, 3, 2, 2)
    mask = torch.zeros(2, 1, 2, 2)
    mask[0] = 0.5  # every pixel half-trusted: 0.5 · 12 / 12
    mask[1, 0, 0, 0] = 1.0  # one pixel of four: 3 / 12
    value = temporal_loss(x, w, mask)
    assert value.tolist() == pytest.approx([0.5, 0.25])


# ----------------------------------------------------------------------------- style and content


def _features(seed: int, batch: int = 2) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(batch, 4, 6, 6, generator=gen), "b": torch.rand(batch, 8, 3, 3, generator=gen)}


def test_style_loss_zero_for_own_grams_and_per_image_shape():
    feats = _features(0)
    own = {k: gram_matrix(v) for k, v in feats.items()}  # (B, C, C) per-image targets
    loss = style_loss(feats, own)
    assert loss.shape == (2,)
    assert torch.allclose(loss, torch.zeros(2), atol=1e-12)


def test_style_loss_shared_target_and_layer_weights():
    feats = _features(0)
    other = _features(5, batch=1)
    target = {k: gram_matrix(v)[0] for k, v in other.items()}  # (C, C), shared by the batch
    per_layer = {
        k: ((gram_matrix(feats[k]) - target[k]) ** 2).flatten(1).mean(dim=1) for k in feats
    }  # mean over C·C entries
    plain = style_loss(feats, target)
    assert torch.allclose(plain, per_layer["a"] + per_layer["b"])
    weighted = style_loss(feats, target, {"a": 2.0, "b": 0.5})
    assert torch.allclose(weighted, 2.0 * per_layer["a"] + 0.5 * per_layer["b"])
    only_b = style_loss(feats, target, {"a": 0.0, "b": 1.0})
    assert torch.allclose(only_b, per_layer["b"])
    with pytest.raises(ValueError):
        style_loss(feats, target, {"a": 0.0, "b": 0.0})


def test_content_loss_per_image_with_broadcast_target():
    x = torch.zeros(2, 1, 2, 2)
    x[1] = 2.0
    target = torch.ones(1, 1, 2, 2)
    loss = content_loss(x, target)
    assert loss.shape == (2,)
    assert loss.tolist() == pytest.approx([1.0, 1.0])
    x[0, 0, 0, 0] = 3.0  # squared errors 4, 1, 1, 1 -> mean 7/4
    assert content_loss(x, target).tolist() == pytest.approx([7.0 / 4.0, 1.0])
    assert torch.equal(per_image_mse(x, x), torch.zeros(2))


def test_content_loss_gradient_keeps_the_channels_last_layout():
    """conv4_2's content term: the gradient of a channels_last map comes back channels_last (an NCHW one is read
    strided by the ReLU and convolution backward), with the values of the NCHW computation."""
    torch.manual_seed(0)
    f = torch.randn(2, 8, 5, 7, dtype=torch.float64)
    target = torch.randn(1, 8, 5, 7, dtype=torch.float64)
    nchw = f.clone().requires_grad_(True)
    nhwc = f.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    a, b = content_loss(nchw, target), content_loss(nhwc, target.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(a, b) and torch.allclose(a, ((f - target) ** 2).mean(dim=(1, 2, 3)).float())
    (grad_a,) = torch.autograd.grad(a.sum(), nchw)  # not .backward(): a leaf's .grad is copied to its own layout
    (grad_b,) = torch.autograd.grad(b.sum(), nhwc)
    assert torch.allclose(grad_a, grad_b)
    assert grad_b.is_contiguous(memory_format=torch.channels_last) and not grad_b.is_contiguous()


def test_summed_batch_loss_gives_each_image_its_own_gradient():
    """Batching must not couple frames: d(Σ_b L_b)/dx_b equals dL/dx of image b alone."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 8, 8, generator=gen)
    prev = torch.rand(2, 3, 8, 8, generator=gen)
    mask = (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float()
    target = torch.rand(3, 3, generator=gen)

    def total(images, p, m):
        feats = {"a": images}
        return style_loss(feats, {"a": target}) + tv_loss(images) + temporal_loss(images, p, m)

    xb = x.clone().requires_grad_(True)
    (grad_batch,) = torch.autograd.grad(total(xb, prev, mask).sum(), xb)
    for i in range(2):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (grad_one,) = torch.autograd.grad(total(xi, prev[i : i + 1], mask[i : i + 1]).sum(), xi)
        assert torch.allclose(grad_batch[i : i + 1], grad_one, atol=1e-7)


def test_gram_matrices_do_not_depend_on_the_memory_layout():
    """The bf16 VGG pass hands channels_last maps to the Grams: same values and gradients as NCHW."""
    torch.manual_seed(0)
    f = torch.randn(2, 8, 5, 7, dtype=torch.float64)
    mask = torch.rand(2, 1, 5, 7, dtype=torch.float64)
    for gram in (gram_matrix, lambda x: guided_gram(x, mask)):
        nchw = f.clone().requires_grad_(True)
        nhwc = f.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        assert not nhwc.is_contiguous()
        weights = torch.randn(2, 8, 8, dtype=torch.float64)
        a, b = gram(nchw), gram(nhwc)
        (a * weights).sum().backward()
        (b * weights).sum().backward()
        assert torch.allclose(a, b) and torch.allclose(nchw.grad, nhwc.grad)


def test_low_precision_grams_sum_in_chunks_with_the_float32_values_and_gradients(monkeypatch):
    """bf16 channels_last maps (the VGG pass under autocast) take the chunked path: within bf16 rounding of the
    float64 Gram and its gradient, a tail of rows shorter than a chunk included, each image on its own."""
    import vidstyle.losses as losses

    monkeypatch.setattr(losses, "GRAM_CHUNK", 8)
    torch.manual_seed(0)
    exact = torch.randn(2, 6, 5, 7, dtype=torch.float64)  # 35 pixels: four chunks of 8 and a tail of 3
    weights = torch.randn(2, 6, 6, dtype=torch.float64)
    low = exact.to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    reference = exact.to(torch.bfloat16).double().requires_grad_(True)
    g, g_ref = gram_matrix(low), gram_matrix(reference)
    assert g.dtype == torch.float32 and g.shape == (2, 6, 6)
    assert "_ChunkedOuterSum" in g.grad_fn.next_functions[0][0].name()
    assert torch.allclose(g.double(), g_ref.double(), rtol=1e-2, atol=2e-3)
    (g * weights).sum().backward()
    (g_ref * weights).sum().backward()
    assert low.grad.dtype == torch.bfloat16
    assert torch.allclose(low.grad.double(), reference.grad, rtol=2e-2, atol=2e-2)
    # a batch is two independent problems: image 1's Gram does not see image 0
    assert torch.allclose(gram_matrix(low[1:]), g[1:])


def test_chunked_outer_sum_gradient_is_exact_in_float64(monkeypatch):
    import vidstyle.losses as losses

    monkeypatch.setattr(losses, "GRAM_CHUNK", 4)
    rows = torch.randn(2, 10, 3, dtype=torch.float64, requires_grad=True)  # two chunks and a tail of 2
    assert torch.allclose(losses._ChunkedOuterSum.apply(rows), rows.transpose(1, 2) @ rows)
    assert torch.autograd.gradcheck(losses._ChunkedOuterSum.apply, (rows,))
