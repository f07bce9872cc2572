"""Tests of the evaluation helpers (Y channel, PSNR-Y)."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_sr_losses.functional import rgb_to_y
from contrastive_sr_losses.metrics import psnr_y, quantize


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
    with pytest.raises(ValueError, match=r"RGB of shape \(N, 3, H, W\)"):
        psnr_y(torch.rand(1, 1, 10, 10), torch.rand(1, 1, 10, 10))
