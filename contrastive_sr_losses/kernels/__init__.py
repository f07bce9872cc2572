"""Fast paths of the pixel contrastive loss: a small public API that the loss dispatches to.

Each entry point computes the per-anchor loss map ``(N, 1, H, W)`` from validated inputs (the loss
module applies the reduction), in both modes (``'grid'``, the paper's blocks, and ``'sliding'``, a
window centred on every pixel), and is tested against the plain references in
:mod:`contrastive_sr_losses.losses.pixel_contrastive`, which also holds the one place where a
backend is chosen.

- :func:`torch_map` (``'torch'``): chunked custom ops with an analytic backward (any device, memory
  bounded); :mod:`.pixel_contrastive_torch` (grid) and :mod:`.pixel_contrastive_sliding_torch`.
- :func:`triton_map` (``'triton'``): fused Triton kernels (CUDA tensors; CPU tensors in Triton's
  interpreter when ``TRITON_INTERPRET=1`` was set before the import); :mod:`.pixel_contrastive_triton`.
  Needs the optional ``triton`` package.
- :func:`auto_map` (``'auto'`` for inputs where :func:`triton_eligible` is true): one custom op that
  runs the Triton kernels once they pass a self-check on first use per configuration, else
  ``'torch'`` (:mod:`.auto`; the verdicts and the comparison in :mod:`.selfcheck`;
  ``CSR_TRITON_SELFCHECK=0`` skips the check).
- :func:`triton_eligible`: a CUDA tensor, triton importable, kernels compiled (not interpreted).

Package import never requires triton: it is imported here when installed, and a failed import only
makes ``'triton'`` unavailable (``TRITON_UNAVAILABLE_REASON`` says why).

The loss's vocabulary (``PIXEL_CONTRASTIVE_MODES``, ``PIXEL_CONTRASTIVE_BACKENDS``) and its backend
choice (``select_pixel_contrastive_backend``, ``pixel_contrastive_fast_map``) live in the loss module;
they can still be imported from here.

Example:
    >>> from contrastive_sr_losses import pixel_contrastive_reference_map
    >>> sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    >>> fast = torch_map(sr, hr, 4, 1.0, "grid")
    >>> fast.shape, torch.allclose(fast, pixel_contrastive_reference_map(sr, hr, 4), atol=1e-5)
    (torch.Size([1, 1, 8, 8]), True)
    >>> triton_eligible(sr)        # a CPU tensor: backend 'auto' takes the torch path
    False
"""

from __future__ import annotations

from torch import Tensor

from .auto import auto_map
from .pixel_contrastive_sliding_torch import pixel_contrastive_sliding_map_torch
from .pixel_contrastive_torch import default_chunk_size, pixel_contrastive_map_torch, torch_map
from .selfcheck import (
    SELFCHECK_ENV,
    SelfCheckKey,
    SelfCheckVerdict,
    TritonSelfCheckWarning,
    clear_triton_selfcheck,
    triton_selfcheck_verdicts,
)

__all__ = [
    "torch_map",
    "triton_map",
    "auto_map",
    "triton_eligible",
    "TRITON_AVAILABLE",
    "TRITON_INTERPRETED",
    "TRITON_UNAVAILABLE_REASON",
    "SELFCHECK_ENV",
    "SelfCheckKey",
    "SelfCheckVerdict",
    "TritonSelfCheckWarning",
    "clear_triton_selfcheck",
    "triton_selfcheck_verdicts",
    "default_chunk_size",
    "pixel_contrastive_map_torch",
    "pixel_contrastive_sliding_map_torch",
    # the loss's names, importable here as before (defined in losses.pixel_contrastive)
    "PIXEL_CONTRASTIVE_BACKENDS",
    "PIXEL_CONTRASTIVE_MODES",
    "select_pixel_contrastive_backend",
    "pixel_contrastive_fast_map",
]

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


def triton_map(sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str = "grid") -> Tensor:
    """Per-anchor loss map ``(N, 1, H, W)`` from the fused Triton kernels in ``mode``, differentiable.

    Strict: errors raise (no self-check, no fallback); without triton a ``RuntimeError`` says why.
    Inputs are assumed validated.
    """
    if _triton_path is None:
        raise RuntimeError(
            "backend='triton' needs the optional triton package (pip install triton), which cannot be "
            f"imported here ({TRITON_UNAVAILABLE_REASON}); use backend='auto' or 'torch'"
        )
    return _triton_path.pixel_contrastive_map_triton(sr, hr, region, temperature, mode)


_LOSS_NAMES = ("PIXEL_CONTRASTIVE_BACKENDS", "PIXEL_CONTRASTIVE_MODES", "select_pixel_contrastive_backend",
               "pixel_contrastive_fast_map")  # fmt: skip


def __getattr__(name: str) -> object:
    # The loss module imports this package, so its names are looked up when asked for, not at import.
    if name in _LOSS_NAMES:
        from ..losses import pixel_contrastive

        return getattr(pixel_contrastive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
