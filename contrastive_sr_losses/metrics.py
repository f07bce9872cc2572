"""Evaluation protocol of the SR literature.

PSNR on the Y channel of YCbCr (BT.601), after rounding to 8 bits and cropping ``crop_border``
pixels at each border (``crop_border = scale`` by convention), computed in float64 per image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import check_image_pair
from .functional.color import rgb_to_y

__all__ = ["psnr_y", "quantize"]


def quantize(img: Tensor) -> Tensor:
    """Round images in [0, 1] to 8-bit levels (clamped), as saving to PNG would; same dtype."""
    return img.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def psnr_y(sr: Tensor, hr: Tensor, crop_border: int = 0) -> Tensor:
    """Per-image PSNR (dB) on the BT.601 Y channel, the SR benchmark convention.

    Both images are rounded to 8 bits, converted to Y in [16, 235] (peak 255), cropped by
    ``crop_border`` pixels on each side, and compared in float64.

    Args:
        sr: ``(N, 3, H, W)`` RGB in [0, 1].
        hr: ``(N, 3, H, W)`` RGB in [0, 1].
        crop_border: pixels removed at each border before comparing (use the SR scale).

    Returns:
        ``(N,)`` float64 tensor; ``inf`` for identical images.

    Example:
        >>> hr = torch.full((1, 3, 8, 8), 0.5)
        >>> psnr_y(hr, hr).item()
        inf
    """
    check_image_pair(sr, hr)
    if sr.shape[1] != 3:
        raise ValueError(f"sr and hr must be RGB of shape (N, 3, H, W), got {tuple(sr.shape)}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an int >= 0, got {crop_border!r}")
    h, w = sr.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves no pixels of a {h}x{w} image")
    y_sr = rgb_to_y(quantize(sr.to(torch.float64)))
    y_hr = rgb_to_y(quantize(hr.to(torch.float64)))
    if crop_border:
        y_sr = y_sr[..., crop_border:-crop_border, crop_border:-crop_border]
        y_hr = y_hr[..., crop_border:-crop_border, crop_border:-crop_border]
    mse = (y_sr - y_hr).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)
