"""Tests of the evaluation protocol: Y channel, PSNR-Y, SSIM-Y, MATLAB imresize, LPIPS."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastive_sr_losses.functional import imresize, quantize, rgb_to_gray, rgb_to_y
from contrastive_sr_losses.functional.filters import gaussian_kernel1d
from contrastive_sr_losses.metrics import LPIPS, ReferenceY, lpips, psnr_y, ssim_y
from tests._paths import SHARED_DATA

SHARED_WEIGHTS = SHARED_DATA / "weights"


def _astronaut() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].double() / 255  # 512x512


# ---------------------------------------------------------------------------------------------- Y, PSNR


def test_rgb_to_y_bt601_coefficients():
    rgb = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    rgb = rgb.view(4, 3, 1, 1)  # red, green, blue, black
    y = rgb_to_y(rgb).flatten().tolist()
    assert y == pytest.approx([16 + 65.481, 16 + 128.553, 16 + 24.966, 16.0])
    assert rgb_to_y(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235.0)


def test_rgb_to_y_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"rgb must have shape \(\.\.\., 3, H, W\)"):
        rgb_to_y(torch.rand(1, 4, 2, 2))


def test_psnr_y_hand_computed():
    # a uniform offset of one 8-bit level in R, G and B moves Y by 219/255 everywhere
    hr = torch.zeros(2, 3, 6, 6)
    sr = torch.full_like(hr, 1 / 255)
    expected = 10 * math.log10(255**2 / (219 / 255) ** 2)
    got = psnr_y(sr, hr)
    assert got.dtype == torch.float64 and got.shape == (2,)
    assert got.tolist() == pytest.approx([expected, expected])


def test_one_channel_images_are_scored_on_their_own_levels():
    # grayscale: the channel is Y, levels 0..255, so one 8-bit level everywhere is 20 log10(255) dB
    hr = torch.zeros(2, 1, 6, 6)
    assert psnr_y(torch.full_like(hr, 1 / 255), hr).tolist() == pytest.approx([20 * math.log10(255)] * 2)
    # the same gray image as three equal channels is scored on 16 + 219/255 * level instead
    g_sr, g_hr = torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24)
    mse = (quantize(g_sr.double()) - quantize(g_hr.double())).mul(255).pow(2).mean().item()
    assert psnr_y(g_sr, g_hr).item() == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
    rgb = psnr_y(g_sr.expand(1, 3, 24, 24), g_hr.expand(1, 3, 24, 24)).item()
    assert rgb - psnr_y(g_sr, g_hr).item() == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)
    # SSIM on one channel is SSIM of the levels: the formula on two flat images
    a, b = torch.full((1, 1, 16, 16), 100 / 255), torch.full((1, 1, 16, 16), 120 / 255)
    c1 = (0.01 * 255) ** 2
    assert ssim_y(a, b).item() == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-12)
    assert rgb_to_gray(g_hr.double().expand(1, 3, 24, 24)).sub(g_hr.double()).abs().max().item() < 1e-12


def test_round_y_rounds_the_luma_to_8_bits_like_matlab_uint8():
    # R = 1/255: Y = 16 + 65.481/255 = 16.2568 -> 16 with MATLAB's uint8 rgb2ycbcr, so it equals black
    hr = torch.zeros(1, 3, 12, 12)
    sr = hr.clone()
    sr[:, 0] = 1 / 255
    assert psnr_y(sr, hr, round_y=True).item() == math.inf
    assert psnr_y(sr, hr).item() == pytest.approx(10 * math.log10(255**2 / (65.481 / 255) ** 2))
    # a naive re-implementation: round Y, then the plain PSNR / SSIM formulas on the levels
    sr, hr = torch.rand(2, 3, 20, 20), torch.rand(2, 3, 20, 20)
    y_sr, y_hr = rgb_to_y(quantize(sr.double())).round(), rgb_to_y(quantize(hr.double())).round()
    mse = (y_sr - y_hr).pow(2).mean(dim=(1, 2, 3))
    assert psnr_y(sr, hr, round_y=True).tolist() == pytest.approx((10 * torch.log10(255**2 / mse)).tolist(), rel=1e-12)
    as_gray = ssim_y(y_sr / 255, y_hr / 255)  # the integer levels given as one-channel images
    assert ssim_y(sr, hr, round_y=True).tolist() == pytest.approx(as_gray.tolist(), rel=1e-12)


def test_psnr_y_crops_border_and_rounds():
    hr = torch.rand(1, 3, 10, 10)
    sr = hr.clone()
    sr[..., 0, :] = 1 - sr[..., 0, :]  # damage only the first row
    assert math.isfinite(psnr_y(sr, hr).item())
    assert psnr_y(sr, hr, crop_border=1).item() == math.inf
    # differences below half an 8-bit level vanish after rounding
    assert psnr_y(quantize(hr) + 0.4 / 255, quantize(hr)).item() == math.inf


@pytest.mark.parametrize(
    "kwargs,match",
    [({"crop_border": 5}, "leaves no pixels"), ({"crop_border": -1}, "crop_border must be an int >= 0")],
)
def test_psnr_y_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        psnr_y(torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10), **kwargs)
    with pytest.raises(ValueError, match=r"RGB of shape \(N, 3, H, W\) or one-channel"):
        psnr_y(torch.rand(1, 2, 10, 10), torch.rand(1, 2, 10, 10))
    with pytest.raises(TypeError, match="round_y must be a bool"):
        psnr_y(torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10), round_y=1)


# ---------------------------------------------------------------------------------------------- imresize


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


# ---------------------------------------------------------------------------------------------- SSIM


def test_ssim_y_identity_and_constant_offset_hand_computed():
    hr = torch.rand(2, 3, 20, 20)
    assert ssim_y(hr, hr).tolist() == [1.0, 1.0]
    # two flat images: variances are 0, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    a, b = torch.full((1, 3, 16, 16), 100 / 255), torch.full((1, 3, 16, 16), 120 / 255)
    m1, m2 = rgb_to_y(quantize(a.double()))[0, 0, 0, 0].item(), rgb_to_y(quantize(b.double()))[0, 0, 0, 0].item()
    c1 = (0.01 * 255) ** 2
    assert ssim_y(a, b).item() == pytest.approx((2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1), rel=1e-12)


def test_ssim_y_matches_pytorch_msssim_and_skimage():
    msssim = pytest.importorskip("pytorch_msssim")
    skm = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(3)
    hr = torch.rand(3, 3, 40, 36, generator=gen, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = ssim_y(sr, hr, crop_border=3)
    y_sr = rgb_to_y(quantize(sr))[..., 3:-3, 3:-3]
    y_hr = rgb_to_y(quantize(hr))[..., 3:-3, 3:-3]
    ref = msssim.ssim(y_sr, y_hr, data_range=255, size_average=False, win_size=11, win_sigma=1.5, K=(0.01, 0.03))
    assert ours.dtype == torch.float64 and ours.shape == (3,)
    assert torch.allclose(ours, ref.double(), atol=1e-10)
    for i in range(3):
        ski = skm.structural_similarity(
            y_sr[i, 0].numpy(), y_hr[i, 0].numpy(), data_range=255, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, win_size=11,
        )
        assert ours[i].item() == pytest.approx(ski, abs=1e-10)


def _ssim_by_2d_window(sr: torch.Tensor, hr: torch.Tensor, crop: int) -> torch.Tensor:
    """Wang et al.'s ssim_index written plainly: five 2-D 11x11 convolutions in float64."""
    x = rgb_to_y(quantize(sr.double()))[..., crop : sr.shape[-2] - crop, crop : sr.shape[-1] - crop]
    y = rgb_to_y(quantize(hr.double()))[..., crop : hr.shape[-2] - crop, crop : hr.shape[-1] - crop]
    g = gaussian_kernel1d(1.5, 11, dtype=torch.float64)
    win = (g[:, None] * g[None, :]).view(1, 1, 11, 11)
    conv = lambda t: torch.nn.functional.conv2d(t, win)  # noqa: E731
    mx, my = conv(x), conv(y)
    vx, vy, cxy = conv(x * x) - mx * mx, conv(y * y) - my * my, conv(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean(dim=(1, 2, 3))


@pytest.mark.parametrize("shape, crop", [((2, 3, 11, 11), 0), ((1, 3, 42, 17), 0), ((2, 3, 43, 50), 1), ((1, 3, 107, 61), 4)])
def test_ssim_y_separable_tiled_equals_2d_window(shape, crop):
    # 42 / 43 rows: the map is one full 32-row tile (+ a partial one); 107: several tiles
    gen = torch.Generator().manual_seed(sum(shape))
    hr = torch.rand(shape, generator=gen)
    sr = (hr + 0.08 * torch.randn(shape, generator=gen)).clamp(0, 1)
    assert torch.allclose(ssim_y(sr, hr, crop_border=crop), _ssim_by_2d_window(sr, hr, crop), rtol=0, atol=1e-12)


def test_reference_y_scores_like_the_functions_and_is_reusable():
    gen = torch.Generator().manual_seed(5)
    hr = torch.rand(2, 3, 30, 26, generator=gen)
    ref = ReferenceY(hr, crop_border=2)
    for noise in (0.02, 0.2):
        sr = (hr + noise * torch.randn(hr.shape, generator=gen)).clamp(0, 1)
        assert torch.equal(ref.psnr(sr), psnr_y(sr, hr, crop_border=2))
        assert torch.equal(ref.ssim(sr), ssim_y(sr, hr, crop_border=2))
    assert ref.ssim(hr).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="same shape"):
        ref.psnr(hr[..., :-1])
    with pytest.raises(ValueError, match="crop_border=13 leaves no pixels"):
        ReferenceY(hr, crop_border=13)
    with pytest.raises(ValueError, match=r"ssim_y needs at least 11x11 pixels after cropping crop_border=8"):
        ReferenceY(hr, crop_border=8).ssim(hr)


def test_ssim_y_bad_input():
    with pytest.raises(ValueError, match=r"ssim_y needs at least 11x11 pixels after cropping crop_border=2"):
        ssim_y(torch.rand(1, 3, 14, 30), torch.rand(1, 3, 14, 30), crop_border=2)
    with pytest.raises(ValueError, match=r"RGB of shape \(N, 3, H, W\) or one-channel"):
        ssim_y(torch.rand(1, 4, 20, 20), torch.rand(1, 4, 20, 20))
    with pytest.raises(ValueError, match="same shape"):
        ssim_y(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 21))


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


# ---------------------------------------------------------------------------------------------- LPIPS


def _lpips_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Astronaut crop vs a 3x3 box blur and vs additive noise (seeded): what the pins were made on."""
    crop = _astronaut()[..., 100:196, 180:276].float()
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(crop, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noise = (crop + 0.08 * torch.randn(crop.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return torch.cat([crop, crop]), torch.cat([blur, noise])


def _lpips_head(net: str) -> Path:
    from contrastive_sr_losses.metrics.perceptual import _default_head_path

    path = _default_head_path(net)
    if path is None or not path.is_file():
        pytest.skip("the lpips package's head weights are not installed (pip install --no-deps lpips==0.1.4)")
    return path


def test_lpips_squeeze_matches_the_lpips_package():
    # Pinned from lpips 0.1.4 itself (lpips.LPIPS(net='squeeze')(a, b, normalize=True)), run with a
    # torchvision that imports beside torch, on the same inputs and the same backbone file.
    backbone = SHARED_WEIGHTS / "squeezenet1_1-b8a52dc0.pth"
    if not backbone.is_file():
        pytest.skip(f"{backbone} is absent")
    metric = LPIPS("squeeze", backbone_path=backbone, head_path=_lpips_head("squeeze"))
    a, b = _lpips_inputs()
    got = metric(a, b)
    assert got.shape == (2,) and got.dtype == torch.float32
    assert got.tolist() == pytest.approx([0.11367059499025345, 0.36469465494155884], abs=2e-6)
    assert metric(a, a).abs().max().item() < 1e-6
    assert not any(p.requires_grad for p in metric.parameters()) and not metric.training
    # gradients reach the input (usable as a perceptual loss); the functional form agrees
    x = b.clone().requires_grad_(True)
    metric(x, a).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(lpips(a, b, "squeeze", backbone_path=backbone, head_path=_lpips_head("squeeze")), got)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_alex_vgg_definitions_load_torchvision_keys(net, tmp_path):
    # Without ImageNet weights offline, check the architecture: a random state dict with
    # torchvision's key names and shapes loads strictly, and the layer taps have lpips' widths.
    from contrastive_sr_losses.metrics.perceptual import _features

    features, taps, channels = _features(net)
    state = {f"features.{k}": torch.randn_like(v) * 0.05 for k, v in features.state_dict().items()}
    expected_keys = {"alex": 10, "vgg": 26}[net]
    assert len(state) == expected_keys
    torch.save(state, tmp_path / "backbone.pth")
    metric = LPIPS(net, backbone_path=tmp_path / "backbone.pth", head_path=_lpips_head(net))
    a, b = _lpips_inputs()
    d = metric(a, b)
    assert d.shape == (2,) and bool((d > 0).all())
    x = a[:1]
    outs = metric._taps_of(x)
    assert [o.shape[1] for o in outs] == list(channels)


def test_lpips_missing_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match=r"alexnet-owt-7be5be79\.pth': put that file in .*torch_home/hub/checkpoints/"):
        LPIPS("alex")
    backbone = tmp_path / "b.pth"
    torch.save({}, backbone)
    with pytest.raises(FileNotFoundError, match=r"weights/v0\.1/vgg\.pth.*pip install --no-deps lpips"):
        LPIPS("vgg", backbone_path=backbone, head_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="net must be one of 'alex', 'vgg', 'squeeze'"):
        LPIPS("resnet")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot read the squeeze backbone"):
        LPIPS("squeeze", backbone_path=tmp_path / "bad.pth", head_path=tmp_path / "bad.pth")


def test_lpips_wrong_backbone_file_is_reported(tmp_path):
    torch.save({"features.0.weight": torch.zeros(2, 2)}, tmp_path / "wrong.pth")
    with pytest.raises(RuntimeError, match=r"is not torchvision's squeezenet1_1-b8a52dc0\.pth"):
        LPIPS("squeeze", backbone_path=tmp_path / "wrong.pth", head_path=tmp_path / "wrong.pth")
