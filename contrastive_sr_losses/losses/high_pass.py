"""Gaussian high-pass (high-frequency) L1 loss of G-IDRN (Wang, Zhao, Liu, Tao, *G-IDRN*, section 2.4, eq 12).

The L1 distance between the Gaussian high-pass of the SR image and of the HR image::

    L_hf = (1/N) sum_i || H_hp(I_HR^i) - H_hp(I_SR^i) ||_1          (eq 12)
    L = alpha * L1 + beta * L_hf,   alpha = 0.4, beta = 0.6           (table 3, x2, best row)

``H_hp`` removes a Gaussian low-pass: ``x - GaussianBlur_sigma(x)`` in space (separable kernel,
reflect padding) or ``1 - exp(-D^2 / (2 D0^2))`` in the Fourier domain with ``D0 = 1 / (2 pi sigma)``
cycles per pixel (see :mod:`contrastive_sr_losses.functional.filters` for the relation). The filter is
linear, so the loss is computed as ``|H_hp(sr - hr)|``: one filter pass instead of two, and exactly the
same function.

The paper gives no sigma / cut-off. The default ``sigma=1.0`` was chosen with the short experiment
``benchmarks/high_pass_sigma.py`` (results in ``benchmarks/results/high_pass_sigma*.json`` and the
README): a tiny x2 network trained on T91 for 1500 steps with ``0.4 * L1 + 0.6 * L_hf`` for sigma in
{0.5, 1, 2, 3} against L1 alone, two seeds, PSNR-Y on Set5 / Set14. All differences were within the
seed-to-seed noise; sigma 1 was the most consistent, sigma 2 the only value below L1 in every run.
The library's loss study (``benchmarks/loss_study.py``) kept it: ``0.4 * L1 + 0.6 * L_hf`` at sigma 1
beat L1 alone in PSNR-Y on every test set after 600 iterations (LPIPS slightly higher), and sigma 2
and 0.5 were within noise of sigma 1; after 9,600 iterations its gain (+0.025 to +0.119 dB, 3 paired
seeds) was beyond noise on B100 and Urban100 only, with LPIPS no longer higher. The numbers:
``docs/loss-study.md`` on the documentation site, ``benchmarks/results/loss_study*.md`` in the
repository.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from .._validation import (
    autocast_disabled,
    check_choice,
    check_image_pair,
    check_kernel_size,
    check_reduction,
    check_sigma,
    compute_dtype,
)
from ..functional.filters import HIGH_PASS_MODES, gaussian_high_pass, high_pass_l1_sum

__all__ = ["GaussianHighPassLoss", "gaussian_high_pass_loss", "DEFAULT_HIGH_PASS_SIGMA"]

DEFAULT_HIGH_PASS_SIGMA = 1.0


def _high_pass_options(sigma: object, kernel_size: object, mode: object, reduction: object) -> tuple[float, int | None, str, str]:
    """The loss's options, checked: ``(sigma, kernel_size, mode, reduction)``."""
    sigma = check_sigma(sigma)
    check_choice(mode, "mode", HIGH_PASS_MODES)
    check_reduction(reduction)
    if kernel_size is not None:
        if mode == "fft":
            raise ValueError("kernel_size applies to mode='spatial' only; leave it None with mode='fft'")
        check_kernel_size(kernel_size)
    return sigma, kernel_size, mode, reduction  # type: ignore[return-value]


def gaussian_high_pass_loss(
    sr: Tensor,
    hr: Tensor,
    sigma: float = DEFAULT_HIGH_PASS_SIGMA,
    *,
    kernel_size: int | None = None,
    mode: str = "spatial",
    reduction: str = "mean",
) -> Tensor:
    """L1 distance between the Gaussian high-passes of ``sr`` and ``hr`` (G-IDRN eq 12).

    Args:
        sr: ``(N, C, H, W)`` network output.
        hr: ``(N, C, H, W)`` target, same shape and device (not differentiated unless it requires grad).
        sigma: standard deviation in pixels of the Gaussian low-pass that is removed (default 1.0, chosen
            by experiment: the paper gives none); in [0.25, 1000].
        kernel_size: taps of the spatial kernel, odd; default ``2 * ceil(3 sigma) + 1``. Reflect padding
            needs ``kernel_size // 2 < min(H, W)``.
        mode: ``'spatial'`` (separable convolution, reflect padding) or ``'fft'`` (Fourier-domain
            Gaussian high-pass, periodic borders).
        reduction: ``'mean'`` (over all elements, like ``F.l1_loss``; default), ``'sum'``, or ``'none'``
            for the ``(N, C, H, W)`` map of absolute differences.

    Returns:
        A scalar, or ``(N, C, H, W)`` for ``reduction='none'``; float32 for float16 / bfloat16 / float32
        inputs, float64 for float64 inputs.

    Example:
        >>> sr = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> loss = gaussian_high_pass_loss(sr, hr)
        >>> loss.backward()
        >>> float(gaussian_high_pass_loss(hr + 0.25, hr)) < 1e-6  # a brightness shift is not penalised
        True
    """
    check_image_pair(sr, hr)
    _high_pass_options(sigma, kernel_size, mode, reduction)
    dtype = compute_dtype(sr, hr)
    with autocast_disabled(sr.device.type):  # filter in float32 even inside autocast
        a, b = sr.to(dtype), hr.to(dtype)
        if mode == "spatial" and reduction != "none":
            # fused path: same function, a hand-written backward (see functional.filters._HighPassL1)
            total = high_pass_l1_sum(a, b, float(sigma), kernel_size)
            return total / sr.numel() if reduction == "mean" else total
        diff = gaussian_high_pass(a - b, float(sigma), kernel_size=kernel_size, mode=mode).abs()
    if reduction == "mean":
        return diff.mean()
    if reduction == "sum":
        return diff.sum()
    return diff


class GaussianHighPassLoss(nn.Module):
    """Gaussian high-pass (high-frequency) L1 loss of G-IDRN (Wang et al., eq 12).

    The paper's objective is ``0.4 * L1 + 0.6 * L_hf`` (table 3, x2: Set5 37.907 -> 37.975 dB over L1
    alone). The loss ignores what a Gaussian low-pass keeps (flat regions, a brightness offset), so use
    it beside an L1 term, never alone.

    Args:
        sigma: standard deviation (pixels) of the removed Gaussian low-pass; default 1.0 (chosen by
            experiment, see the module docstring).
        kernel_size: spatial kernel taps (odd; default ``2 * ceil(3 sigma) + 1``).
        mode: ``'spatial'`` (default) or ``'fft'``; the two describe the same filter
            (``D0 = 1 / (2 pi sigma)`` cycles per pixel) and agree away from the borders.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Shape:
        - sr, hr: ``(N, C, H, W)``, any floating dtype, same shape and device.
        - output: scalar, or ``(N, C, H, W)`` with ``reduction='none'``.

    Example:
        >>> import torch.nn.functional as F
        >>> criterion = GaussianHighPassLoss()
        >>> sr = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> loss = 0.4 * F.l1_loss(sr, hr) + 0.6 * criterion(sr, hr)
        >>> loss.backward()
    """

    def __init__(
        self,
        sigma: float = DEFAULT_HIGH_PASS_SIGMA,
        *,
        kernel_size: int | None = None,
        mode: str = "spatial",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.sigma, self.kernel_size, self.mode, self.reduction = _high_pass_options(sigma, kernel_size, mode, reduction)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return gaussian_high_pass_loss(
            sr, hr, self.sigma, kernel_size=self.kernel_size, mode=self.mode, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        size = "" if self.kernel_size is None else f", kernel_size={self.kernel_size}"
        return f"sigma={self.sigma:g}{size}, mode={self.mode!r}, reduction={self.reduction!r}"
