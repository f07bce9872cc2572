"""Colour conversion used by the SR evaluation protocol, and the ImageNet normalisation of the
feature spaces (VGG, random conv)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rgb_to_y", "rgb_to_gray", "IMAGENET_MEAN", "IMAGENET_STD"]

# torchvision's ImageNet mean / std of RGB in [0, 1], which VGG's weights expect (and RLFN reuses)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ITU-R BT.601 luma for RGB in [0, 1] giving Y in [16, 235] (MATLAB's rgb2ycbcr), the SR convention.
_BT601_Y = (65.481, 128.553, 24.966)


def rgb_to_y(rgb: Tensor) -> Tensor:
    """BT.601 luma ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for RGB in [0, 1], Y in [16, 235].

    Shape: ``(..., 3, H, W)`` -> ``(..., 1, H, W)``, same dtype.

    Example:
        >>> rgb_to_y(torch.ones(1, 3, 2, 2))[0, 0, 0, 0].item()
        235.0
    """
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"rgb must have shape (..., 3, H, W), got {tuple(rgb.shape)}")
    weight = torch.tensor(_BT601_Y, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return (rgb * weight).sum(dim=-3, keepdim=True) + 16.0


def rgb_to_gray(rgb: Tensor) -> Tensor:
    """BT.601 luma on the gray scale of the input: ``(rgb_to_y(rgb) - 16) / 219``, i.e.
    ``0.299 R + 0.587 G + 0.114 B`` (PIL's ``convert('L')``, MATLAB's ``rgb2gray``); a gray image
    stored as three equal channels gives its gray level back. Used to score an RGB network's output
    on a grayscale test image.

    Shape: ``(..., 3, H, W)`` -> ``(..., 1, H, W)``, same dtype.

    Example:
        >>> rgb_to_gray(torch.full((3, 1, 1), 0.25, dtype=torch.float64)).item()
        0.25
    """
    return (rgb_to_y(rgb) - 16.0) / 219.0
