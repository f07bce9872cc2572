"""Random (sr, hr) pairs shared by the pixel contrastive test files."""

from __future__ import annotations

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
