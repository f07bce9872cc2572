"""Local-region pixel contrastive loss (Zhou, Liu, Liu, *Pixel-wise Contrastive Learning for Single
Image Super-resolution*, section 3, eqs 9-11).

In every non-overlapping ``region x region`` block of S pixels, SR pixel i is an anchor; HR pixel i
and every HR pixel of the block with exactly the same value (the set P_i) are its positives; all S
HR pixels of the block form the denominator. With d(i, j) = ||sr_i - hr_j||_1 (sum over channels)::

    l_i = -log( sum_{j in P_i} exp(-d(i,j)/T) / sum_{j in block} exp(-d(i,j)/T) )     (eq 9, T = 1)

The paper combines it as ``L1 + 0.1 * L_cntr`` (eq 11, lambda_C = 0.1 is its best value, table 3)
with S = 64, i.e. ``region=8`` (its best trade-off: PSNR in table 5, training memory and time in
table 6).

The defaults (``region=8``, ``temperature=1`` on [0, 1] images, ``mode='grid'``, weight 0.1) are the
ones the library's loss study (``benchmarks/loss_study.py``) supports: ``L1 + 0.1 * loss`` beat L1
alone in PSNR-Y on every test set after 600, 2,400 and 9,600 iterations (3 paired seeds each; at
9,600 by +0.013 to +0.123 dB, less than half the 2,400-iteration gain on Set5, Set14 and B100, so
part of the early gain is faster convergence); against that default, smaller temperatures and
``region=4`` were level, while the paper-literal [0, 255] reading (``temperature=1/255`` with weight
0.1/255), ``region=16`` and ``mode='sliding'`` were behind. The numbers: ``docs/loss-study.md`` and
``docs/choosing-a-loss.md`` on the documentation site, ``benchmarks/results/loss_study*.md`` in the
repository.

Grid vs sliding (``mode``):

- ``'grid'`` (default, the paper): the image is cut into non-overlapping ``region x region``
  blocks and an anchor is contrasted with the S pixels of *its block*. A pixel at a block border
  only sees neighbours on one side (a pixel in a block's corner sees none across the border), and
  two adjacent pixels in different blocks never meet.
- ``'sliding'`` (beyond the paper): every anchor gets its own ``region x region`` window
  centred on it, HR pixels (y + dy, x + dx) for dy, dx in [-(r // 2), r - 1 - r // 2] (for even r
  the extra row / column is below / right); window pixels outside the image are left out (not
  padded), so border anchors have smaller windows. Every anchor is contrasted with all its
  neighbours on every side; the cost per anchor is the same S pairs as in grid mode.

Both modes use the same positives (window / block pixels equal to HR pixel i in every channel) and
the same equation; for ``region=1`` both are identically zero.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .. import kernels
from .._range import check_value_range_once
from .._validation import (
    check_choice,
    check_image_pair,
    check_positive_int,
    check_reduction,
    check_region,
    check_temperature,
    check_value_range,
    compute_dtype,
)
from ..functional.regions import from_blocks, region_tiles, to_blocks, unfold_windows, window_mask, window_slab

__all__ = [
    "PixelContrastiveLoss",
    "pixel_contrastive_loss",
    "pixel_contrastive_reference_map",
    "pixel_contrastive_sliding_reference_map",
    "PIXEL_CONTRASTIVE_BACKENDS",
    "PIXEL_CONTRASTIVE_MODES",
    "select_pixel_contrastive_backend",
    "pixel_contrastive_fast_map",
]

#: ``backend=``: the equation as written, or one of the fast paths of :mod:`contrastive_sr_losses.kernels`.
PIXEL_CONTRASTIVE_BACKENDS: tuple[str, ...] = ("auto", "reference", "torch", "triton")
#: ``mode=``: non-overlapping blocks (the paper) or a window centred on every anchor.
PIXEL_CONTRASTIVE_MODES: tuple[str, ...] = ("grid", "sliding")


def pixel_contrastive_reference_map(sr: Tensor, hr: Tensor, region: int = 8, temperature: float = 1.0) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` computed as plainly as eq 9 (the reference path).

    Materialises the ``(blocks, S, S, C)`` differences of the whole batch and lets autograd
    differentiate it: simple to read, memory-hungry. Inputs are validated as by
    :func:`pixel_contrastive_loss`. Output dtype: float64 if an input is float64, float32 otherwise.
    """
    check_image_pair(sr, hr)
    check_region(region, sr.shape)
    temperature = check_temperature(temperature)
    dtype = compute_dtype(sr, hr)
    n, _, h, w = sr.shape
    out = sr.new_zeros((n, 1, h, w), dtype=dtype)
    for tile in region_tiles(h, w, region):
        index = (slice(None), slice(None), slice(tile.y0, tile.y1), slice(tile.x0, tile.x1))
        a = to_blocks(sr[index], tile.bh, tile.bw).to(dtype)  # (B, S, C) anchors
        b = to_blocks(hr[index], tile.bh, tile.bw).to(dtype)  # (B, S, C) HR pixels
        d = (a[:, :, None, :] - b[:, None, :, :]).abs().sum(-1)  # d[B, i, j] = ||sr_i - hr_j||_1
        logits = -d / temperature
        positive = (b[:, :, None, :] == b[:, None, :, :]).all(-1)  # j in P_i
        numerator = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=-1)
        denominator = torch.logsumexp(logits, dim=-1)
        loss = denominator - numerator  # = -log(sum_P exp / sum_all exp)
        out[index] = from_blocks(loss.unsqueeze(-1), n, tile.rows, tile.cols, tile.bh, tile.bw)
    return out


def pixel_contrastive_sliding_reference_map(
    sr: Tensor, hr: Tensor, region: int = 8, temperature: float = 1.0
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of the sliding-window mode, computed plainly with ``F.unfold``.

    Every pixel's ``region x region`` window of HR pixels is unfolded (zero padding), a mask leaves
    out the window positions outside the image, and eq 9 is applied per anchor over its window.
    Memory ~ S x the input (``(N, C, S, H*W)``). Inputs are validated as by
    :func:`pixel_contrastive_loss`; dtypes as :func:`pixel_contrastive_reference_map`.
    """
    check_image_pair(sr, hr)
    check_region(region, sr.shape)
    temperature = check_temperature(temperature)
    dtype = compute_dtype(sr, hr)
    n, c, h, w = sr.shape
    windows = unfold_windows(window_slab(hr.to(dtype), 0, h, region), region)  # (N, C, S, HW)
    inside = window_mask(0, h, w, h, region, sr.device)  # (S, HW)
    anchors = sr.to(dtype).reshape(n, c, 1, h * w)
    centre = hr.to(dtype).reshape(n, c, 1, h * w)
    d = (anchors - windows).abs().sum(1)  # d[N, k, l] = ||sr_l - hr_(window k of l)||_1
    logits = (-d / temperature).masked_fill(~inside, float("-inf"))
    positive = (windows == centre).all(1) & inside
    numerator = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    denominator = torch.logsumexp(logits, dim=1)
    return (denominator - numerator).view(n, 1, h, w)


def _reduce(loss_map: Tensor, region: int, reduction: str, mode: str) -> Tensor:
    if reduction == "none":
        return loss_map
    if reduction == "mean":
        return loss_map.mean()
    if mode == "sliding":
        # eq 10's scale: (1/S) * sum over all anchors, i.e. the mean times the number of r x r
        # regions the batch holds (N * H * W / S), as grid mode gives when H and W are multiples of r.
        return loss_map.sum() / (region * region)
    # 'sum', eq 10: sum over blocks of the block's mean over its S anchors.
    _, _, h, w = loss_map.shape
    total = loss_map.new_zeros(())
    for tile in region_tiles(h, w, region):
        total = total + loss_map[..., tile.y0 : tile.y1, tile.x0 : tile.x1].sum() / tile.block_size
    return total


# ----------------------------------------------------------------------------------------------
# the backend: chosen here, and only here
# ----------------------------------------------------------------------------------------------
def select_pixel_contrastive_backend(backend: str, sr: Tensor) -> str:
    """Resolve ``'auto'`` for the given input (no device sync): ``'torch'`` when the Triton kernels are
    not eligible (:func:`contrastive_sr_losses.kernels.triton_eligible`); ``'auto'`` stays ``'auto'``
    when they are (the self-checked choice, made at run time by
    :func:`contrastive_sr_losses.kernels.auto_map`). Other names are returned as they are.

    Example:
        >>> select_pixel_contrastive_backend("auto", torch.rand(1, 3, 8, 8))  # CPU: never the interpreter
        'torch'
    """
    if backend != "auto":
        return backend
    return "auto" if kernels.triton_eligible(sr) else "torch"


def pixel_contrastive_fast_map(
    sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str, backend: str, chunk_size: int | None
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of ``backend`` in ``mode`` for validated inputs (``temperature``
    on the images' own scale): the references of this module, or :func:`~contrastive_sr_losses.kernels.torch_map`,
    :func:`~contrastive_sr_losses.kernels.triton_map` (strict: errors raise) or, for ``'auto'`` on inputs
    the kernels are eligible for, :func:`~contrastive_sr_losses.kernels.auto_map` (self-checked kernels)."""
    backend = select_pixel_contrastive_backend(backend, sr)
    if backend == "reference" and mode == "sliding":
        return pixel_contrastive_sliding_reference_map(sr, hr, region, temperature)
    if backend == "reference":
        return pixel_contrastive_reference_map(sr, hr, region, temperature)
    if backend == "torch":
        return kernels.torch_map(sr, hr, region, temperature, mode, chunk_size)
    if backend == "triton":
        return kernels.triton_map(sr, hr, region, temperature, mode)
    return kernels.auto_map(sr, hr, region, temperature, mode, chunk_size)


def pixel_contrastive_loss(
    sr: Tensor,
    hr: Tensor,
    region: int = 8,
    *,
    mode: str = "grid",
    temperature: float = 1.0,
    reduction: str = "mean",
    backend: str = "auto",
    chunk_size: int | None = None,
    value_range: float = 1.0,
) -> Tensor:
    r"""Local-region pixel contrastive loss (Zhou et al., eq 9-10), functional form.

    Args:
        sr: super-resolved images, ``(N, C, H, W)``, any floating dtype, any ``C >= 1``.
        hr: ground-truth images, same shape and device as ``sr`` (a different floating dtype is
            accepted, e.g. a float32 target beside a bfloat16 output under autocast).
        region: side r of the square regions (S = r*r pixels). Default 8 (S = 64, the paper's
            choice; its ablation on DIV2K_val5 x3 gives 32.425 / 32.451 / 32.458 dB for S = 16 / 64 / 256).
            When H or W is not a multiple of ``region`` the last row / column of blocks are smaller
            blocks (e.g. 8x3), so every pixel is an anchor once; ``region`` must not exceed H or W
            (in both modes).
        mode: ``'grid'`` (default, the paper): non-overlapping blocks, each anchor contrasted with
            its block. ``'sliding'``: each anchor contrasted with its own ``region x region`` window
            centred on it (offsets -(r//2) .. r-1-r//2), clipped at the image border (outside
            pixels left out, not padded). See the module docstring for the difference.
        temperature: T in ``exp(-d/T)``, always meant on the [0, 1] scale (distances of the images
            divided by ``value_range``). The paper uses T = 1 on whatever range it trains in and
            does not state the range; EDSR/RCAN-derived code trains in [0, 255], where T = 1 is
            ``temperature=1/255`` here, a much sharper softmax: at T = 1 on [0, 1] a perfect output
            still scores about log S minus a little and the softmax over the block is almost uniform.
        reduction: ``'mean'`` (default): mean of l_i over every anchor of the batch, scale-free like
            an L1 loss. ``'sum'``: the paper's literal eq 10, the sum over all blocks of the batch of
            (1/S) * sum_i l_i (a partial block uses its own S); in sliding mode, which has no blocks,
            ``(1/S) * sum_i l_i`` over all anchors with S = region**2 (the mean times N*H*W/S, the
            same scale as grid mode). ``'none'``: the per-anchor map ``(N, 1, H, W)``.
        value_range: what white is in ``sr`` and ``hr`` (1.0 for [0, 1], 255.0 for [0, 255]). The
            loss is computed on the images divided by ``value_range`` and multiplied by it, so it
            scales like an L1 loss: ``pixel_contrastive_loss(255 * sr, 255 * hr, value_range=255)``
            equals ``255 * pixel_contrastive_loss(sr, hr)`` and one line (``L1 + 0.1 * loss``) is the
            same objective in either range. (Computed exactly as T * value_range on the raw images.)
        backend: ``'auto'`` (default: ``'triton'`` for CUDA tensors when triton is importable
            and its kernels pass a self-check on first use per configuration, see
            :mod:`contrastive_sr_losses.kernels.selfcheck`; ``'torch'`` otherwise), ``'torch'``
            (chunked, analytic backward, memory bounded, any device), ``'triton'`` (fused kernels, CUDA; CPU only in Triton's interpreter,
            ``TRITON_INTERPRET=1``) or ``'reference'`` (the equation as written; memory ~ S x C x
            the input).
        chunk_size: work per chunk of the ``'torch'`` backend, in blocks (sliding mode: groups of
            ``region**2`` anchors); ``None`` keeps each work tensor near 4 MiB. The result does not
            depend on it.

    Returns:
        A scalar, or the ``(N, 1, H, W)`` map for ``reduction='none'``; float32 (float64 if an input
        is float64), also for float16 / bfloat16 inputs, which are computed in float32.

    Positives P_i are the HR pixels of the block equal to HR pixel i in *every* channel (exact float
    equality, common in flat or saturated 8-bit regions); i itself is always one. No gradient flows
    through the choice of P_i.

    Example:
        >>> sr = torch.rand(2, 3, 16, 16, requires_grad=True)
        >>> hr = torch.rand(2, 3, 16, 16)
        >>> loss = pixel_contrastive_loss(sr, hr, region=8)
        >>> loss.backward()
        >>> pixel_contrastive_loss(sr, hr, region=8, reduction="none").shape
        torch.Size([2, 1, 16, 16])
        >>> sliding = pixel_contrastive_loss(sr, hr, region=8, mode="sliding")
        >>> sliding.shape, sliding.dtype
        (torch.Size([]), torch.float32)
    """
    check_image_pair(sr, hr)
    check_region(region, sr.shape)
    check_choice(mode, "mode", PIXEL_CONTRASTIVE_MODES)
    temperature = check_temperature(temperature)
    check_reduction(reduction)
    check_choice(backend, "backend", PIXEL_CONTRASTIVE_BACKENDS)
    if chunk_size is not None:
        check_positive_int(chunk_size, "chunk_size")
    value_range = check_value_range(value_range)
    t_raw = temperature * value_range  # d(x / v) / T = d(x) / (v T): no pass over the images
    loss_map = pixel_contrastive_fast_map(sr, hr, region, t_raw, mode, backend, chunk_size)
    loss = _reduce(loss_map, region, reduction, mode)
    return loss * value_range if value_range != 1.0 else loss


class PixelContrastiveLoss(nn.Module):
    r"""Local-region pixel contrastive loss of Zhou et al. (eq 9-10), as a module.

    Drop-in beside an L1 loss, as in the paper's eq 11 (``lambda_C = 0.1``)::

        criterion = PixelContrastiveLoss(region=8)
        loss = F.l1_loss(sr, hr) + 0.1 * criterion(sr, hr)

    Args:
        region: side of the square regions, default 8 (S = 64, the paper's default; kept by the loss
            study, where 4 was level with it and 16 behind).
        mode: ``'grid'`` (default, the paper's non-overlapping blocks) or ``'sliding'`` (a window
            centred on every anchor, clipped at the border).
        temperature: softmax temperature T on the [0, 1] scale, default 1.0 (the paper's eq 9; the
            loss study put it ahead of the [0, 255] reading T = 1/255 on all five test sets).
        reduction: ``'mean'`` (default), ``'sum'`` (literal eq 10) or ``'none'``.
        value_range: what white is in the inputs (1.0 or 255.0); the loss scales like L1 with it.
        backend: ``'auto'``, ``'torch'``, ``'triton'`` or ``'reference'``.
        chunk_size: work per chunk of the ``'torch'`` backend (``None``: automatic).

    Shape:
        - sr, hr: ``(N, C, H, W)``.
        - output: scalar, or ``(N, 1, H, W)`` with ``reduction='none'``.

    See :func:`pixel_contrastive_loss` for the exact definition, the policy for sizes that are not
    a multiple of ``region``, dtypes and positives.

    Example:
        >>> criterion = PixelContrastiveLoss(region=8)
        >>> sr = torch.rand(4, 3, 32, 32, requires_grad=True)
        >>> hr = torch.rand(4, 3, 32, 32)
        >>> loss = torch.nn.functional.l1_loss(sr, hr) + 0.1 * criterion(sr, hr)
        >>> loss.backward()
        >>> PixelContrastiveLoss(region=8, mode="sliding")
        PixelContrastiveLoss(region=8, mode='sliding', temperature=1.0, reduction='mean', backend='auto')
    """

    def __init__(
        self,
        region: int = 8,
        *,
        mode: str = "grid",
        temperature: float = 1.0,
        reduction: str = "mean",
        backend: str = "auto",
        chunk_size: int | None = None,
        value_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.region = check_positive_int(region, "region")
        self.mode = check_choice(mode, "mode", PIXEL_CONTRASTIVE_MODES)
        self.temperature = check_temperature(temperature)
        self.reduction = check_reduction(reduction)
        self.backend = check_choice(backend, "backend", PIXEL_CONTRASTIVE_BACKENDS)
        self.chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        self.value_range = check_value_range(value_range)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_value_range_once(self, sr, hr, self.value_range)
        return pixel_contrastive_loss(
            sr,
            hr,
            self.region,
            mode=self.mode,
            temperature=self.temperature,
            reduction=self.reduction,
            backend=self.backend,
            chunk_size=self.chunk_size,
            value_range=self.value_range,
        )

    def extra_repr(self) -> str:
        return (
            f"region={self.region}, mode={self.mode!r}, temperature={self.temperature}, "
            f"reduction={self.reduction!r}, backend={self.backend!r}"
            + (f", value_range={self.value_range:g}" if self.value_range != 1.0 else "")
        )
