"""Random (sr, hr) pairs and the Triton test set-up shared by the pixel contrastive test files."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch


def make_pair(
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    levels: int | None = None,
    seed: int = 0,
    draw_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform [0, 1) ``sr`` and ``hr`` from ``seed``; with ``levels``, ``hr`` is quantised to that many
    values, so exact duplicates (|P_i| > 1) are common. Drawn in ``draw_dtype`` (default ``dtype``),
    returned in ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    sr = torch.rand(shape, generator=g, dtype=draw_dtype or dtype)
    hr = torch.rand(shape, generator=g, dtype=draw_dtype or dtype)
    if levels is not None:
        hr = (hr * (levels - 1)).round() / (levels - 1)
    return sr.to(dtype), hr.to(dtype)


def triton_kernels_and_device() -> tuple[ModuleType, torch.device]:
    """The Triton kernel module and the device its tests run on (the CPU under ``TRITON_INTERPRET=1``,
    else CUDA). Call it at import time: it skips the calling test module when triton is not
    importable, or when the kernels are compiled and there is no GPU (TRITON_INTERPRET was not set
    before the import)."""
    from contrastive_sr_losses import kernels

    if not kernels.TRITON_AVAILABLE:
        pytest.skip(f"triton is not importable: {kernels.TRITON_UNAVAILABLE_REASON}", allow_module_level=True)
    from contrastive_sr_losses.kernels import pixel_contrastive_triton as tk

    if tk.INTERPRETED:
        return tk, torch.device("cpu")
    if torch.cuda.is_available():
        return tk, torch.device("cuda")
    pytest.skip("compiled Triton kernels need CUDA; run with TRITON_INTERPRET=1", allow_module_level=True)
