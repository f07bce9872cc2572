"""``backend='auto'`` for inputs the Triton kernels could run on: one custom op that picks at run time.

The op runs the Triton kernels where they passed (or now pass) their first-use self-check for the
configuration (:func:`.selfcheck.use_triton`), and the ``'torch'`` backend otherwise; a launch that
raises after a passed check switches its configuration to ``'torch'``
(:func:`.selfcheck.record_launch_failure`). Because the choice is made inside the op, at run time,
``torch.compile`` sees one opaque node and the check never runs while tracing. Which inputs reach
this op at all is decided by the loss (:mod:`contrastive_sr_losses.losses.pixel_contrastive`, with
:func:`contrastive_sr_losses.kernels.triton_eligible`).

Example:
    >>> from contrastive_sr_losses.kernels import torch_map
    >>> sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    >>> torch.allclose(auto_map(sr, hr, 4, 1.0), torch_map(sr, hr, 4, 1.0), atol=1e-5)
    True
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from ._autograd import default_chunk_size, register_map_ops
from .pixel_contrastive_torch import torch_backward, torch_forward
from .selfcheck import record_launch_failure, use_triton

__all__ = ["auto_map"]


def _triton() -> ModuleType:  # imported when used: the package imports this module also without triton
    from . import pixel_contrastive_triton

    return pixel_contrastive_triton


def _mode(sliding: bool) -> str:
    return "sliding" if sliding else "grid"


# The op names are part of compiled graphs: keep them.
@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_auto_fwd", mutates_args=())
def _auto_fwd(
    sr: Tensor, hr: Tensor, region: int, temperature: float, sliding: bool, chunk_size: int
) -> tuple[Tensor, Tensor]:
    triton_ok, key = use_triton(sr, hr, region, temperature, _mode(sliding))
    if triton_ok:
        try:
            return _triton().pixel_contrastive_triton_forward(sr, hr, region, temperature, sliding)
        except Exception as error:
            if key is None:
                raise
            record_launch_failure(key, error)
    return torch_forward(sr, hr, region, temperature, sliding, chunk_size)


@torch.library.custom_op("contrastive_sr_losses::pixel_contrastive_auto_bwd", mutates_args=())
def _auto_bwd(
    grad: Tensor, sr: Tensor, hr: Tensor, lse: Tensor, region: int, temperature: float, sliding: bool,
    chunk_size: int, need_sr: bool, need_hr: bool,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    # Both backends save the same log-sum-exp map, so either backward fits either forward.
    triton_ok, key = use_triton(sr, hr, region, temperature, _mode(sliding))
    if triton_ok:
        try:
            return _triton().pixel_contrastive_triton_backward(
                grad, sr, hr, lse, region, temperature, sliding, need_sr, need_hr
            )
        except Exception as error:
            if key is None:
                raise
            record_launch_failure(key, error)
    return torch_backward(grad, sr, hr, lse, region, temperature, sliding, chunk_size, need_sr, need_hr)


register_map_ops(_auto_fwd, _auto_bwd)


def auto_map(
    sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str = "grid", chunk_size: int | None = None
) -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` of ``backend='auto'`` for inputs the kernels could run on:
    the Triton kernels if they pass (or passed) the self-check for this configuration, the ``'torch'``
    backend otherwise. Differentiable; inputs are assumed validated; ``chunk_size`` is the ``'torch'``
    backend's (``None``: automatic)."""
    chunk = chunk_size or default_chunk_size(region)
    loss, _ = _auto_fwd(sr, hr, region, float(temperature), mode == "sliding", chunk)
    return loss
