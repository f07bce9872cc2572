"""Tests of the colour conversions (BT.601 luma as MATLAB's rgb2ycbcr).
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses.functional import rgb_to_y


def test_rgb_to_y_bt601_coefficients():
    rgb = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    rgb = rgb.view(4, 3, 1, 1)  # red, green, blue, black
    y = rgb_to_y(rgb).flatten().tolist()
    assert y == pytest.approx([16 + 65.481, 16 + 128.553, 16 + 24.966, 16.0])
    assert rgb_to_y(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235.0)


def test_rgb_to_y_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"rgb must have shape \(\.\.\., 3, H, W\)"):
        rgb_to_y(torch.rand(1, 4, 2, 2))
