"""Tiling of an image into non-overlapping ``region x region`` blocks, partial blocks included.

Policy for sizes that are not a multiple of ``region`` (the paper, seed 000 section 3, does not say):
the last row and column of blocks are *smaller blocks*. An ``H x W`` image is covered by at most four
tiles, each a rectangle cut into equal blocks::

    +---------------------+------+
    | full r x r blocks   | r x w|   w = W mod r
    +---------------------+------+
    | h x r blocks        | h x w|   h = H mod r
    +---------------------+------+

so every pixel is an anchor exactly once, no pixel is dropped and nothing is padded. A block of
S pixels contrasts its anchors against its own S pixels only.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["Tile", "region_tiles", "to_blocks", "from_blocks"]


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
