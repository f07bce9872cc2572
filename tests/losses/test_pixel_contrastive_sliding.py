"""Tests of the sliding-window mode of the pixel contrastive loss (beyond the paper).

The window of pixel (y, x) holds the HR pixels (y + dy, x + dx), dy, dx in [-(r//2), r-1-r//2],
that lie inside the image; positives are the window pixels equal to HR(y, x) in every channel.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastive_sr_losses.functional.regions import window_extent
from contrastive_sr_losses.losses.pixel_contrastive import PixelContrastiveLoss, pixel_contrastive_loss
from tests._pairs import make_pair

BACKENDS = ["reference", "torch"]


# ------------------------------------------------------------------------------------------------
# an independent oracle: the definition with Python loops over pixels and window offsets
# ------------------------------------------------------------------------------------------------
def naive_sliding_map(sr: torch.Tensor, hr: torch.Tensor, region: int, temperature: float = 1.0) -> torch.Tensor:
    n, _, h, w = sr.shape
    lo, hi = -(region // 2), region - 1 - region // 2
    s, t = sr.double(), hr.double()
    out = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                num = den = 0.0
                for yj in range(max(0, y + lo), min(h, y + hi + 1)):
                    for xj in range(max(0, x + lo), min(w, x + hi + 1)):
                        e = math.exp(-(s[b, :, y, x] - t[b, :, yj, xj]).abs().sum().item() / temperature)
                        den += e
                        if torch.equal(t[b, :, yj, xj], t[b, :, y, x]):
                            num += e
                out[b, 0, y, x] = -math.log(num / den)
    return out


_pair = make_pair  # (sr, hr) from a seed; levels -> duplicate HR values, |P_i| > 1


def _value_and_grads(backend, sr, hr, **kwargs):
    sr = sr.detach().clone().requires_grad_()
    hr = hr.detach().clone().requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, mode="sliding", backend=backend, **kwargs)
    weight = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).view_as(loss)
    (loss * weight).sum().backward()
    return loss.detach(), sr.grad, hr.grad


def _assert_close_all(got, expected, rtol=1e-9, atol=1e-11):
    for name, a, b in zip(("value", "grad sr", "grad hr"), got, expected):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


# ------------------------------------------------------------------------------------------------
# definition, by hand
# ------------------------------------------------------------------------------------------------
def test_window_extent():
    assert [window_extent(r) for r in (1, 2, 3, 4, 8)] == [(0, 0), (1, 0), (1, 1), (2, 1), (4, 3)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_2x2_windows_clipped_at_the_border(backend):
    # region 2: offsets dy, dx in {-1, 0}. sr == hr = [[0, 1], [2, 3]], C = 1:
    # (0,0) sees only itself -> 0; (0,1) sees 0, 1 -> log(1 + e^-1); (1,0) sees 0, 2 -> log(1 + e^-2);
    # (1,1) sees all four (distances 3, 2, 1, 0) -> log(1 + e^-1 + e^-2 + e^-3)
    hr = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64)
    e = math.exp(-1.0)
    expected = torch.tensor(
        [[[[0.0, math.log(1 + e)], [math.log(1 + e**2), math.log(1 + e + e**2 + e**3)]]]], dtype=torch.float64
    )
    got = pixel_contrastive_loss(hr.clone(), hr, region=2, mode="sliding", reduction="none", backend=backend)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_1d_row_with_duplicates(backend):
    # a 1x5 strip is too thin for region 3 (region <= H), so use a 3x5 image whose rows are equal:
    # HR row 0, 0, 1, 1, 1 in every row; sr == hr. Centre pixel (1, 2), value 1, window 3x3 holds
    # columns 1..3 of all three rows: three 0s at distance 1, six 1s (positives) at distance 0:
    # l = -log(6 / (6 + 3/e)) = log(1 + 1/(2e))
    row = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    hr = row.expand(3, 5).reshape(1, 1, 3, 5).clone()
    got = pixel_contrastive_loss(hr.clone(), hr, region=3, mode="sliding", reduction="none", backend=backend)
    assert got[0, 0, 1, 2].item() == pytest.approx(math.log(1 + 1 / (2 * math.e)), rel=1e-12)
    # pixel (1, 4): window columns 3..4 (column 5 is outside), all ones: every pixel a positive -> 0
    assert got[0, 0, 1, 4].item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_centre_anchor_of_a_region_sized_image_equals_grid(backend):
    # an r x r image with odd r: the centre pixel's window is the whole image, as is its grid block
    sr, hr = _pair((2, 3, 5, 5), levels=3, seed=4)
    sliding = pixel_contrastive_loss(sr, hr, 5, mode="sliding", reduction="none", backend=backend)
    grid = pixel_contrastive_loss(sr, hr, 5, mode="grid", reduction="none", backend=backend)
    torch.testing.assert_close(sliding[..., 2, 2], grid[..., 2, 2])
    assert not torch.allclose(sliding, grid)  # the other anchors see clipped windows


@pytest.mark.parametrize("backend", BACKENDS)
def test_region_one_is_zero(backend):
    sr, hr = _pair((1, 3, 4, 5))
    sr.requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, region=1, mode="sliding", backend=backend)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(sr.grad) == 0


# ------------------------------------------------------------------------------------------------
# against the naive oracle
# ------------------------------------------------------------------------------------------------
NAIVE_CASES = [
    ((1, 1, 4, 4), 2, 1.0, None),
    ((2, 3, 6, 7), 3, 0.5, 3),
    ((1, 3, 7, 5), 4, 1.0, 4),
    ((1, 2, 5, 9), 5, 2.0, None),
    ((1, 4, 6, 6), 6, 0.3, 2),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,region,temperature,levels", NAIVE_CASES)
def test_matches_naive_loops(backend, shape, region, temperature, levels):
    sr, hr = _pair(shape, levels=levels, seed=sum(shape))
    expected = naive_sliding_map(sr, hr, region, temperature)
    got = pixel_contrastive_loss(
        sr, hr, region, mode="sliding", temperature=temperature, reduction="none", backend=backend
    )
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# chunked torch path == F.unfold reference: values, sr and hr gradients
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,region",
    [((2, 3, 16, 16), 8), ((3, 3, 13, 11), 4), ((1, 1, 17, 9), 8), ((2, 5, 10, 12), 3), ((1, 3, 9, 9), 9)],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("levels", [None, 4])
def test_torch_matches_reference(shape, region, reduction, levels):
    sr, hr = _pair(shape, levels=levels, seed=region)
    kwargs = dict(region=region, temperature=0.7, reduction=reduction)
    _assert_close_all(_value_and_grads("torch", sr, hr, **kwargs), _value_and_grads("reference", sr, hr, **kwargs))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    region=st.integers(1, 8),
    temperature=st.sampled_from([0.05, 0.3, 1.0, 3.0]),
    levels=st.sampled_from([None, 2, 5]),
    chunk_size=st.sampled_from([None, 1]),
    seed=st.integers(0, 10_000),
)
def test_torch_matches_reference_random(n, c, h, w, region, temperature, levels, chunk_size, seed):
    region = min(region, h, w)
    sr, hr = _pair((n, c, h, w), levels=levels, seed=seed)
    kwargs = dict(region=region, temperature=temperature, reduction="none", chunk_size=chunk_size)
    _assert_close_all(_value_and_grads("torch", sr, hr, **kwargs), _value_and_grads("reference", sr, hr, **kwargs))


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 10_000])
def test_chunk_size_does_not_change_the_result(chunk_size):
    # region 4: a chunk holds chunk_size * 16 anchors, from a fraction of a row to several images
    sr, hr = _pair((3, 3, 20, 12), levels=6, seed=1)
    default = _value_and_grads("torch", sr, hr, region=4, reduction="none")
    chunked = _value_and_grads("torch", sr, hr, region=4, reduction="none", chunk_size=chunk_size)
    _assert_close_all(chunked, default, rtol=1e-12, atol=1e-14)


def test_sharp_softmax_on_0_255_range():
    sr, hr = _pair((2, 3, 12, 12), levels=256, seed=3)
    kwargs = dict(region=8, reduction="mean")
    _assert_close_all(
        _value_and_grads("torch", sr * 255, hr * 255, **kwargs),
        _value_and_grads("reference", sr * 255, hr * 255, **kwargs),
        atol=1e-9,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend):
    sr, hr = _pair((1, 2, 5, 6), seed=7)
    sr.requires_grad_()
    hr.requires_grad_()

    def fn(a, b):
        return pixel_contrastive_loss(a, b, 3, mode="sliding", temperature=0.5, reduction="none", backend=backend)

    assert torch.autograd.gradcheck(fn, (sr, hr), eps=1e-6, atol=1e-6)


def test_gradcheck_with_duplicate_hr_values_sr_only():
    sr, hr = _pair((1, 3, 6, 6), levels=2, seed=2)
    sr.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: pixel_contrastive_loss(a, hr, 4, mode="sliding", backend="torch"), (sr,))


# ------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_hr_gradient_of_one_anchor_stays_in_its_window(backend):
    sr, hr = _pair((1, 3, 9, 10), seed=5)
    sr.requires_grad_()
    hr.requires_grad_()
    loss_map = pixel_contrastive_loss(sr, hr, 4, mode="sliding", reduction="none", backend=backend)
    loss_map[0, 0, 4, 6].backward()  # window rows 2..5, columns 4..7
    window = torch.zeros(9, 10, dtype=torch.bool)
    window[2:6, 4:8] = True
    assert hr.grad[0, :, window].abs().sum() > 0
    assert torch.count_nonzero(hr.grad[0, :, ~window]) == 0
    anchor = torch.zeros(9, 10, dtype=torch.bool)
    anchor[4, 6] = True
    assert torch.count_nonzero(sr.grad[0, :, ~anchor]) == 0


@pytest.mark.parametrize("region", [3, 5])
def test_odd_windows_are_symmetric_under_flips(region):
    # an odd window is centred exactly, so flipping both images flips the loss map
    sr, hr = _pair((2, 3, 9, 8), levels=5, seed=region)
    loss_map = pixel_contrastive_loss(sr, hr, region, mode="sliding", reduction="none")
    for dims in ((-1,), (-2,), (-2, -1)):
        flipped = pixel_contrastive_loss(sr.flip(dims), hr.flip(dims), region, mode="sliding", reduction="none")
        torch.testing.assert_close(flipped, loss_map.flip(dims))


def test_reductions():
    sr, hr = _pair((2, 3, 16, 24))
    loss_map = pixel_contrastive_loss(sr, hr, 8, mode="sliding", reduction="none")
    mean = pixel_contrastive_loss(sr, hr, 8, mode="sliding", reduction="mean")
    total = pixel_contrastive_loss(sr, hr, 8, mode="sliding", reduction="sum")
    torch.testing.assert_close(mean, loss_map.mean())
    # 'sum' is eq 10's scale: (1/S) * sum over anchors = mean * number of 8x8 regions (2 * 2 * 3)
    torch.testing.assert_close(total, loss_map.sum() / 64)
    torch.testing.assert_close(total, mean * 12)


def test_module_passes_mode():
    sr, hr = _pair((2, 3, 12, 12))
    criterion = PixelContrastiveLoss(region=4, mode="sliding", temperature=0.5)
    torch.testing.assert_close(criterion(sr, hr), pixel_contrastive_loss(sr, hr, 4, mode="sliding", temperature=0.5))
    assert "mode='sliding'" in repr(criterion)


def test_differs_from_grid_and_is_deterministic():
    sr, hr = _pair((2, 3, 16, 16), dtype=torch.float32, levels=8)
    first = _value_and_grads("torch", sr, hr, region=8)
    second = _value_and_grads("torch", sr, hr, region=8)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    grid = pixel_contrastive_loss(sr, hr, 8, mode="grid")
    assert not torch.allclose(first[0], grid)


# ------------------------------------------------------------------------------------------------
# dtypes, layouts, compile
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_computed_in_float32(backend, dtype):
    sr, hr = _pair((2, 3, 12, 12), dtype=torch.float32, levels=16)
    sr_h, hr_h = sr.to(dtype).requires_grad_(), hr.to(dtype)
    loss = pixel_contrastive_loss(sr_h, hr_h, 8, mode="sliding", backend=backend)
    loss.backward()
    assert loss.dtype == torch.float32 and sr_h.grad.dtype == dtype
    expected = pixel_contrastive_loss(sr_h.detach().float(), hr_h.float(), 8, mode="sliding", backend="reference")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_and_views(backend):
    sr, hr = _pair((2, 3, 14, 16), levels=5)
    expected = _value_and_grads(backend, sr[..., 1:13, 2:14].contiguous(), hr[..., 1:13, 2:14].contiguous(), region=4)
    views = _value_and_grads(backend, sr[..., 1:13, 2:14], hr[..., 1:13, 2:14], region=4)
    channels_last = _value_and_grads(
        backend,
        sr[..., 1:13, 2:14].contiguous(memory_format=torch.channels_last),
        hr[..., 1:13, 2:14].contiguous(memory_format=torch.channels_last),
        region=4,
    )
    _assert_close_all(views, expected)
    _assert_close_all(channels_last, expected)


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    criterion = PixelContrastiveLoss(region=4, mode="sliding")

    def step(a, b):
        return F.l1_loss(a, b) + 0.1 * criterion(a, b)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    sr, hr = _pair((2, 3, 12, 10), dtype=torch.float32)
    results = []
    for fn in (step, compiled):
        a = sr.clone().requires_grad_()
        loss = fn(a, hr)
        loss.backward()
        results.append((loss.detach(), a.grad))
    for x, y in zip(*results):
        torch.testing.assert_close(x, y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_torch_backend_matches_cpu():
    sr, hr = _pair((2, 3, 24, 20), dtype=torch.float32, levels=9)
    cpu = _value_and_grads("torch", sr, hr, region=8)
    gpu = _value_and_grads("torch", sr.cuda(), hr.cuda(), region=8)
    for a, b in zip(gpu, cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)
