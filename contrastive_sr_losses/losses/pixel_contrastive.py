"""Local-region pixel contrastive loss (Zhou, Liu, Liu, *Pixel-wise Contrastive Learning for Single
Image Super-resolution*, seed 000, section 3, eqs 9-11).

In every non-overlapping ``region x region`` block of S pixels, SR pixel i is an anchor; HR pixel i
and every HR pixel of the block with exactly the same value (the set P_i) are its positives; all S
HR pixels of the block form the denominator. With d(i, j) = ||sr_i - hr_j||_1 (sum over channels)::

    l_i = -log( sum_{j in P_i} exp(-d(i,j)/T) / sum_{j in block} exp(-d(i,j)/T) )     (eq 9, T = 1)

The paper combines it as ``L1 + 0.1 * L_cntr`` (eq 11, lambda_C = 0.1 is its best value, table 5)
with S = 64, i.e. ``region=8`` (its best trade-off, table 8).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .._validation import (
    check_choice,
    check_image_pair,
    check_positive_float,
    check_positive_int,
    compute_dtype,
)
from ..functional.regions import from_blocks, region_tiles, to_blocks
from ..kernels import (
    PIXEL_CONTRASTIVE_BACKENDS,
    pixel_contrastive_map_torch,
    select_pixel_contrastive_backend,
)

__all__ = ["PixelContrastiveLoss", "pixel_contrastive_loss", "pixel_contrastive_reference_map"]

REDUCTIONS = ("mean", "sum", "none")


def pixel_contrastive_reference_map(sr: Tensor, hr: Tensor, region: int = 8, temperature: float = 1.0) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` computed as plainly as eq 9 (the reference path).

    Materialises the ``(blocks, S, S, C)`` differences of the whole batch and lets autograd
    differentiate it: simple to read, memory-hungry. Inputs are assumed validated. Output dtype:
    float64 if an input is float64, float32 otherwise.
    """
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


def _reduce(loss_map: Tensor, region: int, reduction: str) -> Tensor:
    if reduction == "none":
        return loss_map
    if reduction == "mean":
        return loss_map.mean()
    # 'sum', eq 10: sum over blocks of the block's mean over its S anchors.
    _, _, h, w = loss_map.shape
    total = loss_map.new_zeros(())
    for tile in region_tiles(h, w, region):
        total = total + loss_map[..., tile.y0 : tile.y1, tile.x0 : tile.x1].sum() / tile.block_size
    return total


def _check_args(
    sr: Tensor, hr: Tensor, region: int, temperature: float, reduction: str, backend: str, chunk_size: int | None
) -> float:
    check_image_pair(sr, hr)
    check_positive_int(region, "region")
    h, w = sr.shape[-2:]
    if region > min(h, w):
        raise ValueError(
            f"region must be <= the image's height and width, got region={region} for an image of {h}x{w}"
        )
    temperature = check_positive_float(temperature, "temperature")
    check_choice(reduction, "reduction", REDUCTIONS)
    check_choice(backend, "backend", PIXEL_CONTRASTIVE_BACKENDS)
    if chunk_size is not None:
        check_positive_int(chunk_size, "chunk_size")
    return temperature


def pixel_contrastive_loss(
    sr: Tensor,
    hr: Tensor,
    region: int = 8,
    *,
    temperature: float = 1.0,
    reduction: str = "mean",
    backend: str = "auto",
    chunk_size: int | None = None,
) -> Tensor:
    r"""Local-region pixel contrastive loss (seed 000, eq 9-10), functional form.

    Args:
        sr: super-resolved images, ``(N, C, H, W)``, any floating dtype, any ``C >= 1``.
        hr: ground-truth images, same shape and device as ``sr`` (a different floating dtype is
            accepted, e.g. a float32 target beside a bfloat16 output under autocast).
        region: side r of the square regions (S = r*r pixels). Default 8 (S = 64, the paper's
            choice; its ablation on DIV2K_val5 x3 gives 32.425 / 32.451 / 32.458 dB for S = 16 / 64 / 256).
            When H or W is not a multiple of ``region`` the last row / column of blocks are smaller
            blocks (e.g. 8x3), so every pixel is an anchor once; ``region`` must not exceed H or W.
        temperature: T in ``exp(-d/T)``. The paper uses 1 on whatever value range it trains in; the
            softmax sharpness depends on that range (d <= 3 for RGB in [0, 1], <= 765 in [0, 255]),
            so for [0, 255] data ``temperature=255`` gives the [0, 1] behaviour. The paper does not
            state its range; EDSR/RCAN-derived code trains in [0, 255], and T = 1 there equals
            ``temperature=1/255`` on [0, 1] data (a much sharper softmax: at T = 1 on [0, 1] the
            loss of a perfect output is still about log S minus a little, and its gradient is weak).
        reduction: ``'mean'`` (default): mean of l_i over every anchor of the batch, scale-free like
            an L1 loss. ``'sum'``: the paper's literal eq 10, the sum over all blocks of the batch of
            (1/S) * sum_i l_i (a partial block uses its own S). ``'none'``: the per-anchor map
            ``(N, 1, H, W)``.
        backend: ``'auto'`` (fastest available), ``'torch'`` (chunked, analytic backward, memory
            bounded) or ``'reference'`` (the equation as written; memory ~ S x C x the input).
        chunk_size: blocks processed at once by the ``'torch'`` backend; ``None`` keeps each
            ``(chunk, S, S)`` work tensor near 4 MiB. The result does not depend on it.

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
    """
    temperature = _check_args(sr, hr, region, temperature, reduction, backend, chunk_size)
    backend = select_pixel_contrastive_backend(backend, sr)
    if backend == "reference":
        loss_map = pixel_contrastive_reference_map(sr, hr, region, temperature)
    else:
        loss_map = pixel_contrastive_map_torch(sr, hr, region, temperature, chunk_size)
    return _reduce(loss_map, region, reduction)


class PixelContrastiveLoss(nn.Module):
    r"""Local-region pixel contrastive loss of Zhou et al. (seed 000, eq 9-10), as a module.

    Drop-in beside an L1 loss, as in the paper's eq 11 (``lambda_C = 0.1``)::

        criterion = PixelContrastiveLoss(region=8)
        loss = F.l1_loss(sr, hr) + 0.1 * criterion(sr, hr)

    Args:
        region: side of the square regions, default 8 (S = 64, the paper's default).
        temperature: softmax temperature T, default 1.0 (the paper's eq 9).
        reduction: ``'mean'`` (default), ``'sum'`` (literal eq 10) or ``'none'``.
        backend: ``'auto'``, ``'torch'`` or ``'reference'``.
        chunk_size: blocks per chunk of the ``'torch'`` backend (``None``: automatic).

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
    """

    def __init__(
        self,
        region: int = 8,
        *,
        temperature: float = 1.0,
        reduction: str = "mean",
        backend: str = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        self.region = check_positive_int(region, "region")
        self.temperature = check_positive_float(temperature, "temperature")
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self.backend = check_choice(backend, "backend", PIXEL_CONTRASTIVE_BACKENDS)
        self.chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return pixel_contrastive_loss(
            sr,
            hr,
            self.region,
            temperature=self.temperature,
            reduction=self.reduction,
            backend=self.backend,
            chunk_size=self.chunk_size,
        )

    def extra_repr(self) -> str:
        return f"region={self.region}, temperature={self.temperature}, reduction={self.reduction!r}, backend={self.backend!r}"
