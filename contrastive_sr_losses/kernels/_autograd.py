"""Plumbing shared by the custom ops of the pixel contrastive loss: autograd, fake tensors, chunk size.

Every fast path is a pair of ``torch.library`` custom ops::

    fwd(sr, hr, *args)                                -> (loss_map, saved_map)
    bwd(grad, sr, hr, saved_map, *args, need_sr, need_hr) -> (grad_sr, grad_hr)

where ``saved_map`` is one ``(N, 1, H, W)`` tensor (the per-anchor log-sum-exp) and the gradients
not asked for come back as empty tensors. :func:`register_map_ops` connects the two, so the
forward op is differentiable, and registers their fake (meta) implementations, so
``torch.compile`` sees each op as one opaque node with known output shapes.
:func:`default_chunk_size` is the work size of the ``'torch'`` backend's ops, both modes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import compute_dtype

__all__ = ["register_map_ops", "new_maps", "new_grads", "default_chunk_size"]

# Target number of elements of one (chunk, S, S) work tensor: 2**20 floats = 4 MiB in float32.
# Measured on 2 CPU cores (16x3x144x144, region 8): 256..1024 blocks per chunk run at the same speed,
# the whole batch at once is about 2x slower (out of cache) and needs ~S*S/C times the input's memory.
_CHUNK_ELEMENTS = 1 << 20


def default_chunk_size(region: int) -> int:
    """Blocks per chunk for a square region: keeps one ``(chunk, S, S)`` tensor near 4 MiB in float32."""
    s = region * region
    return max(1, _CHUNK_ELEMENTS // (s * s))


def new_maps(sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
    """Two new ``(N, 1, H, W)`` maps in the compute dtype: a forward op's outputs (real or fake)."""
    n, _, h, w = sr.shape
    dtype = compute_dtype(sr, hr)
    return sr.new_empty((n, 1, h, w), dtype=dtype), sr.new_empty((n, 1, h, w), dtype=dtype)


def new_grads(sr: Tensor, hr: Tensor, need_sr: bool, need_hr: bool) -> tuple[Tensor, Tensor]:
    """A backward op's outputs: new gradients shaped (and strided) like the inputs, empty where not needed."""
    grad_sr = torch.empty_like(sr) if need_sr else sr.new_empty(0)
    grad_hr = torch.empty_like(hr) if need_hr else hr.new_empty(0)
    return grad_sr, grad_hr


def register_map_ops(fwd: Any, bwd: Any) -> None:
    """Register the fakes of the custom ops ``fwd`` / ``bwd`` and make ``fwd`` differentiable with ``bwd``."""

    @fwd.register_fake
    def _fwd_fake(sr: Tensor, hr: Tensor, *args: Any) -> tuple[Tensor, Tensor]:
        return new_maps(sr, hr)

    @bwd.register_fake
    def _bwd_fake(grad: Tensor, sr: Tensor, hr: Tensor, saved: Tensor, *args: Any) -> tuple[Tensor, Tensor]:
        need_sr, need_hr = args[-2], args[-1]
        return new_grads(sr, hr, need_sr, need_hr)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
        sr, hr, *args = inputs
        _, saved = output
        ctx.save_for_backward(sr, hr, saved)
        ctx.args = tuple(args)
        ctx.mark_non_differentiable(saved)

    def backward(ctx: Any, grad_loss: Tensor, _grad_saved: Tensor) -> tuple[Tensor | None, ...]:
        sr, hr, saved = ctx.saved_tensors
        need_sr, need_hr = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        no_grads = (None,) * len(ctx.args)
        if not (need_sr or need_hr):
            return (None, None, *no_grads)
        grad_sr, grad_hr = bwd(grad_loss, sr, hr, saved, *ctx.args, need_sr, need_hr)
        return (grad_sr if need_sr else None), (grad_hr if need_hr else None), *no_grads

    fwd.register_autograd(backward, setup_context=setup_context)
