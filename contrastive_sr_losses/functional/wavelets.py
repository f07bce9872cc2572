"""One-level 2-D discrete wavelet transform of ``(N, C, H, W)`` tensors as strided convolutions.

The filters are PyWavelets' (``pywt.Wavelet(name).dec_lo`` ... ``rec_hi``), so every discrete wavelet
PyWavelets knows works, and the results equal ``pywt.dwt2`` / ``pywt.idwt2`` on the last two axes:

* analysis (:func:`dwt2`): extend the image at its borders (``mode``), then one depthwise conv with
  stride 2 whose ``4 C`` outputs are the outer products of the reversed low / high-pass filters;
  ``F``-tap filters give ``floor((H + F - 1) / 2)`` rows (``H / 2`` for Haar and even ``H``);
* synthesis (:func:`idwt2`): one depthwise transposed conv with stride 2 of the reconstruction
  filters, keeping the central part, ``2 h - F + 2`` rows (PyWavelets' length; pass ``size`` to crop
  the odd-sized input back).

Sub-band names follow the image-processing convention, first letter the filter along the width
(horizontal), second along the height: ``LH`` = low-pass along W, high-pass along H (horizontal
edges; PyWavelets' ``cH``), ``HL`` = PyWavelets' ``cV`` (vertical edges), ``HH`` = ``cD`` (diagonal).

PCL (Wu et al., section 3.3) feeds its discriminator the stacked ``LH, HL, HH`` Haar
sub-bands; :func:`high_frequency_bands` computes exactly that.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import pywt
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_choice, check_image, check_int_pair

__all__ = [
    "DWT_MODES",
    "WaveletBands",
    "DWT2",
    "dwt2",
    "idwt2",
    "haar_dwt",
    "haar_idwt",
    "high_frequency_bands",
    "analysis_filter_bank",
    "synthesis_filter_bank",
]

# Border extensions, with PyWavelets' names: 'symmetric' (pywt's default) repeats the edge sample
# (... x1 x0 | x0 x1 ...), 'reflect' mirrors about it (... x2 x1 | x0 x1 x2 ..., torch's 'reflect'),
# 'zero' pads zeros, 'constant' repeats the edge value (torch's 'replicate'), 'periodic' wraps around.
DWT_MODES: tuple[str, ...] = ("symmetric", "reflect", "zero", "constant", "periodic")


class WaveletBands(NamedTuple):
    """The four sub-bands of a one-level 2-D DWT, each ``(N, C, h, w)``."""

    ll: Tensor
    lh: Tensor
    hl: Tensor
    hh: Tensor


def _filters(wavelet: str) -> tuple[tuple[float, ...], ...]:
    """``(dec_lo, dec_hi, rec_lo, rec_hi)`` of a discrete PyWavelets wavelet, as Python floats."""
    if not isinstance(wavelet, str):
        raise TypeError(f"wavelet must be a wavelet name such as 'haar' or 'db2', got {type(wavelet).__name__}")
    return _named_filters(wavelet)


@functools.cache
def _named_filters(wavelet: str) -> tuple[tuple[float, ...], ...]:
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise ValueError(
            f"wavelet must be a discrete wavelet of PyWavelets (pywt.wavelist(kind='discrete'): 'haar', "
            f"'db2', 'sym4', 'bior2.2', ...), got {wavelet!r}"
        )
    w = pywt.Wavelet(wavelet)
    return tuple(tuple(float(v) for v in f) for f in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi))


def _bank(lo: Tensor, hi: Tensor) -> Tensor:
    """``(4, F, F)`` outer products in band order LL, LH, HL, HH: ``bank[b, i, j] = f_H[i] * f_W[j]``."""
    pairs = ((lo, lo), (hi, lo), (lo, hi), (hi, hi))  # (filter along H, filter along W)
    return torch.stack([fh[:, None] * fw[None, :] for fh, fw in pairs])


def analysis_filter_bank(wavelet: str = "haar", *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """The ``(4, F, F)`` correlation kernels of :func:`dwt2` (LL, LH, HL, HH), from ``pywt.Wavelet(wavelet)``.

    PyWavelets convolves with ``dec_lo`` / ``dec_hi``; a convolution is a correlation with the reversed
    filter, which is what ``F.conv2d`` computes, hence the flip.

    Example:
        >>> analysis_filter_bank("haar")[0]
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    dec_lo, dec_hi, _, _ = _filters(wavelet)
    lo = torch.tensor(dec_lo[::-1], dtype=dtype, device=device)
    hi = torch.tensor(dec_hi[::-1], dtype=dtype, device=device)
    return _bank(lo, hi)


def synthesis_filter_bank(wavelet: str = "haar", *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """The ``(4, F, F)`` transposed-convolution kernels of :func:`idwt2` (LL, LH, HL, HH)."""
    _, _, rec_lo, rec_hi = _filters(wavelet)
    lo = torch.tensor(rec_lo, dtype=dtype, device=device)
    hi = torch.tensor(rec_hi, dtype=dtype, device=device)
    return _bank(lo, hi)


def _extension_index(n: int, left: int, right: int, mode: str, device: torch.device) -> Tensor:
    """Indices into ``range(n)`` of the signal extended by ``left`` / ``right`` samples (any length)."""
    t = torch.arange(-left, n + right, device=device)
    if mode == "symmetric":  # half-sample symmetric, period 2n
        t = t.remainder(2 * n)
        return torch.where(t >= n, 2 * n - 1 - t, t)
    if mode == "reflect":  # whole-sample symmetric, period 2n - 2 (n >= 2, checked by the caller)
        t = t.remainder(2 * n - 2)
        return torch.where(t >= n, 2 * n - 2 - t, t)
    if mode == "periodic":
        return t.remainder(n)
    return t.clamp(0, n - 1)  # 'constant': repeat the edge value


def _extend(x: Tensor, dim: int, left: int, right: int, mode: str) -> Tensor:
    if left == 0 and right == 0:
        return x
    if mode == "zero":
        pad = [0, 0, 0, 0]
        pad[(3 - dim) * 2 : (3 - dim) * 2 + 2] = [left, right]  # F.pad lists the last dim first
        return F.pad(x, pad)
    return x.index_select(dim, _extension_index(x.shape[dim], left, right, mode, x.device))


def _dwt2_with_bank(x: Tensor, bank: Tensor, mode: str) -> WaveletBands:
    """:func:`dwt2` with a precomputed ``(4, F, F)`` analysis bank; no input checks."""
    n, c, h, w = x.shape
    f = bank.shape[-1]
    if mode == "reflect" and min(h, w) < 2:
        raise ValueError(f"mode='reflect' needs H and W >= 2 (it mirrors about the edge sample), got {h}x{w}")
    # pywt: out[o] = sum_j dec[j] * ext[2 o + 1 - j], o < floor((len + F - 1) / 2). As a stride-2
    # correlation with the reversed filter, the extended signal starts F - 2 samples before x[0].
    left = f - 2
    out_h, out_w = (h + f - 1) // 2, (w + f - 1) // 2
    y = _extend(x, 2, left, 2 * (out_h - 1) + f - h - left, mode)
    y = _extend(y, 3, left, 2 * (out_w - 1) + f - w - left, mode)
    weight = bank.to(x.dtype).unsqueeze(1).repeat(c, 1, 1, 1)  # (4C, 1, F, F): LL, LH, HL, HH per channel
    out = F.conv2d(y, weight, stride=2, groups=c)
    ll, lh, hl, hh = out.unflatten(1, (c, 4)).unbind(2)
    return WaveletBands(ll, lh, hl, hh)


def dwt2(x: Tensor, wavelet: str = "haar", mode: str = "symmetric") -> WaveletBands:
    """One-level 2-D DWT of every channel: ``pywt.dwt2(x, wavelet, mode, axes=(-2, -1))`` in torch.

    Args:
        x: ``(N, C, H, W)`` floating tensor (any size, odd sizes included).
        wavelet: a discrete PyWavelets wavelet name (``'haar'``, ``'db2'``, ``'sym4'``, ``'bior2.2'``...).
        mode: border extension, one of :data:`DWT_MODES` (PyWavelets' names; default ``'symmetric'``,
            PyWavelets' default). Haar on even sizes reads no border sample, so the mode does not matter.

    Returns:
        :class:`WaveletBands` ``(ll, lh, hl, hh)``, each ``(N, C, floor((H + F - 1) / 2),
        floor((W + F - 1) / 2))`` for an ``F``-tap wavelet, in ``x``'s dtype and device (computed in it).
        ``lh`` / ``hl`` / ``hh`` are PyWavelets' ``cH`` / ``cV`` / ``cD``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> ll, lh, hl, hh = dwt2(x, "haar")
        >>> ll.shape
        torch.Size([2, 3, 4, 4])
        >>> torch.allclose(idwt2(ll, lh, hl, hh, "haar"), x, atol=1e-6)
        True
    """
    check_image(x, "x")
    bank = analysis_filter_bank(wavelet, dtype=x.dtype, device=x.device)
    return _dwt2_with_bank(x, bank, check_choice(mode, "mode", DWT_MODES))


def _idwt2_with_bank(bands: tuple[Tensor, Tensor, Tensor, Tensor], bank: Tensor, size: tuple[int, int] | None) -> Tensor:
    ll = bands[0]
    n, c, h, w = ll.shape
    f = bank.shape[-1]
    weight = bank.to(ll.dtype).unsqueeze(1).repeat(c, 1, 1, 1)  # (4C, 1, F, F), 4 inputs -> 1 output per group
    stacked = torch.stack(bands, dim=2).flatten(1, 2)  # (N, 4C, h, w): LL, LH, HL, HH per channel
    full = F.conv_transpose2d(stacked, weight, stride=2, groups=c)  # (N, C, 2 h + F - 2, 2 w + F - 2)
    crop = f - 2  # pywt keeps the central 2 h - F + 2 samples
    out_h, out_w = 2 * h - f + 2, 2 * w - f + 2
    if size is not None:
        out_h, out_w = size
    return full[..., crop : crop + out_h, crop : crop + out_w]


def idwt2(
    ll: Tensor,
    lh: Tensor,
    hl: Tensor,
    hh: Tensor,
    wavelet: str = "haar",
    *,
    size: tuple[int, int] | None = None,
) -> Tensor:
    """Inverse of :func:`dwt2`: ``pywt.idwt2((ll, (lh, hl, hh)), wavelet, axes=(-2, -1))`` in torch.

    PyWavelets' inverse does not depend on the border mode (it keeps the samples that need no
    border), so there is no ``mode`` argument.

    Args:
        ll, lh, hl, hh: the four sub-bands, each ``(N, C, h, w)`` of one dtype and device.
        wavelet: the wavelet of the forward transform.
        size: ``(H, W)`` of the original image, to crop the reconstruction to it (PyWavelets returns
            ``2 h - F + 2`` rows, one more than an odd ``H``). ``None`` keeps PyWavelets' size.

    Returns:
        ``(N, C, H, W)``; ``idwt2(*dwt2(x, wavelet, mode), wavelet, size=x.shape[-2:])`` equals ``x`` up to
        rounding for every mode and size (perfect reconstruction).
    """
    bands = (ll, lh, hl, hh)
    for name, band in zip(("ll", "lh", "hl", "hh"), bands):
        check_image(band, name)
        if band.shape != ll.shape or band.dtype != ll.dtype or band.device != ll.device:
            raise ValueError(
                f"ll, lh, hl, hh must share one shape, dtype and device; {name} is {tuple(band.shape)} "
                f"{band.dtype} on {band.device}, ll is {tuple(ll.shape)} {ll.dtype} on {ll.device}"
            )
    bank = synthesis_filter_bank(wavelet, dtype=ll.dtype, device=ll.device)
    f = bank.shape[-1]
    if size is not None:
        size = check_int_pair(size, "size")
        h, w = ll.shape[-2:]
        if not (0 < size[0] <= 2 * h - f + 2 and 0 < size[1] <= 2 * w - f + 2):
            raise ValueError(
                f"size must be at most the full reconstruction {(2 * h - f + 2, 2 * w - f + 2)} of "
                f"{h}x{w} sub-bands with a {f}-tap wavelet, got {size}"
            )
    return _idwt2_with_bank(bands, bank, size)


def haar_dwt(x: Tensor) -> WaveletBands:
    """One-level 2-D Haar DWT, ``dwt2(x, 'haar')``: ``(N, C, H, W)`` -> four ``(N, C, ceil(H/2), ceil(W/2))``.

    Example:
        >>> ll, lh, hl, hh = haar_dwt(torch.ones(1, 1, 4, 4))
        >>> round(ll[0, 0, 0, 0].item(), 5), lh.abs().max().item()  # 4 * (1/sqrt(2))^2 and no detail
        (2.0, 0.0)
    """
    return dwt2(x, "haar")


def haar_idwt(ll: Tensor, lh: Tensor, hl: Tensor, hh: Tensor, *, size: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`haar_dwt`, ``idwt2(ll, lh, hl, hh, 'haar', size=size)``."""
    return idwt2(ll, lh, hl, hh, "haar", size=size)


def high_frequency_bands(x: Tensor, wavelet: str = "haar", mode: str = "symmetric") -> Tensor:
    """The detail sub-bands stacked on the channel axis, ``cat([LH, HL, HH], 1)``: PCL's H_w (eq 7).

    Shape: ``(N, C, H, W)`` -> ``(N, 3 C, h, w)``, channels ordered LH of every input channel, then HL,
    then HH.

    Example:
        >>> high_frequency_bands(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 9, 8, 8])
    """
    _, lh, hl, hh = dwt2(x, wavelet, mode)
    return torch.cat([lh, hl, hh], dim=1)


class DWT2(nn.Module):
    """:func:`dwt2` as a module whose filter bank is a (non-persistent) buffer.

    The bank moves with ``.to(device)`` and is built once, so the forward makes no host-to-device
    copy; it is cast to the input's dtype at each call. Not in the ``state_dict`` (it is a function of
    ``wavelet``).

    Args:
        wavelet: discrete PyWavelets wavelet name, default ``'haar'``.
        mode: border extension, one of :data:`DWT_MODES`, default ``'symmetric'``.
        high_only: return ``cat([LH, HL, HH], 1)`` (``(N, 3 C, h, w)``) instead of the four bands.

    Example:
        >>> DWT2("haar", high_only=True)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 9, 4, 4])
    """

    filter_bank: Tensor

    def __init__(self, wavelet: str = "haar", mode: str = "symmetric", *, high_only: bool = False) -> None:
        super().__init__()
        self.wavelet, self.mode, self.high_only = wavelet, check_choice(mode, "mode", DWT_MODES), bool(high_only)
        self.register_buffer("filter_bank", analysis_filter_bank(wavelet), persistent=False)

    def forward(self, x: Tensor) -> WaveletBands | Tensor:
        check_image(x, "x")
        bands = _dwt2_with_bank(x, self.filter_bank, self.mode)
        if self.high_only:
            return torch.cat([bands.lh, bands.hl, bands.hh], dim=1)
        return bands

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, mode={self.mode!r}, high_only={self.high_only}"
