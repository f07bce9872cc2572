"""EDSR (Lim, Son, Kim, Nah, Lee, *Enhanced Deep Residual Networks for Single Image Super-Resolution*,
CVPRW 2017), baseline and full.

    x -> MeanShift -> conv3x3 -> [ResBlock x n_resblocks -> conv3x3] + skip -> Upsampler -> conv3x3 -> MeanShift^-1

ResBlock = conv3x3 -> ReLU -> conv3x3, times ``res_scale``, plus the input (no batch norm).

- ``edsr_baseline``: 16 blocks, 64 channels, res_scale 1; 1,517,571 trainable parameters at x4
  (1,369,859 at x2, 1,554,499 at x3), the official figure.
- ``edsr``: 32 blocks, 256 channels, res_scale 0.1 (43.1M at x4).

The DIV2K mean shift is a fixed buffer (:class:`~contrastive_sr_losses.archs.common.MeanShift`) and the
network works internally on the [0, 255] scale like the original (``img_range=255``), on [0, 1] input
and output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from torch import Tensor

from .._validation import check_positive_float, check_positive_int
from .common import DIV2K_RGB_MEAN, ResidualSRNet, check_scale, conv3x3

__all__ = ["EDSR", "ResBlock", "edsr", "edsr_baseline"]


class ResBlock(nn.Module):
    """EDSR residual block: ``x + res_scale * conv(relu(conv(x)))``, no batch norm."""

    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        res = self.body(x)
        if self.res_scale != 1.0:
            res = res * self.res_scale
        return x + res


class EDSR(ResidualSRNet):
    """EDSR super-resolution network (Lim et al. 2017).

    Args:
        scale: upscaling factor, 2, 3 or 4.
        n_resblocks: residual blocks in the body (baseline 16, full 32).
        n_feats: feature channels (baseline 64, full 256).
        res_scale: residual scaling of each block (baseline 1, full 0.1, the paper's section 3.2).
        img_range: internal value range; 255 as the original, which trained on [0, 255] images.
        rgb_mean: mean subtracted from the input, in [0, 1] (DIV2K's).

    Shape:
        - Input: ``(N, 3, h, w)`` in [0, 1].
        - Output: ``(N, 3, scale*h, scale*w)``.

    Example:
        >>> model = EDSR(scale=2, n_resblocks=2, n_feats=16)
        >>> model(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(
        self,
        scale: int = 4,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        check_scale(scale)
        check_positive_int(n_resblocks, "n_resblocks")
        check_positive_int(n_feats, "n_feats")
        res_scale = check_positive_float(res_scale, "res_scale")
        blocks = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        super().__init__(scale, n_feats, blocks, img_range, rgb_mean)


def edsr_baseline(scale: int = 4, **kwargs) -> EDSR:
    """EDSR baseline: 16 blocks, 64 channels, res_scale 1 (1,517,571 parameters at x4)."""
    return EDSR(scale, **{"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0, **kwargs})


def edsr(scale: int = 4, **kwargs) -> EDSR:
    """EDSR (full): 32 blocks, 256 channels, res_scale 0.1."""
    return EDSR(scale, **{"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1, **kwargs})
