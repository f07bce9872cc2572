"""Pieces shared by the reference SR networks: input normalisation, convs, upsamplers, channel attention.

Conventions of every network of :mod:`contrastive_sr_losses.archs`:

- input and output are RGB images ``(N, 3, h, w)`` -> ``(N, 3, scale*h, scale*w)`` in [0, 1];
- scales 2, 3 and 4 are supported;
- convolutions keep PyTorch's default initialisation (``kaiming_uniform_(a=sqrt(5))``), which is what
  the EDSR, RCAN and RLFN reference code train from scratch with;
- the input tensor is never modified in place: the first operation of every forward makes a new tensor.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from .._validation import check_positive_float, check_positive_int

__all__ = [
    "DIV2K_RGB_MEAN",
    "SUPPORTED_SCALES",
    "check_scale",
    "check_network_input",
    "conv3x3",
    "MeanShift",
    "Upsampler",
    "PixelShuffleDirect",
    "ChannelAttention",
    "ResidualSRNet",
]

#: Mean RGB value of the DIV2K training set in [0, 1], the mean shift of EDSR, RCAN and SwinIR.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)

#: Upscaling factors every network of the package supports (and is tested with).
SUPPORTED_SCALES: tuple[int, ...] = (2, 3, 4)


def check_scale(scale: object) -> int:
    """Return ``scale`` if it is one of :data:`SUPPORTED_SCALES`, raise a ``ValueError`` naming it otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise TypeError(f"scale must be an int, one of {SUPPORTED_SCALES}, got {type(scale).__name__} {scale!r}")
    if scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale}")
    return scale


def check_network_input(x: object, channels: int = 3) -> Tensor:
    """Check that a network's input is a floating ``(N, channels, h, w)`` tensor (shape only, no sync)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"input must be a torch.Tensor of shape (N, {channels}, h, w), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"input must have shape (N, {channels}, h, w), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got {x.dtype}")
    return x


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution with zero padding 1 (size preserving)."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class MeanShift(nn.Module):
    """Fixed input normalisation ``(x - mean) * img_range`` and its inverse, the mean as a buffer.

    EDSR and RCAN subtract the DIV2K mean with a frozen 1x1 convolution on [0, 255] images; here the
    mean is a non-trainable, non-persistent buffer (never a parameter, never in a state dict) and the
    [0, 1] input is scaled by ``img_range`` (255 reproduces the [0, 255] arithmetic of those networks,
    1 that of SwinIR). Neither direction modifies its argument in place.

    Args:
        mean: per-channel mean in [0, 1] (default: DIV2K's).
        img_range: factor between the [0, 1] input and the network's internal range.

    Example:
        >>> shift = MeanShift(img_range=255.0)
        >>> x = torch.rand(1, 3, 4, 4)
        >>> torch.allclose(shift.restore(shift.normalize(x)), x, atol=1e-6)
        True
    """

    mean: Tensor

    def __init__(self, mean: Sequence[float] = DIV2K_RGB_MEAN, img_range: float = 255.0) -> None:
        super().__init__()
        if isinstance(mean, (str, bytes)) or not isinstance(mean, (Sequence, Tensor)) or any(
            isinstance(v, bool) or not isinstance(v, (numbers.Real, Tensor)) for v in mean
        ):
            raise TypeError(f"rgb_mean must be a sequence of 3 numbers (R, G, B), got {type(mean).__name__} {mean!r}")
        values = [float(v) for v in mean]
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"rgb_mean must hold 3 values (R, G, B), finite, got {len(values)}: {tuple(values)}")
        self.img_range = check_positive_float(img_range, "img_range")
        self.register_buffer("mean", torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.dtype)) * self.img_range

    def restore(self, x: Tensor) -> Tensor:
        return x / self.img_range + self.mean.to(x.dtype)

    def extra_repr(self) -> str:
        return f"mean={tuple(round(v, 4) for v in self.mean.flatten().tolist())}, img_range={self.img_range:g}"


class Upsampler(nn.Sequential):
    """EDSR / RCAN upsampler: ``log2(scale)`` stages of conv3x3(C -> 4C) + PixelShuffle(2), or for
    ``scale=3`` one stage conv3x3(C -> 9C) + PixelShuffle(3). Keeps ``C`` channels."""

    def __init__(self, scale: int, channels: int) -> None:
        check_scale(scale)
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [conv3x3(channels, 9 * channels), nn.PixelShuffle(3)]
        else:
            for _ in range({2: 1, 4: 2}[scale]):
                layers += [conv3x3(channels, 4 * channels), nn.PixelShuffle(2)]
        super().__init__(*layers)


class PixelShuffleDirect(nn.Sequential):
    """One conv (C -> out * scale**2) followed by PixelShuffle(scale): the light upsampler of
    SwinIR-light ('pixelshuffledirect'), RLFN and most lightweight SR networks."""

    def __init__(self, scale: int, in_channels: int, out_channels: int = 3, kernel_size: int = 3) -> None:
        check_scale(scale)
        conv = nn.Conv2d(in_channels, out_channels * scale * scale, kernel_size, padding=kernel_size // 2)
        super().__init__(conv, nn.PixelShuffle(scale))


class ChannelAttention(nn.Module):
    """RCAN's channel attention (Zhang et al. 2018, eq 4-5): global average pooling, 1x1 conv down by
    ``reduction``, ReLU, 1x1 conv up, sigmoid, and the input rescaled channel by channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(reduction, "reduction")
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.body(self.pool(x))


class ResidualSRNet(nn.Module):
    """The EDSR / RCAN layout shared by EDSR, RCAN and PRFFN::

        x -> MeanShift -> conv3x3 (3 -> C) -> [body blocks -> conv3x3] + skip
          -> Upsampler -> conv3x3 (C -> 3) -> MeanShift^-1

    Subclasses pass their body blocks (each mapping C channels to C channels).
    """

    def __init__(
        self,
        scale: int,
        n_feats: int,
        blocks: Sequence[nn.Module],
        img_range: float,
        rgb_mean: Sequence[float],
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.mean_shift = MeanShift(rgb_mean, img_range)
        self.head = conv3x3(3, n_feats)
        self.body = nn.Sequential(*blocks, conv3x3(n_feats, n_feats))
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3x3(n_feats, 3))

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x)
        x = self.head(self.mean_shift.normalize(x))
        x = x + self.body(x)
        return self.mean_shift.restore(self.tail(x))
