"""RCAN (Zhang, Li, Li, Wang, Zhong, Fu, *Image Super-Resolution Using Very Deep Residual Channel
Attention Networks*, ECCV 2018).

    x -> MeanShift -> conv3x3 -> [ResidualGroup x 10 -> conv3x3] + skip -> Upsampler -> conv3x3 -> MeanShift^-1
    ResidualGroup = [RCAB x 20 -> conv3x3] + skip          (short skip connection, eq 3 of the paper)
    RCAB = x + CA(conv3x3(relu(conv3x3(x))))               (eq 9-10; CA = channel attention, eq 4-5)

Defaults from the paper: 10 residual groups of 20 RCABs, 64 channels, reduction 16.
Parameter count at x4: 15,592,355 trainable parameters. The figure usually quoted for the official
model, 15,592,379, is ``sum(p.numel() for p in model.parameters())`` of the reference code, which
also counts the 2 x 12 weights of its two frozen ``MeanShift`` 1x1 convolutions (3x3 weight + 3
bias each, ``requires_grad=False``); here the mean shift is a buffer, so 15,592,355 + 24 = 15,592,379.

Unlike some repackagings of RCAN, the input is never modified in place and the mean shift is not
trainable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from torch import Tensor

from .._validation import check_positive_int
from .common import DIV2K_RGB_MEAN, ChannelAttention, ResidualSRNet, check_scale, conv3x3

__all__ = ["RCAN", "RCAB", "ResidualGroup", "rcan"]


class RCAB(nn.Module):
    """Residual channel attention block: ``x + CA(conv(relu(conv(x))))``."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``n_resblocks`` RCABs and a conv3x3, with a short skip connection around them."""

    def __init__(self, channels: int, n_resblocks: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *[RCAB(channels, reduction) for _ in range(n_resblocks)], conv3x3(channels, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class RCAN(ResidualSRNet):
    """RCAN super-resolution network (Zhang et al. 2018).

    Args:
        scale: upscaling factor, 2, 3 or 4.
        n_resgroups: residual groups (10 in the paper).
        n_resblocks: RCABs per group (20).
        n_feats: feature channels (64).
        reduction: channel-attention reduction ratio (16).
        img_range: internal value range; 255 as the original, which trained on [0, 255] images.
        rgb_mean: mean subtracted from the input, in [0, 1] (DIV2K's).

    Shape:
        - Input: ``(N, 3, h, w)`` in [0, 1].
        - Output: ``(N, 3, scale*h, scale*w)``.

    Example:
        >>> model = RCAN(scale=3, n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4)
        >>> model(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 24, 24])
    """

    def __init__(
        self,
        scale: int = 4,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        reduction: int = 16,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        check_scale(scale)
        check_positive_int(n_resgroups, "n_resgroups")
        check_positive_int(n_resblocks, "n_resblocks")
        check_positive_int(n_feats, "n_feats")
        blocks = [ResidualGroup(n_feats, n_resblocks, reduction) for _ in range(n_resgroups)]
        super().__init__(scale, n_feats, blocks, img_range, rgb_mean)


def rcan(scale: int = 4, **kwargs) -> RCAN:
    """RCAN with the paper's configuration: 10 groups x 20 RCABs, 64 channels, reduction 16."""
    return RCAN(scale, **kwargs)
