"""Memory-bounded PyTorch path of the sliding-window pixel contrastive loss (any device).

Sliding mode: anchor i = pixel (y, x) is contrasted with its own window, the HR pixels
(y + dy, x + dx), dy, dx in [-(r // 2), r - 1 - r // 2], that lie inside the image (see
:mod:`contrastive_sr_losses.functional.regions`). The positives are the window pixels equal to hr_i
in every channel, so, as in grid mode (:mod:`.pixel_contrastive_torch`), they all sit at distance
d_ii and::

    l_i = lse_i + d_ii / T - log|P_i|,          lse_i = logsumexp_{j in window(i)} (-d_ij / T)

with the same gradients as grid mode, j running over the window of i instead of i's block.

Anchors are processed in pieces of whole image rows (several images at once when they are small):
for a piece, the HR rows its windows reach are cut out and zero-padded (:func:`window_slab`), each
channel is unfolded into a ``(pieces, S, pixels)`` view of the windows, and a mask leaves out the
window positions outside the image. The working set is a few ``(S, pixels)`` tensors of about
4 MiB (float32). The forward keeps only ``lse``; the backward recomputes the distances, sums the
``sr`` gradient over each window and folds the ``hr`` gradient back onto the pixels it came from
(:func:`fold_windows`, deterministic).

Example:
    >>> from contrastive_sr_losses import pixel_contrastive_sliding_reference_map
    >>> sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    >>> fast = pixel_contrastive_sliding_map_torch(sr, hr, 3, 1.0)
    >>> torch.allclose(fast, pixel_contrastive_sliding_reference_map(sr, hr, 3), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .._validation import compute_dtype
from ..functional.regions import fold_windows, unfold_windows, window_extent, window_mask, window_slab
from ._autograd import default_chunk_size, new_grads, new_maps, register_map_ops

__all__ = ["pixel_contrastive_sliding_map_torch", "sliding_anchors", "sliding_forward", "sliding_backward"]


def _pieces(n: int, h: int, w: int, anchors: int) -> Iterator[tuple[int, int, int, int]]:
    """``(n0, n1, y0, y1)`` pieces of about ``anchors`` pixels: whole images, or runs of rows of one image."""
    if h * w <= anchors:
        step = max(1, anchors // (h * w))
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, h
    else:
        rows = max(1, anchors // w)
        for n0 in range(n):
            for y0 in range(0, h, rows):
                yield n0, n0 + 1, y0, min(h, y0 + rows)


class _Piece:
    """Distances of one piece: anchors ``sr[n0:n1, :, y0:y1]`` against their windows."""

    def __init__(self, sr: Tensor, hr: Tensor, n0: int, n1: int, y0: int, y1: int, region: int, dtype: torch.dtype):
        self.region, self.rows, self.width = region, y1 - y0, sr.shape[-1]
        m, c = n1 - n0, sr.shape[1]
        length = self.rows * self.width
        self.slab = window_slab(hr[n0:n1], y0, y1, region).to(dtype)  # (m, C, rows + r - 1, W + r - 1)
        self.valid = window_mask(y0, y1, self.width, hr.shape[-2], region, sr.device)  # (S, L)
        self.a = sr[n0:n1, :, y0:y1].to(dtype).reshape(m, c, 1, length)  # anchors sr_i
        self.b = hr[n0:n1, :, y0:y1].to(dtype).reshape(m, c, 1, length)  # hr_i

    def windows(self, channel: int) -> Tensor:
        """``(m, S, L)`` HR values of the windows in one channel (zero outside the image)."""
        return unfold_windows(self.slab[:, channel : channel + 1], self.region)[:, 0]

    def distances(self, with_hr: bool) -> tuple[Tensor, Tensor | None]:
        """``d[m, k, l] = ||sr_l - hr_(l + k)||_1`` and, if asked, the same with ``hr_l`` (zero iff positive)."""
        d = e = None
        for c in range(self.a.shape[1]):
            cols = self.windows(c)
            dc = (self.a[:, c] - cols).abs_()
            d = dc if d is None else d.add_(dc)
            if with_hr:
                ec = (self.b[:, c] - cols).abs_()
                e = ec if e is None else e.add_(ec)
        return d, e  # type: ignore[return-value]

    def logits(self, d: Tensor, inv_t: float) -> Tensor:
        return d.mul_(-inv_t).masked_fill_(~self.valid, float("-inf"))

    def positives(self, e: Tensor) -> Tensor:
        return (e == 0) & self.valid


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_sliding_fwd", mutates_args=())
def _sliding_fwd(sr: Tensor, hr: Tensor, region: int, temperature: float, anchors: int) -> tuple[Tensor, Tensor]:
    n, _, h, w = sr.shape
    dtype = compute_dtype(sr, hr)
    inv_t = 1.0 / temperature
    loss, lse_map = new_maps(sr, hr)
    for n0, n1, y0, y1 in _pieces(n, h, w, anchors):
        piece = _Piece(sr, hr, n0, n1, y0, y1, region, dtype)
        d, e = piece.distances(with_hr=True)
        lse = torch.logsumexp(piece.logits(d, inv_t), dim=1)  # (m, L)
        count = piece.positives(e).sum(1)
        d_ii = (piece.a - piece.b).abs().sum(1).squeeze(1)
        l_i = lse + d_ii * inv_t - count.to(dtype).log_()
        loss[n0:n1, 0, y0:y1] = l_i.view(n1 - n0, y1 - y0, w)
        lse_map[n0:n1, 0, y0:y1] = lse.view(n1 - n0, y1 - y0, w)
    return loss, lse_map


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_sliding_bwd", mutates_args=())
def _sliding_bwd(
    grad: Tensor,
    sr: Tensor,
    hr: Tensor,
    lse_map: Tensor,
    region: int,
    temperature: float,
    anchors: int,
    need_sr: bool,
    need_hr: bool,
) -> tuple[Tensor, Tensor]:
    n, c, h, w = sr.shape
    dtype = lse_map.dtype
    inv_t = 1.0 / temperature
    before, _ = window_extent(region)
    grad_sr, grad_hr = new_grads(sr, hr, need_sr, need_hr)
    acc_hr = hr.new_zeros(hr.shape, dtype=dtype) if need_hr else None
    for n0, n1, y0, y1 in _pieces(n, h, w, anchors):
        m, length = n1 - n0, (y1 - y0) * w
        piece = _Piece(sr, hr, n0, n1, y0, y1, region, dtype)
        d, e = piece.distances(with_hr=need_hr)
        lse = lse_map[n0:n1, 0, y0:y1].reshape(m, 1, length)
        p = piece.logits(d, inv_t).sub_(lse).exp_()  # softmax over the window, 0 outside the image
        g = grad[n0:n1, 0, y0:y1].to(dtype).reshape(m, 1, length) * inv_t
        if need_sr:
            gs = torch.empty(m, c, length, dtype=dtype, device=sr.device)
            for k in range(c):
                weighted = torch.sign(piece.a[:, k] - piece.windows(k)).mul_(p).sum(1)  # (m, L)
                gs[:, k] = torch.sign(piece.a[:, k, 0] - piece.b[:, k, 0]).sub_(weighted)
            grad_sr[n0:n1, :, y0:y1] = gs.mul_(g).view(m, c, y1 - y0, w)
        if acc_hr is not None:
            pos = piece.positives(e)  # type: ignore[arg-type]
            weight = p.sub_(pos.to(dtype) / pos.sum(1, keepdim=True)).mul_(g)  # (m, S, L): (p - q) * g / T
            cols = torch.stack([torch.sign(piece.a[:, k] - piece.windows(k)).mul_(weight) for k in range(c)], 1)
            slab = fold_windows(cols, y1 - y0, w, region)  # (m, C, rows + r - 1, W + r - 1)
            ya, yb = max(0, y0 - before), min(h, y1 + region - 1 - before)
            top = ya - (y0 - before)
            acc_hr[n0:n1, :, ya:yb] += slab[:, :, top : top + yb - ya, before : before + w]
    if acc_hr is not None:
        grad_hr.copy_(acc_hr)
    return grad_sr, grad_hr


register_map_ops(_sliding_fwd, _sliding_bwd)


def sliding_anchors(region: int, chunk_size: int | None) -> int:
    """Anchors per piece for a ``chunk_size`` counted in blocks: the same number of pairs as ``chunk_size``
    blocks of ``region**2`` pixels (``None``: :func:`default_chunk_size`)."""
    return (chunk_size or default_chunk_size(region)) * region * region


def sliding_forward(
    sr: Tensor, hr: Tensor, region: int, temperature: float, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """``(loss map, log-sum-exp map)``, both ``(N, 1, H, W)``, of the sliding-mode custom op.

    The pair :func:`sliding_backward` takes; inputs are assumed validated. Differentiable when
    called with inputs that require a gradient (the op's autograd formula).
    """
    return _sliding_fwd(sr, hr, region, float(temperature), sliding_anchors(region, chunk_size))


def sliding_backward(
    grad: Tensor, sr: Tensor, hr: Tensor, lse: Tensor, region: int, temperature: float, chunk_size: int | None,
    need_sr: bool, need_hr: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(grad sr, grad hr)`` of ``sum(grad * loss map)`` from the sliding-mode backward op, with ``lse``
    from :func:`sliding_forward` (a gradient not asked for comes back empty)."""
    anchors = sliding_anchors(region, chunk_size)
    return _sliding_bwd(grad, sr, hr, lse, region, float(temperature), anchors, need_sr, need_hr)


def pixel_contrastive_sliding_map_torch(
    sr: Tensor, hr: Tensor, region: int, temperature: float, chunk_size: int | None = None
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of the sliding-window pixel contrastive loss, memory-bounded.

    ``chunk_size`` counts work as in grid mode: a piece holds about ``chunk_size * region**2``
    anchors, each contrasted with its ``region**2`` window (the same number of pairs as
    ``chunk_size`` blocks). Inputs are assumed validated; the map is float64 when an input is
    float64 and float32 otherwise.
    """
    loss, _ = sliding_forward(sr, hr, region, temperature, chunk_size)
    return loss
