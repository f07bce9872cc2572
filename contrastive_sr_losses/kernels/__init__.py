"""Fast paths of the losses and the choice between them.

A backend computes the per-anchor loss map ``(N, 1, H, W)`` of the pixel contrastive loss from
validated inputs; the loss module applies the reduction. Every backend is tested against the plain
references in :mod:`contrastive_sr_losses.losses.pixel_contrastive`, in both modes (``'grid'``,
the paper's blocks, and ``'sliding'``, a window centred on every pixel).

- ``'reference'``: the equation as written, autograd through ``(B, S, S, C)`` (grid) or
  ``(N, C, S, H*W)`` (sliding, ``F.unfold``) tensors.
- ``'torch'``: chunked custom ops with an analytic backward (any device, memory bounded).
- ``'triton'``: fused Triton kernels (CUDA tensors; CPU tensors in Triton's interpreter when
  ``TRITON_INTERPRET=1`` was set before the import). Needs the optional ``triton`` package.
- ``'auto'``: for CUDA tensors when triton is importable (and its kernels are compiled, not
  interpreted, :func:`triton_eligible`), the Triton kernels once they pass a self-check on first use
  per configuration, else ``'torch'`` (:mod:`.selfcheck`; ``CSR_TRITON_SELFCHECK=0`` skips the
  check); ``'torch'`` for every other input.

Package import never requires triton: it is imported here when installed, and a failed import only
makes ``'triton'`` unavailable (``TRITON_UNAVAILABLE_REASON`` says why).
"""

from __future__ import annotations

from torch import Tensor

from .pixel_contrastive_sliding_torch import pixel_contrastive_sliding_map_torch
from .pixel_contrastive_torch import default_chunk_size, pixel_contrastive_map_torch
from .selfcheck import (
    SELFCHECK_ENV,
    SelfCheckKey,
    SelfCheckVerdict,
    TritonSelfCheckWarning,
    clear_triton_selfcheck,
    pixel_contrastive_auto_map,
    triton_selfcheck_verdicts,
)

__all__ = [
    "PIXEL_CONTRASTIVE_BACKENDS",
    "PIXEL_CONTRASTIVE_MODES",
    "TRITON_AVAILABLE",
    "TRITON_INTERPRETED",
    "TRITON_UNAVAILABLE_REASON",
    "SELFCHECK_ENV",
    "SelfCheckKey",
    "SelfCheckVerdict",
    "TritonSelfCheckWarning",
    "clear_triton_selfcheck",
    "triton_selfcheck_verdicts",
    "triton_eligible",
    "select_pixel_contrastive_backend",
    "pixel_contrastive_fast_map",
    "default_chunk_size",
    "pixel_contrastive_map_torch",
    "pixel_contrastive_sliding_map_torch",
]

PIXEL_CONTRASTIVE_BACKENDS: tuple[str, ...] = ("auto", "reference", "torch", "triton")
PIXEL_CONTRASTIVE_MODES: tuple[str, ...] = ("grid", "sliding")

try:
    from . import pixel_contrastive_triton as _triton_path
except Exception as error:  # ImportError without triton; a broken install must not break the package
    _triton_path = None
    TRITON_UNAVAILABLE_REASON: str | None = f"{type(error).__name__}: {error}"
else:
    TRITON_UNAVAILABLE_REASON = None

TRITON_AVAILABLE: bool = _triton_path is not None
#: The kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import): ``'auto'`` then avoids them.
TRITON_INTERPRETED: bool = _triton_path is not None and _triton_path.INTERPRETED


def triton_eligible(sr: Tensor) -> bool:
    """Whether ``'auto'`` considers the Triton kernels for this input: a CUDA tensor, triton importable,
    kernels compiled (never the slow interpreter). The self-check then decides per configuration."""
    return sr.is_cuda and TRITON_AVAILABLE and not TRITON_INTERPRETED


def select_pixel_contrastive_backend(backend: str, sr: Tensor) -> str:
    """Resolve ``'auto'`` for the given input (no device sync): ``'torch'`` when the kernels are not
    eligible; ``'auto'`` stays ``'auto'`` when they are (the self-checked choice, made at run time by
    :func:`pixel_contrastive_fast_map`). Other names are returned as they are."""
    if backend != "auto":
        return backend
    return "auto" if triton_eligible(sr) else "torch"


def pixel_contrastive_fast_map(
    sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str, backend: str, chunk_size: int | None
) -> Tensor:
    """Loss map of a fast backend in ``mode``: ``'torch'``, ``'triton'`` (strict: errors raise) or
    ``'auto'`` as resolved by :func:`select_pixel_contrastive_backend` (self-checked kernels)."""
    if backend == "auto":
        return pixel_contrastive_auto_map(sr, hr, region, temperature, mode, chunk_size)
    if backend == "triton":
        if _triton_path is None:
            raise RuntimeError(
                "backend='triton' needs the optional triton package (pip install triton), which cannot be "
                f"imported here ({TRITON_UNAVAILABLE_REASON}); use backend='auto' or 'torch'"
            )
        return _triton_path.pixel_contrastive_map_triton(sr, hr, region, temperature, mode)
    if mode == "sliding":
        return pixel_contrastive_sliding_map_torch(sr, hr, region, temperature, chunk_size)
    return pixel_contrastive_map_torch(sr, hr, region, temperature, chunk_size)
