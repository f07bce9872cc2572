"""Small PCL pieces shared by the tests of the wavelet discriminator, PCL's losses and PCLTrainer."""

from __future__ import annotations

import torch
import torch.nn as nn

from contrastive_sr_losses.embeddings import WaveletDiscriminator
from contrastive_sr_losses.losses.pcl import FrequencyContrastiveLoss

#: a quarter-width discriminator of four blocks, fast enough for many tests
TINY = dict(channels=(8, 8, 16, 16), strides=(1, 2, 1, 2))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tiny_disc(seed: int = 0, **kwargs) -> WaveletDiscriminator:
    torch.manual_seed(seed)
    return WaveletDiscriminator(**{**TINY, **kwargs})


def _pair(n=2, size=16, seed=0, dtype=torch.float32):
    g = _gen(seed)
    hr = torch.rand(n, 3, size, size, generator=g, dtype=dtype)
    sr = (hr + 0.1 * torch.randn(n, 3, size, size, generator=g, dtype=dtype)).clamp(0, 1)
    return sr.requires_grad_(True), hr


def _warm_bn(disc: nn.Module, seed: int = 0) -> None:
    """Give BatchNorm non-trivial running statistics (a few training-mode forwards)."""
    disc.train()
    with torch.no_grad():
        for i in range(3):
            disc(torch.rand(4, disc.in_channels, 16, 16, generator=_gen(seed + i)))
    disc.eval()


def _criterion(seed=0, **kwargs) -> FrequencyContrastiveLoss:
    disc = _tiny_disc(seed)
    _warm_bn(disc, seed)
    return FrequencyContrastiveLoss(disc, layers=(0, 2), **kwargs)
