"""Memory-bounded PyTorch path of the local-region pixel contrastive loss (any device).

The loss of anchor i in a block (Zhou et al., eq 9, temperature T) is::

    l_i = logsumexp_j(-d_ij / T) - log sum_{j in P_i} exp(-d_ij / T),   d_ij = ||sr_i - hr_j||_1

Every j in P_i has hr_j == hr_i exactly, hence d_ij == d_ii, and the positive term is exactly
``-d_ii / T + log|P_i|``. So::

    l_i = lse_i + d_ii / T - log|P_i|                                   (forward)
    dl_i/dsr_i = -(1/T) * (sum_j p_ij sign(sr_i - hr_j) - sign(sr_i - hr_i)),  p_i = softmax_j(-d_ij/T)
    dl_i/dhr_j =  (1/T) * (p_ij - q_ij) sign(sr_i - hr_j),   q_ij = [j in P_i] / |P_i|

The forward keeps only ``lse`` (one value per pixel) for the backward, which recomputes the
distances. Blocks are processed in chunks of about ``chunk_size`` blocks, so the working set is a
few ``chunk_size x S x S`` tensors whatever the batch size; the per-pair work is one ``cdist(p=1)``
and, in the backward, one sign-weighted sum per channel.

The two passes are registered as ``torch.library`` custom ops with an autograd formula, so
``torch.compile`` treats them as single opaque nodes (no graph breaks) and the fake (meta)
implementations give it the output shapes.

This module is also the ``'torch'`` backend's entry in both modes (the sliding-mode ops are in
:mod:`.pixel_contrastive_sliding_torch`): :func:`torch_map` for the loss, and the
:func:`torch_forward` / :func:`torch_backward` pair that ``backend='auto'`` and its self-check call.

Example:
    >>> from contrastive_sr_losses import pixel_contrastive_reference_map
    >>> sr, hr = torch.rand(2, 3, 12, 10), torch.rand(2, 3, 12, 10)
    >>> fast = torch_map(sr, hr, 8, 1.0, chunk_size=1)     # partial blocks at the edges, one block per chunk
    >>> torch.allclose(fast, pixel_contrastive_reference_map(sr, hr, 8), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .._validation import compute_dtype
from ..functional.regions import Tile, from_blocks, region_tiles, to_blocks
from ._autograd import default_chunk_size, new_grads, new_maps, register_map_ops
from .pixel_contrastive_sliding_torch import sliding_backward, sliding_forward

__all__ = ["torch_map", "torch_forward", "torch_backward", "pixel_contrastive_map_torch", "default_chunk_size"]


def _chunks(tile: Tile, n: int, chunk_size: int) -> Iterator[tuple[int, int, int, int]]:
    """Split (images x block rows) of a tile into pieces of about ``chunk_size`` blocks."""
    per_image = tile.rows * tile.cols
    if per_image <= chunk_size:
        step = max(1, chunk_size // per_image)
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, tile.rows
    else:
        step = max(1, chunk_size // tile.cols)
        for n0 in range(n):
            for r0 in range(0, tile.rows, step):
                yield n0, n0 + 1, r0, min(tile.rows, r0 + step)


def _iter_pieces(
    shape: torch.Size, region: int, chunk_size: int
) -> Iterator[tuple[Tile, tuple[slice, ...], int, int]]:
    """Yield (tile, index into an (N, C, H, W) tensor, images, block rows) for every chunk of every tile."""
    n, _, h, w = shape
    for tile in region_tiles(h, w, region):
        for n0, n1, r0, r1 in _chunks(tile, n, chunk_size):
            ya, yb = tile.y0 + r0 * tile.bh, tile.y0 + r1 * tile.bh
            index = (slice(n0, n1), slice(None), slice(ya, yb), slice(tile.x0, tile.x1))
            yield tile, index, n1 - n0, r1 - r0


def _blocks(x: Tensor, tile: Tile, dtype: torch.dtype) -> Tensor:
    return to_blocks(x, tile.bh, tile.bw).to(dtype)


def _write(out: Tensor, index: tuple[slice, ...], blocks: Tensor, n: int, rows: int, tile: Tile) -> None:
    out[index] = from_blocks(blocks, n, rows, tile.cols, tile.bh, tile.bw)


def _positive_mask(hb: Tensor) -> Tensor:
    """``(B, S, S)`` bool: hr_i == hr_j in every channel (L1 distance exactly 0)."""
    return torch.cdist(hb, hb, p=1) == 0


# ----------------------------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------------------------
@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_grid_fwd", mutates_args=())
def _grid_fwd(sr: Tensor, hr: Tensor, region: int, temperature: float, chunk_size: int) -> tuple[Tensor, Tensor]:
    dtype = compute_dtype(sr, hr)
    inv_t = 1.0 / temperature
    loss, lse_map = new_maps(sr, hr)
    for tile, index, m, rows in _iter_pieces(sr.shape, region, chunk_size):
        a, b = _blocks(sr[index], tile, dtype), _blocks(hr[index], tile, dtype)
        logits = torch.cdist(a, b, p=1).mul_(-inv_t)  # (B, S, S)
        lse = torch.logsumexp(logits, dim=-1)  # (B, S)
        count = _positive_mask(b).sum(-1)
        l_i = lse - logits.diagonal(dim1=1, dim2=2) - count.to(dtype).log_()  # diagonal = -d_ii / T
        _write(loss, index, l_i.unsqueeze(-1), m, rows, tile)
        _write(lse_map, index, lse.unsqueeze(-1), m, rows, tile)
    return loss, lse_map


# ----------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------
def _sign_weighted_sum(a: Tensor, b: Tensor, weight: Tensor, dim: int) -> Tensor:
    """``sum over dim of weight[:, i, j] * sign(a[:, i, c] - b[:, j, c])`` for every channel c, as (B, S, C).

    One ``(B, S, S)`` temporary per channel instead of a ``(B, S, S, C)`` one.
    """
    at, bt = a.transpose(1, 2).contiguous(), b.transpose(1, 2).contiguous()  # (B, C, S)
    out = a.new_empty(at.shape)
    for c in range(at.shape[1]):
        s = at[:, c, :, None] - bt[:, c, None, :]
        out[:, c] = s.sign_().mul_(weight).sum(dim)
    return out.transpose(1, 2)


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_grid_bwd", mutates_args=())
def _grid_bwd(
    grad: Tensor,
    sr: Tensor,
    hr: Tensor,
    lse_map: Tensor,
    region: int,
    temperature: float,
    chunk_size: int,
    need_sr: bool,
    need_hr: bool,
) -> tuple[Tensor, Tensor]:
    dtype = lse_map.dtype
    inv_t = 1.0 / temperature
    grad_sr, grad_hr = new_grads(sr, hr, need_sr, need_hr)
    for tile, index, m, rows in _iter_pieces(sr.shape, region, chunk_size):
        a, b = _blocks(sr[index], tile, dtype), _blocks(hr[index], tile, dtype)
        g = _blocks(grad[index], tile, dtype).squeeze(-1)  # (B, S)
        lse = _blocks(lse_map[index], tile, dtype)  # (B, S, 1)
        p = torch.cdist(a, b, p=1).mul_(-inv_t).sub_(lse).exp_()  # softmax over j, (B, S, S)
        if need_sr:
            gs = _sign_weighted_sum(a, b, p, dim=2).sub_(torch.sign(a - b))
            gs.mul_((g * -inv_t).unsqueeze(-1))
            _write(grad_sr, index, gs, m, rows, tile)
        if need_hr:
            pos = _positive_mask(b)
            scale = (g * inv_t).unsqueeze(-1)  # (B, S, 1), indexed by anchor i
            w = p.mul_(scale).sub_(pos * (scale / pos.sum(-1, keepdim=True)))
            gh = _sign_weighted_sum(b, a, w.transpose(1, 2), dim=2)
            _write(grad_hr, index, gh.neg_(), m, rows, tile)
    return grad_sr, grad_hr


register_map_ops(_grid_fwd, _grid_bwd)


# ----------------------------------------------------------------------------------------------
# the 'torch' backend, both modes
# ----------------------------------------------------------------------------------------------
def torch_forward(
    sr: Tensor, hr: Tensor, region: int, temperature: float, sliding: bool, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """``(loss map, log-sum-exp map)``, both ``(N, 1, H, W)``, of the ``'torch'`` backend's forward op.

    ``sliding`` picks the mode; ``chunk_size`` counts blocks (``None``: :func:`default_chunk_size`).
    Inputs are assumed validated. The twin of
    :func:`~contrastive_sr_losses.kernels.pixel_contrastive_triton.pixel_contrastive_triton_forward`:
    both save the same log-sum-exp map, so either backward fits either forward.
    """
    if sliding:
        return sliding_forward(sr, hr, region, temperature, chunk_size)
    return _grid_fwd(sr, hr, region, float(temperature), chunk_size or default_chunk_size(region))


def torch_backward(
    grad: Tensor, sr: Tensor, hr: Tensor, lse: Tensor, region: int, temperature: float, sliding: bool,
    chunk_size: int | None, need_sr: bool, need_hr: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(grad sr, grad hr)`` of ``sum(grad * loss map)`` with ``lse`` from :func:`torch_forward`
    (a gradient not asked for comes back empty)."""
    if sliding:
        return sliding_backward(grad, sr, hr, lse, region, temperature, chunk_size, need_sr, need_hr)
    chunk = chunk_size or default_chunk_size(region)
    return _grid_bwd(grad, sr, hr, lse, region, float(temperature), chunk, need_sr, need_hr)


def torch_map(
    sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str = "grid", chunk_size: int | None = None
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of the ``'torch'`` backend in ``mode`` (``'grid'`` or
    ``'sliding'``), differentiable, memory-bounded, any device.

    Inputs are assumed validated (see :func:`contrastive_sr_losses.pixel_contrastive_loss`). The map
    is float64 when an input is float64 and float32 otherwise; it does not depend on ``chunk_size``.
    """
    loss, _ = torch_forward(sr, hr, region, temperature, mode == "sliding", chunk_size)
    return loss


def pixel_contrastive_map_torch(
    sr: Tensor, hr: Tensor, region: int, temperature: float, chunk_size: int | None = None
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of the grid-mode pixel contrastive loss, memory-bounded:
    :func:`torch_map` in grid mode."""
    return torch_map(sr, hr, region, temperature, "grid", chunk_size)
