"""Gaussian filters on ``(N, C, H, W)`` images: the 1-D kernel, a separable blur and the high-pass.

Used by the Gaussian high-pass loss (G-IDRN, Wang et al., section 2.4) and by the PCL samplers.

Two equivalent descriptions of one Gaussian low-pass with standard deviation ``sigma`` (pixels):

* in space, convolution with ``g(t) = exp(-t^2 / (2 sigma^2))`` normalised to sum 1, separable in x
  and y, truncated at ``kernel_size`` taps (default ``2 * ceil(3 sigma) + 1``, which keeps all but
  0.27% of the mass) and with reflect padding at the borders;
* in frequency, the transfer function ``exp(-D^2 / (2 D0^2))`` with ``D`` the distance from the zero
  frequency in cycles per pixel (``D^2 = fy^2 + fx^2``, ``fy, fx`` in [-1/2, 1/2)) and
  ``D0 = 1 / (2 pi sigma)``: the Fourier transform of the Gaussian above. Measured in cycles per pixel,
  D0 does not depend on the image size (textbook formulas that count D in DFT bins use
  ``D0_bins = size / (2 pi sigma)`` for a square image instead).

The high-pass is ``x - lowpass(x)`` in space and ``1 - exp(-D^2 / (2 D0^2))`` in frequency. The two
agree away from the borders (the FFT filter is periodic, the spatial one reflects at the borders), up
to the truncation of the spatial kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_choice, check_image, check_kernel_size, check_positive_float

__all__ = [
    "default_kernel_size",
    "gaussian_kernel1d",
    "gaussian_blur2d",
    "gaussian_high_pass",
    "gaussian_cutoff_frequency",
    "HIGH_PASS_MODES",
]

HIGH_PASS_MODES: tuple[str, ...] = ("spatial", "fft")


def default_kernel_size(sigma: float) -> int:
    """Odd kernel size ``2 * ceil(3 sigma) + 1`` (3 sigma on each side of the centre tap)."""
    return 2 * math.ceil(3.0 * float(sigma)) + 1


def gaussian_kernel1d(
    sigma: float | Tensor,
    kernel_size: int | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Normalised, centred 1-D Gaussian kernel(s).

    Args:
        sigma: standard deviation in pixels: a positive float, or a tensor of shape ``(B,)`` for ``B``
            kernels at once (then ``kernel_size`` must be given).
        kernel_size: odd number of taps; default ``2 * ceil(3 sigma) + 1``.
        dtype, device: of the result (default: float32 / the device of ``sigma`` if it is a tensor,
            else the CPU).

    Returns:
        ``(kernel_size,)`` for a float ``sigma``, ``(B, kernel_size)`` for a tensor; each row sums to 1.

    Example:
        >>> gaussian_kernel1d(1.0, 5)
        tensor([0.0545, 0.2442, 0.4026, 0.2442, 0.0545])
    """
    if isinstance(sigma, Tensor):
        if kernel_size is None:
            raise ValueError("kernel_size must be given when sigma is a tensor")
        if sigma.dim() != 1:
            raise ValueError(f"sigma must be a float or a 1-D tensor (B,), got shape {tuple(sigma.shape)}")
        sig = sigma.to(dtype=dtype or (sigma.dtype if sigma.is_floating_point() else torch.float32), device=device)
    else:
        sig = torch.tensor([check_positive_float(sigma, "sigma")], dtype=dtype or torch.float32, device=device)
        if kernel_size is None:
            kernel_size = default_kernel_size(float(sigma))
    check_kernel_size(kernel_size)
    half = (kernel_size - 1) / 2
    t = torch.linspace(-half, half, kernel_size, dtype=sig.dtype, device=sig.device)
    k = torch.exp(-(t[None, :] ** 2) / (2.0 * sig[:, None] ** 2))
    k = k / k.sum(dim=1, keepdim=True)
    return k if isinstance(sigma, Tensor) else k[0]


def gaussian_blur2d(
    x: Tensor, sigma: float, kernel_size: int | None = None, padding_mode: str = "reflect"
) -> Tensor:
    """Isotropic Gaussian blur of every channel, separable (a row pass, then a column pass).

    Args:
        x: ``(N, C, H, W)`` floating tensor.
        sigma: standard deviation in pixels (> 0).
        kernel_size: odd number of taps; default ``2 * ceil(3 sigma) + 1``.
        padding_mode: ``'reflect'`` (default; needs ``kernel_size // 2 < H`` and ``< W``),
            ``'replicate'`` or ``'circular'``.

    Returns:
        ``(N, C, H, W)``, same dtype and device as ``x``; the kernel sums to 1, so constants are kept.

    Example:
        >>> x = torch.ones(1, 3, 8, 8)
        >>> torch.allclose(gaussian_blur2d(x, 1.0), x)
        True
    """
    check_image(x)
    return _blur(x, check_positive_float(sigma, "sigma"), kernel_size, padding_mode).contiguous(
        memory_format=_memory_format(x)
    )


# Largest kernel applied as one 2-D depthwise convolution; larger ones use two 1-D passes (on 2 CPU
# cores the single 7x7 pass was faster than two 1-D passes, the 13x13 one slower).
MAX_2D_KERNEL = 9


def _blur_size(x: Tensor, sigma: float, kernel_size: int | None, padding_mode: str) -> int:
    size = default_kernel_size(sigma) if kernel_size is None else check_kernel_size(kernel_size)
    check_choice(padding_mode, "padding_mode", ("reflect", "replicate", "circular"))
    pad = size // 2
    h, w = x.shape[-2:]
    if padding_mode == "reflect" and (pad >= h or pad >= w):
        raise ValueError(
            f"reflect padding of {pad} pixels (kernel_size {size} for sigma {sigma:g}) needs H and W > {pad}, "
            f"got an image of {h}x{w}: use a smaller sigma / kernel_size or a larger image"
        )
    if padding_mode == "circular" and (pad > h or pad > w):  # torch wraps around at most once
        raise ValueError(
            f"circular padding of {pad} pixels (kernel_size {size} for sigma {sigma:g}) needs H and W >= {pad}, "
            f"got an image of {h}x{w}: use a smaller sigma / kernel_size or a larger image"
        )
    return size


def _depthwise_gaussian(y: Tensor, k: Tensor) -> Tensor:
    """Valid Gaussian convolution of every channel of ``y`` (1, G, H, W)."""
    g, size = y.shape[1], k.numel()
    if size <= MAX_2D_KERNEL:
        k2 = torch.outer(k, k)
        k2 = k2 / k2.sum()  # sums to 1 to the last bit, so constants pass unchanged
        return F.conv2d(y, k2.expand(g, 1, size, size).contiguous(), groups=g)
    y = F.conv2d(y, k.view(1, 1, 1, size).expand(g, 1, 1, size).contiguous(), groups=g)
    return F.conv2d(y, k.view(1, 1, size, 1).expand(g, 1, size, 1).contiguous(), groups=g)


def _blur(x: Tensor, sigma: float, kernel_size: int | None, padding_mode: str = "reflect") -> Tensor:
    """:func:`gaussian_blur2d` without the input checks (contiguous result).

    The batch is folded into the channels, ``(N, C, H, W) -> (1, N*C, H, W)``, so that the depthwise
    convolution has many channels to work on; both axes are padded once (padding then filtering rows
    equals filtering rows then padding, for these modes).
    """
    size = _blur_size(x, sigma, kernel_size, padding_mode)
    n, c, h, w = x.shape
    pad = size // 2
    k = gaussian_kernel1d(sigma, size, dtype=x.dtype, device=x.device)
    y = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode=padding_mode)
    return _depthwise_gaussian(y, k).view(n, c, h, w)


def _reflect_pad_adjoint(grad: Tensor, pad: int) -> Tensor:
    """Adjoint of ``F.pad(x, (pad,) * 4, mode='reflect')``: fold the border rows / columns of ``grad``
    ``(..., H + 2 pad, W + 2 pad)`` back onto the pixels they were copied from."""
    if pad == 0:
        return grad
    g = grad[..., pad:-pad].clone()
    g[..., 1 : pad + 1] += grad[..., :pad].flip(-1)
    g[..., -pad - 1 : -1] += grad[..., -pad:].flip(-1)
    out = g[..., pad:-pad, :].clone()
    out[..., 1 : pad + 1, :] += g[..., :pad, :].flip(-2)
    out[..., -pad - 1 : -1, :] += g[..., -pad:, :].flip(-2)
    return out


class _HighPassL1(torch.autograd.Function):
    """``sum |d - blur(d)|`` for ``d = sr - hr`` (reflect padding) with a hand-written backward.

    Autograd's own backward of this graph runs the depthwise convolution's backward kernel and the
    reflect-pad backward, together about 2.5x the forward convolution on the CPU. The transpose of a
    valid convolution with a symmetric kernel is a zero-padded forward convolution with the same kernel,
    and the transpose of reflect padding folds the borders back: that is what ``backward`` does.
    """

    @staticmethod
    def forward(ctx, sr: Tensor, hr: Tensor, sigma: float, size: int) -> Tensor:  # type: ignore[override]
        d = sr - hr
        n, c, h, w = d.shape
        pad = size // 2
        k = gaussian_kernel1d(sigma, size, dtype=d.dtype, device=d.device)
        y = F.pad(d.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
        e = d - _depthwise_gaussian(y, k).view(n, c, h, w)
        ctx.save_for_backward(torch.sign(e), k)
        ctx.pad = pad
        return e.abs().sum()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        sign, k = ctx.saved_tensors
        n, c, h, w = sign.shape
        g = sign * grad  # d loss / d e
        # d loss / d (padded input of the blur): a full convolution, i.e. zero padding then a valid one
        # (explicit F.pad: conv2d's own padding larger than kernel_size // 2 takes a slow CPU path)
        gy = _depthwise_gaussian(F.pad(g.reshape(1, n * c, h, w), (2 * ctx.pad,) * 4), k)
        gd = g - _reflect_pad_adjoint(gy, ctx.pad).view(n, c, h, w)
        return (
            gd if ctx.needs_input_grad[0] else None,
            -gd if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def high_pass_l1_sum(sr: Tensor, hr: Tensor, sigma: float, kernel_size: int | None = None) -> Tensor:
    """``sum |H(sr) - H(hr)|`` for the spatial Gaussian high-pass ``H`` (reflect padding), with a fused
    backward; inputs of one floating dtype, validated by the caller."""
    size = _blur_size(sr, sigma, kernel_size, "reflect")
    return _HighPassL1.apply(sr, hr, sigma, size)


def _memory_format(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else torch.contiguous_format


def gaussian_cutoff_frequency(sigma: float) -> float:
    """``D0 = 1 / (2 pi sigma)`` in cycles per pixel: the FFT filter matching a spatial ``sigma``."""
    return 1.0 / (2.0 * math.pi * check_positive_float(sigma, "sigma"))


def _fft_high_pass(x: Tensor, sigma: float) -> Tensor:
    h, w = x.shape[-2:]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # no half-precision FFT on CPU
    fy = torch.fft.fftfreq(h, dtype=work.dtype, device=x.device)
    fx = torch.fft.rfftfreq(w, dtype=work.dtype, device=x.device)
    d2 = fy[:, None] ** 2 + fx[None, :] ** 2
    d0 = gaussian_cutoff_frequency(sigma)
    transfer = 1.0 - torch.exp(-d2 / (2.0 * d0 * d0))
    out = torch.fft.irfft2(torch.fft.rfft2(work) * transfer, s=(h, w))
    return out.to(x.dtype)


def gaussian_high_pass(
    x: Tensor, sigma: float, *, kernel_size: int | None = None, mode: str = "spatial"
) -> Tensor:
    """What the Gaussian high-pass loss compares: the image minus its Gaussian low-pass.

    Args:
        x: ``(N, C, H, W)`` floating tensor.
        sigma: standard deviation (pixels) of the Gaussian low-pass that is removed.
        kernel_size: taps of the spatial kernel (``mode='spatial'`` only); default
            ``2 * ceil(3 sigma) + 1``.
        mode: ``'spatial'``: ``x - gaussian_blur2d(x, sigma)`` with reflect padding (a constant image
            maps to exactly 0 up to rounding); ``'fft'``: multiply the spectrum by
            ``1 - exp(-D^2 / (2 D0^2))`` with ``D0 = 1 / (2 pi sigma)`` cycles per pixel (periodic
            borders; computed in float32 for float16 / bfloat16 inputs).

    Returns:
        ``(N, C, H, W)``, the dtype and device of ``x``.

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> hp = gaussian_high_pass(x, 1.0)
        >>> hp.shape, bool(gaussian_high_pass(x + 0.5, 1.0).sub(hp).abs().max() < 1e-5)  # DC removed
        (torch.Size([1, 3, 32, 32]), True)
    """
    check_image(x)
    sigma = check_positive_float(sigma, "sigma")
    check_choice(mode, "mode", HIGH_PASS_MODES)
    if mode == "fft":
        if kernel_size is not None:
            raise ValueError("kernel_size applies to mode='spatial' only; leave it None with mode='fft'")
        return _fft_high_pass(x, sigma)
    return x - _blur(x, sigma, kernel_size)
