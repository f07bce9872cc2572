"""Fused Triton kernels of the pixel contrastive loss, grid and sliding mode (forward and backward).

Importing this module needs ``triton``; :mod:`contrastive_sr_losses.kernels` imports it only when
triton is importable, so the package never requires it.

Notation (see :mod:`.pixel_contrastive_torch` for the derivation): anchor i with candidates j (its
block in grid mode, its clipped window in sliding mode), ``x_ij = -d_ij / T`` with
``d_ij = ||sr_i - hr_j||_1``, ``lse_i = logsumexp_j x_ij``, ``|P_i|`` the number of candidates equal
to hr_i in every channel. Then::

    l_i          = lse_i + d_ii / T - log|P_i|
    dL/dsr_i     = (g_i / T) * (sign(sr_i - hr_i) - sum_j p_ij sign(sr_i - hr_j)),   p_ij = exp(x_ij - lse_i)
    dL/dhr_j     = sum_i (g_i / T) * (p_ij - [j in P_i] / |P_i|) * sign(sr_i - hr_j)

Three kernels, each program owning a tile of pixels ("own") and looping over tiles of partners:

* ``_forward_kernel``: own = anchors, partners = candidates. One pass over the candidates with an
  online (max-subtracted) log-sum-exp, the distances accumulated channel by channel in registers.
  Writes the loss map and ``lse`` (one value per pixel, the only thing kept for the backward);
  optionally the positive counts ``|P_i|`` (used by the ``hr`` gradient only).
* ``_grad_sr_kernel``: own = anchors; recomputes the distances, never stores them.
* ``_grad_hr_kernel``: own = candidates j, partners = the anchors i that see j (the block in grid
  mode, the reflected window in sliding mode), so every program writes its own outputs: no atomics,
  deterministic. Only launched when ``hr`` requires a gradient (usually it does not).

Pixels are addressed with explicit strides (any layout: contiguous, ``channels_last``, views);
float16 / bfloat16 / float32 inputs are accumulated in float32, float64 inputs in float64; the
temperature reaches the kernels as a float32 pair (hi + lo), so float64 keeps its precision. Grid
mode: a program holds several small blocks (four 4x4 ones), one 8x8 block, or a tile of a larger
block's footprint (16x16: four programs); footprint pixels outside the image are masked, which
gives exactly the smaller border blocks of :mod:`contrastive_sr_losses.functional.regions`.
Sliding mode: programs over runs of pixels in row-major order; window pixels outside the image are
masked (left out, not padded). The channel count is a runtime loop (any C); the backward keeps
per-channel sums for groups of up to 4 channels per program (more channels: more programs).

Not measured on a GPU yet (written without one): block sizes and warp counts are first guesses
(tiles of at most 64 x 64 pairs, about 16 elements of a tile per thread). Compiled offline for
sm_90 (Triton 3.9) they use 83-255 registers per thread, with at most a few dozen bytes of spill
in the 16x16 sliding backward.

``TRITON_INTERPRET=1`` in the environment *when this module is imported* makes ``triton.jit`` return
interpreted kernels that run on CPU tensors (slowly): that is how CI tests the kernels without a GPU.

The example runs on CUDA tensors, or on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``
set before the import, as the test suite does).

Example:
    >>> from contrastive_sr_losses.kernels import torch_map
    >>> sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    >>> if torch.cuda.is_available():
    ...     sr, hr = sr.cuda(), hr.cuda()
    >>> fast = pixel_contrastive_map_triton(sr, hr, 4, 1.0)
    >>> torch.allclose(fast, torch_map(sr, hr, 4, 1.0), atol=1e-5)
    True
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from ._autograd import new_grads, new_maps, register_map_ops

__all__ = [
    "pixel_contrastive_map_triton",
    "pixel_contrastive_triton_forward",
    "pixel_contrastive_triton_backward",
    "triton_block_sizes",
    "INTERPRETED",
]


# ----------------------------------------------------------------------------------------------
# device helpers
# ----------------------------------------------------------------------------------------------
@triton.jit
def _sign(x):
    return (x > 0).to(x.dtype) - (x < 0).to(x.dtype)


@triton.jit
def _add_column(acc, v, k, BLOCK_C: tl.constexpr):
    """``acc[:, k] += v`` for a ``[rows, BLOCK_C]`` register tile (no indexing into registers)."""
    return acc + tl.where(tl.arange(0, BLOCK_C)[None, :] == k, v[:, None], 0.0)


@triton.jit
def _own_pixels(
    pid, N, H, W, NBY, NBX, TILES,
    R: tl.constexpr, BLOCK_OWN: tl.constexpr, SLIDING: tl.constexpr, G: tl.constexpr, IDX64: tl.constexpr,
):  # fmt: skip
    """Image index, rows, columns, validity and block origin of this program's pixels.

    Offsets are int32 (fewer registers for the 2-D partner offsets) unless ``IDX64``, set by the
    launcher for tensors of 2**31 elements or more, makes the image index (and so every offset) int64.

    Sliding: a run of ``BLOCK_OWN`` pixels of one image in row-major order. Grid with ``G == 1``:
    pixels ``k`` of one block's ``R x R`` footprint (tile ``pid % TILES`` of it), row-major; the
    image index and block origin are scalars. Grid with ``G > 1``: ``G`` consecutive blocks (of the
    ``N x NBY x NBX`` blocks) in slots of ``BLOCK_OWN // G`` pixels; index and origin are vectors.
    """
    k = (pid % TILES) * BLOCK_OWN + tl.arange(0, BLOCK_OWN)
    rest = pid // TILES
    if SLIDING:
        n = rest
        y = k // W
        x = k % W
        ok = k < H * W
        by0 = rest * 0  # no blocks
        bx0 = rest * 0
    else:
        if G == 1:
            i = k
            block = rest
        else:
            i = k % (BLOCK_OWN // G)
            block = rest * G + k // (BLOCK_OWN // G)
        bx0 = (block % NBX) * R
        by0 = (block // NBX % NBY) * R
        n = block // (NBX * NBY)
        y = by0 + i // R
        x = bx0 + i % R
        ok = (i < R * R) & (y < H) & (x < W)
        if G > 1:
            ok = ok & (n < N)  # the last program's slots may run past the last block
    if IDX64:
        n = n.to(tl.int64)
    return n, y, x, ok, by0, bx0


@triton.jit
def _partner_pixels(
    n, y, x, by0, bx0, o, N, H, W, R: tl.constexpr, SLIDING: tl.constexpr, G: tl.constexpr, TO_ANCHOR: tl.constexpr
):  # fmt: skip
    """Image index, positions ``(py, px)`` and validity of partners ``o`` (offsets ``0 .. R*R-1``).

    Grid: the pixels of the own pixel's block; shape ``[1, BLOCK_O]`` (all own pixels in one block,
    ``G == 1``) or ``[BLOCK_OWN, BLOCK_O]``. Sliding: the window pixel ``own + (dy, dx)`` with
    ``(dy, dx) = (o // R - R // 2, o % R - R // 2)``, or with ``TO_ANCHOR`` the anchor whose window
    holds the own pixel at that offset, ``own - (dy, dx)``; shape ``[BLOCK_OWN, BLOCK_O]``.
    """
    oy = o // R
    ox = o % R
    pn = n
    if SLIDING:
        if TO_ANCHOR:
            py = y[:, None] - oy[None, :] + R // 2
            px = x[:, None] - ox[None, :] + R // 2
        else:
            py = y[:, None] + oy[None, :] - R // 2
            px = x[:, None] + ox[None, :] - R // 2
    elif G == 1:
        py = by0 + oy[None, :]
        px = bx0 + ox[None, :]
    else:
        pn = n[:, None]
        py = by0[:, None] + oy[None, :]
        px = bx0[:, None] + ox[None, :]
    ok = (o[None, :] < R * R) & (py >= 0) & (py < H) & (px >= 0) & (px < W)
    if G > 1:
        ok = ok & (pn < N)  # slots past the last block have no partners (and no memory to read)
    return pn, py, px, ok


# ----------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------
@triton.jit
def _forward_kernel(
    sr_ptr, hr_ptr, loss_ptr, lse_ptr, count_ptr,
    N, C, H, W, NBY, NBX, TILES,
    s_n, s_c, s_h, s_w, h_n, h_c, h_h, h_w,
    inv_t_hi, inv_t_lo,
    R: tl.constexpr, SLIDING: tl.constexpr, G: tl.constexpr, IDX64: tl.constexpr, WRITE_LOSS: tl.constexpr, WRITE_COUNT: tl.constexpr,
    BLOCK_OWN: tl.constexpr, BLOCK_O: tl.constexpr,
):  # fmt: skip
    acc_ty = lse_ptr.dtype.element_ty
    inv_t = tl.full([], inv_t_hi, acc_ty) + tl.full([], inv_t_lo, acc_ty)
    n, y, x, own_ok, by0, bx0 = _own_pixels(
        tl.program_id(0), N, H, W, NBY, NBX, TILES, R, BLOCK_OWN, SLIDING, G, IDX64
    )
    own_s = n * s_n + y * s_h + x * s_w
    own_h = n * h_n + y * h_h + x * h_w

    d_ii = tl.zeros([BLOCK_OWN], acc_ty)
    for c in range(C):
        a = tl.load(sr_ptr + own_s + c * s_c, mask=own_ok, other=0.0).to(acc_ty)
        b = tl.load(hr_ptr + own_h + c * h_c, mask=own_ok, other=0.0).to(acc_ty)
        d_ii += tl.abs(a - b)

    m = tl.full([BLOCK_OWN], -1.0e30, acc_ty)  # running max (finite: rows may see no valid partner yet)
    s = tl.zeros([BLOCK_OWN], acc_ty)  # running sum of exp(x - m)
    count = tl.zeros([BLOCK_OWN], tl.int32)  # |P_i|
    for o0 in range(0, R * R, BLOCK_O):
        o = o0 + tl.arange(0, BLOCK_O)
        pn, py, px, p_ok = _partner_pixels(n, y, x, by0, bx0, o, N, H, W, R, SLIDING, G, False)
        part_h = pn * h_n + py * h_h + px * h_w
        ok = own_ok[:, None] & p_ok
        d = tl.zeros([BLOCK_OWN, BLOCK_O], acc_ty)  # ||sr_i - hr_j||_1
        same = ok  # hr_j == hr_i in every channel so far: j in P_i
        for c in range(C):
            a = tl.load(sr_ptr + own_s + c * s_c, mask=own_ok, other=0.0).to(acc_ty)
            b = tl.load(hr_ptr + own_h + c * h_c, mask=own_ok, other=0.0).to(acc_ty)
            hj = tl.load(hr_ptr + part_h + c * h_c, mask=p_ok, other=0.0).to(acc_ty)
            d += tl.abs(a[:, None] - hj)
            same = same & (b[:, None] == hj)
        logits = tl.where(ok, -d * inv_t, float("-inf"))
        m_new = tl.maximum(m, tl.max(logits, 1))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(logits - m_new[:, None]), 1)
        m = m_new
        count += tl.sum(same.to(tl.int32), 1)

    s = tl.where(own_ok, s, 1.0)
    count = tl.where(own_ok, count, 1)
    lse = m + tl.log(s)
    own_m = n * H * W + y * W + x
    tl.store(lse_ptr + own_m, lse, mask=own_ok)
    if WRITE_LOSS:
        loss = lse + d_ii * inv_t - tl.log(count.to(acc_ty))
        tl.store(loss_ptr + own_m, loss, mask=own_ok)
    if WRITE_COUNT:
        tl.store(count_ptr + own_m, count, mask=own_ok)


@triton.jit
def _grad_sr_kernel(
    sr_ptr, hr_ptr, lse_ptr, g_ptr, gsr_ptr,
    N, C, H, W, NBY, NBX, TILES,
    s_n, s_c, s_h, s_w, h_n, h_c, h_h, h_w, g_n, g_h, g_w, o_n, o_c, o_h, o_w,
    inv_t_hi, inv_t_lo,
    R: tl.constexpr, SLIDING: tl.constexpr, G: tl.constexpr, IDX64: tl.constexpr,
    BLOCK_OWN: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr, GROUP_C: tl.constexpr,
):  # fmt: skip
    acc_ty = lse_ptr.dtype.element_ty
    inv_t = tl.full([], inv_t_hi, acc_ty) + tl.full([], inv_t_lo, acc_ty)
    n, y, x, own_ok, by0, bx0 = _own_pixels(
        tl.program_id(0), N, H, W, NBY, NBX, TILES, R, BLOCK_OWN, SLIDING, G, IDX64
    )
    c0 = tl.program_id(1) * BLOCK_C  # this program's channel group
    own_s = n * s_n + y * s_h + x * s_w
    lse = tl.load(lse_ptr + n * H * W + y * W + x, mask=own_ok, other=0.0)
    g = tl.load(g_ptr + n * g_n + y * g_h + x * g_w, mask=own_ok, other=0.0).to(acc_ty) * inv_t

    acc = tl.zeros([BLOCK_OWN, BLOCK_C], acc_ty)  # sum_j p_ij sign(sr_ic - hr_jc)
    for o0 in range(0, R * R, BLOCK_O):
        o = o0 + tl.arange(0, BLOCK_O)
        pn, py, px, p_ok = _partner_pixels(n, y, x, by0, bx0, o, N, H, W, R, SLIDING, G, False)
        part_h = pn * h_n + py * h_h + px * h_w
        d = tl.zeros([BLOCK_OWN, BLOCK_O], acc_ty)
        for c in range(C):
            a = tl.load(sr_ptr + own_s + c * s_c, mask=own_ok, other=0.0).to(acc_ty)
            hj = tl.load(hr_ptr + part_h + c * h_c, mask=p_ok, other=0.0).to(acc_ty)
            d += tl.abs(a[:, None] - hj)
        p = tl.where(own_ok[:, None] & p_ok, tl.exp(-d * inv_t - lse[:, None]), 0.0)
        for k in tl.static_range(GROUP_C):
            c = tl.minimum(c0 + k, C - 1)  # a partial last group repeats channel C-1; that column is not stored
            a = tl.load(sr_ptr + own_s + c * s_c, mask=own_ok, other=0.0).to(acc_ty)
            hj = tl.load(hr_ptr + part_h + c * h_c, mask=p_ok, other=0.0).to(acc_ty)
            acc = _add_column(acc, tl.sum(p * _sign(a[:, None] - hj), 1), k, BLOCK_C)

    ch = c0 + tl.arange(0, BLOCK_C)
    mask = own_ok[:, None] & (ch[None, :] < C)
    a = tl.load(sr_ptr + own_s[:, None] + ch[None, :] * s_c, mask=mask, other=0.0).to(acc_ty)
    b = tl.load(hr_ptr + (n * h_n + y * h_h + x * h_w)[:, None] + ch[None, :] * h_c, mask=mask, other=0.0)
    grad = g[:, None] * (_sign(a - b.to(acc_ty)) - acc)
    dst = gsr_ptr + (n * o_n + y * o_h + x * o_w)[:, None] + ch[None, :] * o_c
    tl.store(dst, grad.to(gsr_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_hr_kernel(
    sr_ptr, hr_ptr, lse_ptr, count_ptr, g_ptr, ghr_ptr,
    N, C, H, W, NBY, NBX, TILES,
    s_n, s_c, s_h, s_w, h_n, h_c, h_h, h_w, g_n, g_h, g_w, o_n, o_c, o_h, o_w,
    inv_t_hi, inv_t_lo,
    R: tl.constexpr, SLIDING: tl.constexpr, G: tl.constexpr, IDX64: tl.constexpr,
    BLOCK_OWN: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr, GROUP_C: tl.constexpr,
):  # fmt: skip
    acc_ty = lse_ptr.dtype.element_ty
    inv_t = tl.full([], inv_t_hi, acc_ty) + tl.full([], inv_t_lo, acc_ty)
    n, y, x, own_ok, by0, bx0 = _own_pixels(
        tl.program_id(0), N, H, W, NBY, NBX, TILES, R, BLOCK_OWN, SLIDING, G, IDX64
    )
    c0 = tl.program_id(1) * BLOCK_C
    own_h = n * h_n + y * h_h + x * h_w

    acc = tl.zeros([BLOCK_OWN, BLOCK_C], acc_ty)  # sum_i w_ij sign(sr_ic - hr_jc)
    for o0 in range(0, R * R, BLOCK_O):
        o = o0 + tl.arange(0, BLOCK_O)
        pn, py, px, p_ok = _partner_pixels(n, y, x, by0, bx0, o, N, H, W, R, SLIDING, G, True)  # anchors i
        part_s = pn * s_n + py * s_h + px * s_w
        part_h = pn * h_n + py * h_h + px * h_w
        ok = own_ok[:, None] & p_ok
        d = tl.zeros([BLOCK_OWN, BLOCK_O], acc_ty)  # ||sr_i - hr_j||_1
        same = ok  # hr_i == hr_j in every channel: j in P_i
        for c in range(C):
            hj = tl.load(hr_ptr + own_h + c * h_c, mask=own_ok, other=0.0).to(acc_ty)
            a = tl.load(sr_ptr + part_s + c * s_c, mask=p_ok, other=0.0).to(acc_ty)
            b = tl.load(hr_ptr + part_h + c * h_c, mask=p_ok, other=0.0).to(acc_ty)
            d += tl.abs(a - hj[:, None])
            same = same & (b == hj[:, None])
        part_m = pn * H * W + py * W + px
        lse = tl.load(lse_ptr + part_m, mask=p_ok, other=0.0)
        count = tl.load(count_ptr + part_m, mask=p_ok, other=1).to(acc_ty)
        g = tl.load(g_ptr + pn * g_n + py * g_h + px * g_w, mask=p_ok, other=0.0).to(acc_ty) * inv_t
        q = tl.where(same, 1.0 / count, 0.0)
        w = tl.where(ok, g * (tl.exp(-d * inv_t - lse) - q), 0.0)
        for k in tl.static_range(GROUP_C):
            c = tl.minimum(c0 + k, C - 1)
            hj = tl.load(hr_ptr + own_h + c * h_c, mask=own_ok, other=0.0).to(acc_ty)
            a = tl.load(sr_ptr + part_s + c * s_c, mask=p_ok, other=0.0).to(acc_ty)
            acc = _add_column(acc, tl.sum(w * _sign(a - hj[:, None]), 1), k, BLOCK_C)

    ch = c0 + tl.arange(0, BLOCK_C)
    mask = own_ok[:, None] & (ch[None, :] < C)
    dst = ghr_ptr + (n * o_n + y * o_h + x * o_w)[:, None] + ch[None, :] * o_c
    tl.store(dst, acc.to(ghr_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# launch
# ----------------------------------------------------------------------------------------------
INTERPRETED: bool = not isinstance(_forward_kernel, triton.runtime.JITFunction)
"""True when the kernels were created under ``TRITON_INTERPRET=1`` (they then run on CPU tensors)."""

_MAX_TILE = 64


def triton_block_sizes(region: int, channels: int) -> tuple[int, int, int]:
    """Default ``(block_own, block_partner, block_channels)``: pixels per program, partners per loop
    step, channels per program of the backward. Powers of two; register tiles of at most 64 x 64.

    The same for both modes. Grid mode packs ``block_own // footprint`` small blocks into one program
    (e.g. four 4x4 blocks) and splits a footprint larger than ``block_own`` (16x16) over several.
    """
    footprint = triton.next_power_of_2(region * region)
    return _MAX_TILE, min(footprint, _MAX_TILE), min(triton.next_power_of_2(channels), 4)


def _num_warps(block_own: int, block_partner: int) -> int:
    """About 16 elements of each ``[BLOCK_OWN, BLOCK_O]`` register tile per thread (64 x 64: 8 warps)."""
    return max(1, min(8, block_own * block_partner // 512))


def _needs_int64(*tensors: Tensor) -> bool:
    """Whether an element offset of one of the tensors can reach 2**31 (int32 indexing would overflow)."""
    return any(sum((size - 1) * abs(step) for size, step in zip(t.shape, t.stride())) >= 2**31 - 1 for t in tensors)


def _split(value: float) -> tuple[float, float]:
    """``value`` as a float32 pair (hi, lo) with hi + lo == value to ~48 bits (scalars reach the
    kernels as float32; float64 accumulation adds the two)."""
    hi = float(np.float32(value))
    return hi, float(np.float32(value - hi))


class _Layout(NamedTuple):
    sizes: tuple[int, ...]  # N, C, H, W, NBY, NBX, TILES: the kernels' leading integer arguments
    programs: int
    meta: dict[str, int | bool]  # compile-time constants and launch options


def _layout(sr: Tensor, hr: Tensor, region: int, sliding: bool, block_own: int, block_partner: int) -> _Layout:
    """How a launch covers the image: see ``_own_pixels``."""
    n, c, h, w = sr.shape
    nby, nbx = triton.cdiv(h, region), triton.cdiv(w, region)
    footprint = triton.next_power_of_2(region * region)
    if sliding:
        packed, tiles = 1, triton.cdiv(h * w, block_own)
        programs = n * tiles
    elif block_own >= footprint:  # whole blocks, several per program
        packed, tiles = block_own // footprint, 1
        programs = triton.cdiv(n * nby * nbx, packed)
    else:  # one block in several tiles
        packed, tiles = 1, triton.cdiv(region * region, block_own)
        programs = n * nby * nbx * tiles
    meta = dict(
        R=region, SLIDING=sliding, G=packed, IDX64=_needs_int64(sr, hr) or n * c * h * w >= 2**31 - 1,
        BLOCK_OWN=block_own, BLOCK_O=block_partner, num_warps=_num_warps(block_own, block_partner),
        enable_fp_fusion=True,  # explicit (fused multiply-adds): Triton 3.9 warns when it is left to its default
    )  # fmt: skip
    return _Layout((n, c, h, w, nby, nbx, tiles), programs, meta)


def _map_strides(t: Tensor) -> tuple[int, int, int]:
    """(n, h, w) strides of an ``(N, 1, H, W)`` map (stride 0 for an expanded upstream gradient)."""
    return t.stride(0), t.stride(2), t.stride(3)


def _on_device(x: Tensor) -> AbstractContextManager[object]:
    """Launch on the input's GPU (not the current one); nothing to do for CPU tensors (interpreter)."""
    return torch.cuda.device(x.device) if x.is_cuda else nullcontext()


def _launch_forward(
    sr: Tensor, hr: Tensor, region: int, temperature: float, layout: _Layout, count_only: bool
) -> tuple[Tensor, Tensor]:
    """``(loss, lse)`` maps, or with ``count_only`` ``(|P_i| as int32, lse)``."""
    loss, lse = new_maps(sr, hr)
    if count_only:
        loss = torch.empty_like(lse, dtype=torch.int32)
    _forward_kernel[(layout.programs,)](
        sr, hr, loss, lse, loss, *layout.sizes, *sr.stride(), *hr.stride(), *_split(1.0 / temperature),
        WRITE_LOSS=not count_only, WRITE_COUNT=count_only, **layout.meta,
    )  # fmt: skip
    return loss, lse


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_triton_fwd", mutates_args=())
def _triton_fwd(
    sr: Tensor, hr: Tensor, region: int, temperature: float, sliding: bool, block_own: int, block_partner: int,
    block_channels: int,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    layout = _layout(sr, hr, region, sliding, block_own, block_partner)
    with _on_device(sr):
        return _launch_forward(sr, hr, region, temperature, layout, count_only=False)


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_triton_bwd", mutates_args=())
def _triton_bwd(
    grad: Tensor, sr: Tensor, hr: Tensor, lse: Tensor, region: int, temperature: float, sliding: bool,
    block_own: int, block_partner: int, block_channels: int, need_sr: bool, need_hr: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    channels = sr.shape[1]
    grad_sr, grad_hr = new_grads(sr, hr, need_sr, need_hr)
    lse = lse.contiguous()  # read as a dense (N, 1, H, W) map
    layout = _layout(sr, hr, region, sliding, block_own, block_partner)
    launch = (layout.programs, triton.cdiv(channels, block_channels))
    meta = dict(layout.meta, BLOCK_C=block_channels, GROUP_C=min(channels, block_channels))
    inv_t = _split(1.0 / temperature)
    with _on_device(sr):
        if need_sr:
            _grad_sr_kernel[launch](
                sr, hr, lse, grad, grad_sr, *layout.sizes,
                *sr.stride(), *hr.stride(), *_map_strides(grad), *grad_sr.stride(), *inv_t, **meta,
            )  # fmt: skip
        if need_hr:
            # |P_i| of every anchor: one more forward pass, only when hr needs a gradient.
            count, _ = _launch_forward(sr, hr, region, temperature, layout, count_only=True)
            _grad_hr_kernel[launch](
                sr, hr, lse, count, grad, grad_hr, *layout.sizes,
                *sr.stride(), *hr.stride(), *_map_strides(grad), *grad_hr.stride(), *inv_t, **meta,
            )  # fmt: skip
    return grad_sr, grad_hr


register_map_ops(_triton_fwd, _triton_bwd)


def pixel_contrastive_triton_forward(
    sr: Tensor, hr: Tensor, region: int, temperature: float, sliding: bool
) -> tuple[Tensor, Tensor]:
    """``(loss map, log-sum-exp map)`` from the forward kernel with the default block sizes, no autograd.

    With :func:`pixel_contrastive_triton_backward`, the two launches the ``'auto'`` op (:mod:`.auto`)
    and its self-check (:mod:`.selfcheck`) run; inputs are assumed validated.
    """
    return _triton_fwd(sr, hr, region, temperature, sliding, *triton_block_sizes(region, sr.shape[1]))


def pixel_contrastive_triton_backward(
    grad: Tensor, sr: Tensor, hr: Tensor, lse: Tensor, region: int, temperature: float, sliding: bool,
    need_sr: bool, need_hr: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(grad sr, grad hr)`` of ``sum(grad * loss map)`` from the backward kernels (empty when not needed)."""
    sizes = triton_block_sizes(region, sr.shape[1])
    return _triton_bwd(grad, sr, hr, lse, region, temperature, sliding, *sizes, need_sr, need_hr)


def pixel_contrastive_map_triton(
    sr: Tensor,
    hr: Tensor,
    region: int,
    temperature: float,
    mode: str = "grid",
    block_sizes: tuple[int, int, int] | None = None,
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` from the fused Triton kernels (grid or sliding mode).

    Inputs are assumed validated. CUDA tensors; CPU tensors only with interpreted kernels
    (``TRITON_INTERPRET=1`` set before the import). ``block_sizes`` overrides
    :func:`triton_block_sizes` (powers of two; tests use small ones to exercise the tiling).
    """
    if not (sr.is_cuda or INTERPRETED):
        raise ValueError(
            f"backend='triton' needs CUDA tensors, got tensors on {sr.device}; use backend='torch' or "
            "'auto' on this device (to run the Triton kernels in Triton's CPU interpreter, set "
            "TRITON_INTERPRET=1 before importing contrastive_sr_losses)"
        )
    own, partner, channels = block_sizes or triton_block_sizes(region, sr.shape[1])
    loss, _ = _triton_fwd(sr, hr, region, float(temperature), mode == "sliding", own, partner, channels)
    return loss
