"""Small ``nn.Module`` helpers shared by the losses and the training kit ``srkit``.

Public (formerly the private ``_nn``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn as nn

__all__ = ["training_mode"]


@contextlib.contextmanager
def training_mode(module: nn.Module, mode: bool) -> Iterator[None]:
    """Put every submodule of ``module`` in ``mode`` for the block and restore each one's own flag
    afterwards (``module.train(mode)`` would overwrite the flags a caller set per submodule).

    Example:
        >>> from contrastive_sr_losses.utils import training_mode
        >>> net = torch.nn.Sequential(torch.nn.Dropout(), torch.nn.Dropout()).eval()
        >>> net[1].train()  # a flag set per submodule
        Dropout(p=0.5, inplace=False)
        >>> with training_mode(net, True):
        ...     [m.training for m in net]
        [True, True]
        >>> [m.training for m in net]
        [False, True]
    """
    saved = [(m, m.training) for m in module.modules() if m.training != mode]
    for m, _ in saved:
        m.training = mode
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag
