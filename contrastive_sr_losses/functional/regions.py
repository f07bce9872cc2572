"""Tiling of an image into non-overlapping ``region x region`` blocks, partial blocks included.

Policy for sizes that are not a multiple of ``region`` (Zhou et al., section 3, do not say):
the last row and column of blocks are *smaller blocks*. An ``H x W`` image is covered by at most four
tiles, each a rectangle cut into equal blocks::

    +---------------------+------+
    | full r x r blocks   | r x w|   w = W mod r
    +---------------------+------+
    | h x r blocks        | h x w|   h = H mod r
    +---------------------+------+

so every pixel is an anchor exactly once, no pixel is dropped and nothing is padded. A block of
S pixels contrasts its anchors against its own S pixels only.

Sliding windows (``mode='sliding'``, beyond the paper): the window of pixel (y, x) holds the pixels
(y + dy, x + dx) for dy, dx in [-(r // 2), r - 1 - r // 2] that lie inside the image. The helpers
below unfold them with zero padding plus a validity mask, so the padding never counts as a pixel.
Window position k = (dy + r // 2) * r + (dx + r // 2) (row-major in the window).

Example:
    >>> region_tiles(10, 8, region=4)        # two tiles: 4 x 4 blocks, then a 2-row strip of 2 x 4 blocks
    [Tile(y0=0, y1=8, x0=0, x1=8, bh=4, bw=4), Tile(y0=8, y1=10, x0=0, x1=8, bh=2, bw=4)]
    >>> x = torch.rand(2, 3, 8, 8)
    >>> blocks = to_blocks(x, 4, 4)          # (N * rows * cols, pixels per block, C)
    >>> blocks.shape, torch.equal(from_blocks(blocks, 2, 2, 2, 4, 4), x)
    (torch.Size([8, 16, 3]), True)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Tile",
    "region_tiles",
    "to_blocks",
    "from_blocks",
    "window_extent",
    "window_slab",
    "unfold_windows",
    "window_mask",
    "fold_windows",
]


class Tile(NamedTuple):
    """A rectangle ``[y0, y1) x [x0, x1)`` of an image, cut into blocks of ``bh x bw`` pixels."""

    y0: int
    y1: int
    x0: int
    x1: int
    bh: int
    bw: int

    @property
    def rows(self) -> int:
        """Number of block rows in the tile."""
        return (self.y1 - self.y0) // self.bh

    @property
    def cols(self) -> int:
        """Number of block columns in the tile."""
        return (self.x1 - self.x0) // self.bw

    @property
    def block_size(self) -> int:
        """Pixels per block (S)."""
        return self.bh * self.bw


def region_tiles(height: int, width: int, region: int) -> list[Tile]:
    """The (at most four) tiles that cover an ``height x width`` image with ``region``-sized blocks."""
    hf, wf = (height // region) * region, (width // region) * region
    spans_y = [(0, hf, region), (hf, height, height - hf)]
    spans_x = [(0, wf, region), (wf, width, width - wf)]
    return [
        Tile(y0, y1, x0, x1, bh, bw)
        for (y0, y1, bh) in spans_y
        for (x0, x1, bw) in spans_x
        if y1 > y0 and x1 > x0
    ]


def to_blocks(x: Tensor, bh: int, bw: int) -> Tensor:
    """``(N, C, rows*bh, cols*bw)`` -> ``(N*rows*cols, bh*bw, C)``, blocks in row-major order.

    Works for any strides (views of a larger image, ``channels_last``); always returns a new tensor.
    """
    n, c, h, w = x.shape
    rows, cols = h // bh, w // bw
    x = x.reshape(n, c, rows, bh, cols, bw).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(n * rows * cols, bh * bw, c)


def from_blocks(blocks: Tensor, n: int, rows: int, cols: int, bh: int, bw: int) -> Tensor:
    """Inverse of :func:`to_blocks`: ``(n*rows*cols, bh*bw, C)`` -> ``(n, C, rows*bh, cols*bw)`` (a view when possible)."""
    c = blocks.shape[-1]
    x = blocks.reshape(n, rows, cols, bh, bw, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, c, rows * bh, cols * bw)


def window_extent(region: int) -> tuple[int, int]:
    """``(before, after)``: a sliding window of side ``region`` spans ``y - before .. y + after``."""
    return region // 2, region - 1 - region // 2


def window_slab(x: Tensor, y0: int, y1: int, region: int) -> Tensor:
    """The rows of ``x`` that the windows of rows ``[y0, y1)`` reach, zero-padded outside the image.

    ``(N, C, H, W)`` -> ``(N, C, y1 - y0 + region - 1, W + region - 1)``; slab row k is image row
    ``y0 - before + k``, slab column k is image column ``k - before``.
    """
    h = x.shape[-2]
    before, after = window_extent(region)
    ya, yb = max(0, y0 - before), min(h, y1 + after)
    return F.pad(x[..., ya:yb, :], (before, after, before - (y0 - ya), (y1 + after) - yb))


def unfold_windows(slab: Tensor, region: int) -> Tensor:
    """``(N, C, rows + r - 1, W + r - 1)`` slab -> ``(N, C, S, rows * W)``: every window, S = r * r."""
    n, c = slab.shape[:2]
    cols = F.unfold(slab, region)  # (N, C * S, L), channel-major
    return cols.view(n, c, region * region, cols.shape[-1])


def window_mask(y0: int, y1: int, width: int, height: int, region: int, device: torch.device) -> Tensor:
    """``(S, (y1 - y0) * width)`` bool: window position k of pixel l lies inside the image."""
    ones = torch.ones(1, 1, height, width, device=device)
    return unfold_windows(window_slab(ones, y0, y1, region), region)[0, 0] > 0


def fold_windows(cols: Tensor, rows: int, width: int, region: int) -> Tensor:
    """Adjoint of :func:`unfold_windows`: ``(N, C, S, rows * W)`` -> slab ``(N, C, rows + r - 1, W + r - 1)``,
    summing what each window position holds into the pixel it refers to."""
    n, c, s, length = cols.shape
    size = (rows + region - 1, width + region - 1)
    return F.fold(cols.reshape(n, c * s, length), size, region)
