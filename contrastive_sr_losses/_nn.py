"""Small ``nn.Module`` helpers shared by the losses and the example scripts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn as nn


@contextlib.contextmanager
def training_mode(module: nn.Module, mode: bool) -> Iterator[None]:
    """Put every submodule of ``module`` in ``mode`` for the block and restore each one's own flag
    afterwards (``module.train(mode)`` would overwrite the flags a caller set per submodule)."""
    saved = [(m, m.training) for m in module.modules() if m.training != mode]
    for m, _ in saved:
        m.training = mode
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag
