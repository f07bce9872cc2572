"""PSNR-Y and SSIM-Y as the SR literature computes them (see :mod:`contrastive_sr_losses.metrics`).

:class:`ReferenceY` prepares the HR side once; :func:`psnr_y` and :func:`ssim_y` are computed through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_crop_border, check_image, check_image_pair, check_y_channels
from ..functional.color import rgb_to_y
from ..functional.filters import gaussian_kernel1d
from ..functional.resize import quantize

__all__ = ["psnr_y", "ssim_y", "ReferenceY", "SSIM_WINDOW"]

SSIM_WINDOW = 11  # Wang et al.'s ssim_index: 11x11 Gaussian window, sigma 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _y_channel(img: Tensor, crop_border: int, round_y: bool = False) -> Tensor:
    """8-bit rounded, cropped float64 Y ``(N, 1, H', W')``: BT.601 luma in [16, 235] of RGB, the levels
    0..255 of a one-channel image; rounded to integers with ``round_y`` (MATLAB uint8)."""
    if crop_border:  # crop first: every step is per pixel
        img = img[..., crop_border:-crop_border, crop_border:-crop_border]
    img = quantize(img.to(torch.float64))
    y = rgb_to_y(img) if img.shape[1] == 3 else img * 255.0
    return y.round_() if round_y else y


_SSIM_TILE_ROWS = 32  # rows of the SSIM map computed at a time: their working set stays in cache


def _ssim_local_mean(x: Tensor, g: list[float]) -> Tensor:
    """Mean under the Gaussian window ``g (x) g`` over the *valid* region, ``(..., H, W)`` ->
    ``(..., H - k + 1, W - k + 1)``: two 1-D passes (the window is separable), each a sum of k
    shifted slices accumulated in place, in the input's dtype (2k multiply-adds per pixel, not k^2)."""
    k = len(g)
    h, w = x.shape[-2:]
    rows = x[..., 0 : h - k + 1, :] * g[0]
    for i in range(1, k):
        rows.add_(x[..., i : h - k + 1 + i, :], alpha=g[i])
    out = rows[..., 0 : w - k + 1] * g[0]
    for i in range(1, k):
        out.add_(rows[..., i : w - k + 1 + i], alpha=g[i])
    return out


def _ssim_of_y(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM map of float64 Y channels ``(N, 1, H, W)`` (range 255), ``(N,)``.

    Only four local means are needed, ``mu_x``, ``mu_y``, ``E[x^2 + y^2]`` and ``E[xy]`` (the two
    variances enter the formula only as their sum), and the map is built ``_SSIM_TILE_ROWS`` rows at a
    time so that the filter passes run on data in cache. Same values as five 2-D 11x11 convolutions
    to float64 round-off.
    """
    g = gaussian_kernel1d(SSIM_SIGMA, SSIM_WINDOW, dtype=torch.float64).tolist()
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    halo = SSIM_WINDOW - 1
    out_rows = x.shape[-2] - halo
    total = x.new_zeros(x.shape[0])
    for top in range(0, out_rows, _SSIM_TILE_ROWS):
        xs = x[:, 0, top : min(top + _SSIM_TILE_ROWS, out_rows) + halo]
        ys = y[:, 0, top : min(top + _SSIM_TILE_ROWS, out_rows) + halo]
        mu_x, mu_y, e_sq, e_xy = _ssim_local_mean(torch.stack([xs, ys, xs * xs + ys * ys, xs * ys], 1), g).unbind(1)
        mu_xy = mu_x * mu_y
        mu_sq = mu_x * mu_x + mu_y * mu_y
        ssim_map = ((2 * mu_xy + c1) * (2 * (e_xy - mu_xy) + c2)) / ((mu_sq + c1) * (e_sq - mu_sq + c2))
        total += ssim_map.sum(dim=(1, 2))
    return total / (out_rows * (x.shape[-1] - halo))


class ReferenceY:
    """The HR side of :func:`psnr_y` and :func:`ssim_y`, prepared once for many SR outputs.

    Evaluating several methods (bicubic, checkpoints) on one test image recomputes nothing of the HR
    image: its 8-bit Y channel is made once, on construction. ``ReferenceY(hr, c).psnr(sr)``
    equals ``psnr_y(sr, hr, c)`` exactly (``psnr_y`` is computed this way), likewise ``ssim``.

    Args:
        hr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        crop_border: pixels removed at each border before comparing (use the SR scale).
        round_y: round Y to 8 bits (MATLAB ``rgb2ycbcr`` on ``uint8``), see :func:`ssim_y`.

    Example:
        >>> hr = torch.rand(1, 3, 32, 32)
        >>> ref = ReferenceY(hr, crop_border=2)
        >>> sr = (hr + 0.05).clamp(0, 1)
        >>> bool(ref.psnr(sr) == psnr_y(sr, hr, crop_border=2)), bool(ref.ssim(sr) == ssim_y(sr, hr, crop_border=2))
        (True, True)
    """

    def __init__(self, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> None:
        check_image(hr, "hr")
        check_y_channels(hr, "hr")
        if not isinstance(round_y, bool):
            raise TypeError(f"round_y must be a bool, got {type(round_y).__name__}")
        check_crop_border(hr.shape, crop_border, 1)
        self.hr = hr
        self.crop_border = crop_border
        self.round_y = round_y
        self.y = _y_channel(hr, crop_border, round_y)

    def _y_of(self, sr: Tensor, min_size: int = 1) -> Tensor:
        check_image_pair(sr, self.hr)
        check_crop_border(sr.shape, self.crop_border, min_size)
        return _y_channel(sr, self.crop_border, self.round_y)

    def psnr(self, sr: Tensor) -> Tensor:
        """``(N,)`` float64 PSNR-Y (dB) of ``sr`` against the prepared HR image; ``inf`` if identical."""
        mse = (self._y_of(sr) - self.y).pow(2).mean(dim=(1, 2, 3))
        return 10.0 * torch.log10(255.0**2 / mse)

    def ssim(self, sr: Tensor) -> Tensor:
        """``(N,)`` float64 SSIM-Y of ``sr`` against the prepared HR image; 1 if identical."""
        return _ssim_of_y(self._y_of(sr, min_size=SSIM_WINDOW), self.y)


def psnr_y(sr: Tensor, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> Tensor:
    """Per-image PSNR (dB) on the BT.601 Y channel, the SR benchmark convention.

    Both images are rounded to 8 bits, converted to Y in [16, 235] (peak 255), cropped by
    ``crop_border`` pixels on each side, and compared in float64. One-channel images are their own Y
    (levels 0..255), as grayscale test images are scored in the literature. To score several outputs
    against one HR image, :class:`ReferenceY` prepares the HR side once.

    Args:
        sr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        hr: same shape as ``sr``.
        crop_border: pixels removed at each border before comparing (use the SR scale).
        round_y: round Y to 8 bits before comparing, as MATLAB's ``rgb2ycbcr`` on ``uint8`` images
            (the RCAN / EDSR MATLAB scripts). Default False: the float Y of BasicSR's
            ``calculate_psnr(test_y_channel=True)``.

    Returns:
        ``(N,)`` float64 tensor; ``inf`` for identical images.

    Example:
        >>> hr = torch.full((1, 3, 8, 8), 0.5)
        >>> psnr_y(hr, hr).item()
        inf
    """
    check_image_pair(sr, hr)
    check_y_channels(sr, "sr and hr")
    return ReferenceY(hr, crop_border, round_y=round_y).psnr(sr)


def ssim_y(sr: Tensor, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> Tensor:
    """Per-image SSIM on the BT.601 Y channel (Wang et al. 2004, as the SR literature computes it).

    Both images are rounded to 8 bits, converted to Y (range 255), cropped by ``crop_border`` pixels
    on each side; then, in float64, local means, variances and covariance are taken with an 11x11
    Gaussian window (sigma 1.5) over the *valid* region only (no padding: the SSIM map is 10 pixels
    smaller in each direction) and ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)
    (s_x^2 + s_y^2 + C2))`` with ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2`` is averaged over the
    map. No downsampling (unlike MATLAB's later ``ssim`` function). The window is applied as two 1-D
    passes (it is separable), a block of rows at a time; :class:`ReferenceY` prepares the HR side
    once for several outputs.

    One-channel images are their own Y (levels 0..255, range 255).

    Args:
        sr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        hr: same shape as ``sr``.
        crop_border: pixels removed at each border before comparing (use the SR scale); at least
            11x11 pixels must remain.
        round_y: round Y to 8 bits first, as MATLAB's ``rgb2ycbcr`` on ``uint8`` images (the RCAN /
            EDSR MATLAB scripts). Default False: BasicSR's ``calculate_ssim(test_y_channel=True)``,
            which this equals. On the bicubic baselines (Set5, Set14, B100, x2-x4) the default reads
            0.0004-0.0010 above the published SSIM and ``round_y=True`` within 0.0004 of it (README,
            evaluation protocol); neither reproduces the tables to the fourth decimal.

    Returns:
        ``(N,)`` float64 tensor, 1 for identical images.

    Example:
        >>> hr = torch.rand(2, 3, 24, 24)
        >>> ssim_y(hr, hr, crop_border=2)
        tensor([1., 1.], dtype=torch.float64)
    """
    check_image_pair(sr, hr)
    check_y_channels(sr, "sr and hr")
    check_crop_border(sr.shape, crop_border, SSIM_WINDOW)
    return ReferenceY(hr, crop_border, round_y=round_y).ssim(sr)
