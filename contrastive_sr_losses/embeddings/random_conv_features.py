"""A frozen, randomly initialised Conv3x3 -> Tanh -> Conv3x3 feature space (RLFN, Kong et al. 2022;
used by RRLFN, Guo et al., section 1.3).

Random networks keep local image detail, and Tanh (bounded) keeps shallow features dense where VGG's
ReLU makes them sparse (Guo et al., fig 6). The weights are drawn from ``seed`` with PyTorch's default
convolution initialisation (Kaiming-uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)) on a
CPU generator, so that the same seed gives the same weights on every device and every run. They are
**buffers**, not parameters: saved in ``state_dict``, moved by ``.to()``, invisible to optimizers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_bool, check_image, check_positive_int, check_seed, check_value_range
from ..functional.color import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["RandomConvFeatures", "IMAGENET_MEAN", "IMAGENET_STD"]


def _default_conv_init(out_ch: int, in_ch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``nn.Conv2d``'s default initialisation, drawn from ``gen``: U(-b, b) with b = 1/sqrt(fan_in)
    for both the weight (Kaiming-uniform, a = sqrt(5)) and the bias."""
    bound = 1.0 / math.sqrt(in_ch * 9)
    weight = (torch.rand(out_ch, in_ch, 3, 3, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    bias = (torch.rand(out_ch, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    return weight.float(), bias.float()


class RandomConvFeatures(nn.Module):
    """Frozen random Conv3x3(s1) -> Tanh -> Conv3x3(s1) returning the two intermediate feature maps.

    Args:
        in_channels: image channels (3).
        channels: feature channels of both convolutions (default 16; RLFN does not publish it. A 3x3
            RGB patch has 27 values: 16 random projections of it, squashed by Tanh and mixed again,
            keep the local structure while the feature maps stay 5x smaller than VGG's first layer).
        seed: seed of the random weights.
        normalize: subtract ImageNet mean / divide by std first (needs 3 channels; the RLFN
            authors' advice).
        value_range: what white is in the input (1.0 for [0, 1] images, 255.0 for [0, 255]); used by
            the normalisation.

    Shape:
        - input: ``(N, in_channels, H, W)``
        - output: a list of two ``(N, channels, H, W)`` maps: after the Tanh, after the second conv.

    Example:
        >>> phi = RandomConvFeatures(seed=0)
        >>> [tuple(f.shape) for f in phi(torch.rand(2, 3, 16, 16))]
        [(2, 16, 16, 16), (2, 16, 16, 16)]
        >>> len(list(phi.parameters())), sorted(phi.state_dict())[:2]
        (0, ['bias1', 'bias2'])
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 16,
        *,
        seed: int = 0,
        normalize: bool = True,
        value_range: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(channels, "channels")
        check_seed(seed)
        check_bool(normalize, "normalize")
        if normalize and in_channels != 3:
            raise ValueError(f"normalize=True uses ImageNet RGB statistics and needs in_channels=3, got {in_channels}")
        value_range = check_value_range(value_range)
        self.in_channels, self.channels, self.seed = in_channels, channels, seed
        self.normalize, self.value_range = bool(normalize), float(value_range)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        w1, b1 = _default_conv_init(channels, in_channels, gen)
        w2, b2 = _default_conv_init(channels, channels, gen)
        self.register_buffer("weight1", w1)
        self.register_buffer("bias1", b1)
        self.register_buffer("weight2", w2)
        self.register_buffer("bias2", b2)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * self.value_range)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * self.value_range)
        self.eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x, "input", channels=self.in_channels)
        dtype = x.dtype
        if self.normalize:
            x = (x - self.mean.to(dtype)) / self.std.to(dtype)
        pre = F.conv2d(x, self.weight1.to(dtype), self.bias1.to(dtype), padding=1)
        # tanh maps +-Inf to +-1: add pre - pre (0, or NaN where pre is not finite, exactly; no gradient)
        # so that a NaN / Inf pixel gives NaN features around it, not finite ones
        f1 = torch.tanh(pre) + (pre - pre)
        f2 = F.conv2d(f1, self.weight2.to(dtype), self.bias2.to(dtype), padding=1)
        return [f1, f2]

    def train(self, mode: bool = True) -> RandomConvFeatures:
        return super().train(False)  # no layer behaves differently in training; stays in eval mode

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, channels={self.channels}, seed={self.seed}, "
            f"normalize={self.normalize}, value_range={self.value_range:g}"
        )
