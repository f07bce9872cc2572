"""Tests of PSNR-Y and SSIM-Y (MATLAB / BasicSR protocol): hand-computed values, one-channel images,
round_y, crops, cross-checks with pytorch-msssim and scikit-image.
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_sr_losses.functional import quantize, rgb_to_gray, rgb_to_y
from contrastive_sr_losses.functional.filters import gaussian_kernel1d
from contrastive_sr_losses.metrics import ReferenceY, psnr_y, ssim_y


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
