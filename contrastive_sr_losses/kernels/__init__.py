"""Fast paths of the losses and the choice between them.

A backend computes the per-anchor loss map ``(N, 1, H, W)`` of the pixel contrastive loss from
validated inputs; the loss module applies the reduction. Every backend is tested against the plain
reference in :mod:`contrastive_sr_losses.losses.pixel_contrastive`.

- ``'reference'``: the equation as written, autograd through an ``(B, S, S, C)`` tensor.
- ``'torch'``: chunked custom op with an analytic backward (any device, memory bounded).
- ``'auto'``: the fastest backend available for the inputs (today ``'torch'``; a fused Triton kernel
  for CUDA tensors will register here as ``'triton'``).
"""

from __future__ import annotations

from torch import Tensor

from .pixel_contrastive_torch import default_chunk_size, pixel_contrastive_map_torch

__all__ = [
    "PIXEL_CONTRASTIVE_BACKENDS",
    "select_pixel_contrastive_backend",
    "default_chunk_size",
    "pixel_contrastive_map_torch",
]

PIXEL_CONTRASTIVE_BACKENDS: tuple[str, ...] = ("auto", "reference", "torch")


def select_pixel_contrastive_backend(backend: str, sr: Tensor) -> str:
    """Resolve ``'auto'`` to a concrete backend name for the given input."""
    if backend != "auto":
        return backend
    return "torch"

