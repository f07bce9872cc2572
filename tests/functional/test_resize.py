"""Tests of imresize (MATLAB's bicubic, the SR literature's LR images): published MATLAB output,
hand-computed weights, Pillow / ResizeRight cross-checks, gradcheck, pinned round trips.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrastive_sr_losses.functional import imresize, quantize
from contrastive_sr_losses.metrics import psnr_y, ssim_y


def _astronaut() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].double() / 255  # 512x512


def test_imresize_matches_published_matlab_output():
    # MATLAB's answer to imresize([0 0 1 1 0], [1 10]) as printed in a 2013 Stack Overflow question
    # ("why does imresize produce values greater than maximal"), 4 decimals.
    matlab = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031, -0.0703]
    out = imresize(torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64), 2)
    assert out.shape == (2, 10)
    assert torch.equal(out[0], out[1])  # a single row stays a constant column
    assert out[0, :9].tolist() == pytest.approx(matlab[:9], abs=6e-5)  # printed rounded to 4 decimals
    # The last pixel reaches 1.75 pixels past the border: that MATLAB release replicated the end
    # pixel there (0 -> -0.0703); current MATLAB mirrors (aux = [1:n, n:-1:1]) and so do we, which
    # reads pixel 4 (= 1) with weight cubic(1.75) = -0.0234375: -0.0703125 - 0.0234375.
    assert out[0, 9].item() == pytest.approx(-0.09375, abs=1e-12)


def test_imresize_hand_computed_weights():
    # x2 upsampling of [a, b, c]: output pixel 2 sits at u = 1.25 (1-based), taps at distances
    # 1.25, 0.25, -0.75, -1.75 from pixels 0 (mirror of 1), 1, 2, 3 with the a = -0.5 cubic.
    def cubic(t: float) -> float:
        t = abs(t)
        return 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else (-0.5 * t**3 + 2.5 * t**2 - 4 * t + 2 if t <= 2 else 0.0)

    x = torch.tensor([[0.2, 0.9, 0.4]], dtype=torch.float64)
    w = [cubic(1.25), cubic(0.25), cubic(-0.75), cubic(-1.75)]
    expected = (w[0] * 0.2 + w[1] * 0.2 + w[2] * 0.9 + w[3] * 0.4) / sum(w)
    assert imresize(x, 2)[0, 1].item() == pytest.approx(expected, abs=1e-15)
    # x1/2 downsampling with antialiasing: the kernel is 0.5 * cubic(0.5 t), 8 taps wide
    y = torch.arange(8, dtype=torch.float64).view(1, 8) ** 2
    u = 2 / 0.5 + 0.5 * (1 - 1 / 0.5)  # output pixel 2 (1-based) sits at input position 3.5 (1-based)
    idx = range(math.floor(u - 4), math.floor(u - 4) + 10)
    mirror = lambda i: (i - 1) % 16 if (i - 1) % 16 < 8 else 15 - (i - 1) % 16  # noqa: E731
    wd = [0.5 * cubic(0.5 * (u - i)) for i in idx]
    expected = sum(wi * y[0, mirror(i)].item() for wi, i in zip(wd, idx)) / sum(wd)
    assert imresize(y, 0.5)[0, 1].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_matches_pillow_bicubic_away_from_borders(scale):
    # Pillow's BICUBIC is also Keys a = -0.5 with the kernel widened when downscaling; it renormalises
    # the kernel at the borders instead of mirroring, so only the interior is compared.
    pil = pytest.importorskip("PIL.Image")
    gen = torch.Generator().manual_seed(scale)
    img = torch.rand(36 * scale, 30 * scale, generator=gen)
    im = pil.fromarray(img.numpy(), mode="F")
    m = 3 * scale
    down = np.asarray(im.resize((30, 36), pil.BICUBIC))
    ours = imresize(img.double()[None], 1 / scale)[0].numpy()
    np.testing.assert_allclose(ours[m:-m, m:-m], down[m:-m, m:-m], atol=2e-6)
    small = pil.fromarray(down, mode="F")
    up = np.asarray(small.resize((30 * scale, 36 * scale), pil.BICUBIC))
    ours_up = imresize(torch.from_numpy(down.copy()).double()[None], scale)[0].numpy()
    np.testing.assert_allclose(ours_up[m:-m, m:-m], up[m:-m, m:-m], atol=2e-6)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 4])
def test_imresize_matches_resize_right_symmetric(scale):
    # ResizeRight (Shocher et al.) reproduces MATLAB for integer size ratios; with symmetric padding
    # it handles the borders as MATLAB's mirror does, so the whole image must agree.
    rr = pytest.importorskip("resize_right")
    from resize_right import interp_methods

    img = torch.rand(3, 24, 36, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ref = rr.resize(
        img.numpy(), scale_factors=[1, scale, scale], interp_method=interp_methods.cubic,
        antialiasing=True, pad_mode="symmetric",
    )
    np.testing.assert_allclose(imresize(img, scale).numpy(), ref, atol=1e-12)


def test_imresize_shapes_dtypes_and_properties():
    x = torch.rand(2, 5, 3, 17, 13)  # any leading dimensions
    assert imresize(x, 1 / 4).shape == (2, 5, 3, 5, 4)  # ceil(17/4), ceil(13/4)
    assert imresize(x, 3).shape == (2, 5, 3, 51, 39)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert imresize(x.to(dtype), 0.5).dtype == dtype
    const = torch.full((1, 3, 12, 12), 0.3, dtype=torch.float64)
    assert torch.allclose(imresize(const, 1 / 3), torch.full((1, 3, 4, 4), 0.3, dtype=torch.float64))
    # scale 1 is the identity (the kernel is 1 at 0 and 0 at every other integer)
    assert torch.allclose(imresize(x.double(), 1), x.double(), atol=1e-12)
    # linear: resize(a x + b y) = a resize(x) + b resize(y); channels are independent
    y = torch.rand_like(x, dtype=torch.float64)
    xd = x.double()
    assert torch.allclose(imresize(2 * xd - 3 * y, 0.25), 2 * imresize(xd, 0.25) - 3 * imresize(y, 0.25))
    assert torch.equal(imresize(xd, 0.5)[:, :, 1], imresize(xd[:, :, 1:2], 0.5)[:, :, 0])
    # separable in H and W: a transposed image resizes to the transposed result
    assert torch.allclose(imresize(xd.transpose(-1, -2), 0.25), imresize(xd, 0.25).transpose(-1, -2))


def test_imresize_without_antialiasing_is_plain_cubic_sampling():
    # x1/2 without antialiasing samples the cubic interpolant at u = 2x - 0.5: for a linear ramp
    # the interpolation is exact away from the borders.
    ramp = torch.arange(16, dtype=torch.float64).view(1, 16)
    out = imresize(ramp, 0.5, antialiasing=False)[0]
    expected = torch.arange(1, 9, dtype=torch.float64) * 2 - 1.5
    assert torch.allclose(out[1:-1], expected[1:-1])


def test_imresize_gradcheck():
    x = torch.rand(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, 0.5), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize(t, 2), (x,))


@pytest.mark.parametrize(
    "args,err,match",
    [
        ((np.zeros((4, 4)), 2), TypeError, "img must be a torch.Tensor"),
        ((torch.zeros(4, 4, dtype=torch.uint8), 2), TypeError, "img must be a floating-point tensor"),
        ((torch.zeros(4), 2), ValueError, r"img must have shape \(\.\.\., H, W\)"),
        ((torch.zeros(4, 4), 0), ValueError, "scale must be a finite number > 0"),
        ((torch.zeros(4, 4), "2"), TypeError, "scale must be a positive float"),
    ],
)
def test_imresize_bad_input(args, err, match):
    with pytest.raises(err, match=match):
        imresize(*args)


def test_bicubic_x4_round_trip_on_astronaut_pinned():
    # LR = 8-bit imresize(hr, 1/4), bicubic = imresize(LR, 4); PSNR-Y / SSIM-Y with crop 4.
    # Pinned values computed independently of this package: ResizeRight (cubic, antialiasing,
    # symmetric padding) for both resizes, numpy rounding and BT.601 Y, numpy PSNR and
    # scikit-image's structural_similarity (Gaussian, sigma 1.5, population covariance, range 255):
    # 26.843901693467625 dB and 0.8429360563607876.
    hr = _astronaut()
    sr = imresize(quantize(imresize(hr, 1 / 4)), 4)
    assert psnr_y(sr, hr, crop_border=4).item() == pytest.approx(26.843901693467625, abs=1e-9)
    assert ssim_y(sr, hr, crop_border=4).item() == pytest.approx(0.8429360563607876, abs=1e-9)


def test_bicubic_round_trip_recomputed_with_numpy_and_skimage():
    # Same protocol computed a second way inside the test: numpy Y / PSNR and scikit-image SSIM on
    # the images our imresize produced (this isolates the metric code from the resize).
    skm = pytest.importorskip("skimage.metrics")
    hr = _astronaut()[..., :240, 200:440]
    sr = imresize(quantize(imresize(hr, 1 / 3)), 3)

    def y_channel(t: torch.Tensor) -> np.ndarray:
        rgb = np.round(np.clip(t[0].permute(1, 2, 0).numpy(), 0, 1) * 255) / 255
        return (16 + rgb @ np.array([65.481, 128.553, 24.966]))[3:-3, 3:-3]

    ys, yh = y_channel(sr), y_channel(hr)
    psnr = 10 * np.log10(255**2 / np.mean((ys - yh) ** 2))
    ssim = skm.structural_similarity(ys, yh, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, win_size=11)
    assert psnr_y(sr, hr, crop_border=3).item() == pytest.approx(psnr, abs=1e-9)
    assert ssim_y(sr, hr, crop_border=3).item() == pytest.approx(ssim, abs=1e-9)


def test_quantize_hand_computed_levels_for_both_value_ranges():
    # 0.5 / 255 and 254.6 / 255 of white: round half to even gives level 0, then 255; out of range clamps
    x = torch.tensor([-3.0, 0.5, 127.5, 128.49, 254.6, 300.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, 128.0, 128.0, 255.0, 255.0], dtype=torch.float64)
    torch.testing.assert_close(quantize(x, value_range=255.0), expected, rtol=0, atol=0)
    torch.testing.assert_close(quantize(x / 255), expected / 255, rtol=0, atol=1e-15)
    assert quantize(torch.rand(2, 3, 4, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("value_range", [0.0, -1.0, float("nan"), "255"])
def test_quantize_names_a_bad_value_range(value_range):
    with pytest.raises((TypeError, ValueError), match=r"value_range must be a (positive float|finite number > 0), got"):
        quantize(torch.rand(4), value_range=value_range)
