"""The wavelet discriminator of PCL (Wu et al., section 3.3): the embedding E_D.

It sees only the high-frequency content of an image: a one-level Haar DWT (reflect borders), of which
the ``LH``, ``HL``, ``HH`` sub-bands are stacked (``H_w`` of eq 7, ``3 C`` channels), then 8 blocks of
Conv3x3 (no bias) + BatchNorm + LeakyReLU(0.2) with 64, 64, 128, 128, 256, 256, 512, 512 channels and
strides 1, 2, 1, 2, 1, 2, 1, 2, then a patch head ``AdaptiveAvgPool2d(4)`` + 1x1 conv: 16 logits per
image. This is the layout of the authors' released code; the paper itself only
says "the discriminator". The contrastive loss reads the outputs (after the activation) of the
stride-1 blocks 0, 2, 4, 6 ("the first 4 intermediate layers", eq 10). The authors' scripts pass
``--before_relu``, which stores each block's BatchNorm output, but their LeakyReLU runs in place and
overwrites that very tensor, so the features they compare are the activations' outputs too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch.nn as nn
from torch import Tensor

from .._validation import check_image, check_int_tuple, check_positive_int
from ..functional.wavelets import DWT2

__all__ = ["WaveletDiscriminator", "PCL_CHANNELS", "PCL_STRIDES", "PCL_FEATURE_LAYERS"]

PCL_CHANNELS: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 512, 512)
PCL_STRIDES: tuple[int, ...] = (1, 2, 1, 2, 1, 2, 1, 2)
PCL_FEATURE_LAYERS: tuple[int, ...] = (0, 2, 4, 6)


class WaveletDiscriminator(nn.Module):
    """Patch discriminator on the Haar detail sub-bands; PCL's embedding network E_D.

    Args:
        in_channels: image channels C (3 for RGB); the network sees ``3 C`` sub-band channels.
        channels: output channels of the conv blocks, default :data:`PCL_CHANNELS` (64 ... 512).
        strides: stride of each block (1 or 2), default :data:`PCL_STRIDES` (1, 2, 1, 2, ...).
        negative_slope: of the LeakyReLU activations, default 0.2.
        pool_size: the patch head averages the last block to ``pool_size x pool_size`` cells, each
            scored by a 1x1 conv; default 4 (16 logits per image).
        wavelet: PyWavelets wavelet of the transform, default ``'haar'`` (the paper's).
        wavelet_mode: border extension of the transform (only read for odd sizes with Haar), default
            ``'reflect'`` as in the authors' code.

    Shape:
        - input: ``(N, in_channels, H, W)``, any floating dtype matching the parameters (or autocast).
        - ``forward(x)``: logits ``(N, 1, pool_size, pool_size)``.
        - ``forward(x, layers=(0, 2))``: ``(logits, [features of block 0, features of block 2])``.
        - ``forward(x, layers=(0, 2), return_logits=False)``: the feature list only; the blocks after the
          last requested one and the head are not run.

    The activations are not in-place, so the returned features are the blocks' outputs. BatchNorm
    behaves as usual: batch statistics in training mode, running statistics in eval mode;
    :class:`~contrastive_sr_losses.losses.pcl.FrequencyContrastiveLoss` reads the
    features in eval mode.

    Example:
        >>> disc = WaveletDiscriminator()
        >>> x = torch.rand(2, 3, 64, 64)
        >>> disc(x).shape
        torch.Size([2, 1, 4, 4])
        >>> [tuple(f.shape) for f in disc(x, layers=(0, 2, 4, 6), return_logits=False)]
        [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4)]
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = PCL_CHANNELS,
        strides: Sequence[int] = PCL_STRIDES,
        *,
        negative_slope: float = 0.2,
        pool_size: int = 4,
        wavelet: str = "haar",
        wavelet_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        channels = check_int_tuple(channels, "channels", 1)
        strides = check_int_tuple(strides, "strides", 1)
        if len(channels) != len(strides) or any(s not in (1, 2) for s in strides):
            raise ValueError(
                f"strides must give a stride of 1 or 2 for each of the {len(channels)} blocks, got {strides}"
            )
        self.pool_size = check_positive_int(pool_size, "pool_size")
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"negative_slope must be a number (LeakyReLU's slope), got {type(negative_slope).__name__} {negative_slope!r}")
        if not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be a finite number (LeakyReLU's slope), got {negative_slope!r}")
        self.dwt = DWT2(wavelet, wavelet_mode, high_only=True)
        blocks = []
        c_in = 3 * self.in_channels
        for c_out, stride in zip(channels, strides):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(negative_slope, inplace=False),
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(self.pool_size), nn.Conv2d(c_in, 1, 1))

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def check_layers(self, layers: object) -> tuple[int, ...]:
        """Validate block indices: distinct ints in ``[0, num_blocks)``, returned as a tuple."""
        try:
            items = tuple(layers)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"layers must be a sequence of block indices, got {layers!r}") from None
        bad = [i for i in items if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.num_blocks]
        if not items or bad or len(set(items)) != len(items):
            raise ValueError(
                f"layers must be distinct block indices in [0, {self.num_blocks}) (this discriminator has "
                f"{self.num_blocks} blocks), got {layers!r}"
            )
        return items

    def forward(
        self, x: Tensor, layers: Sequence[int] | None = None, *, return_logits: bool = True
    ) -> Tensor | tuple[Tensor, list[Tensor]] | list[Tensor]:
        check_image(x, "input", channels=self.in_channels)
        if layers is None:
            if not return_logits:
                raise ValueError("return_logits=False needs layers: the feature maps to return")
            wanted: tuple[int, ...] = ()
        else:
            wanted = self.check_layers(layers)
        last = self.num_blocks - 1 if return_logits else max(wanted)
        found: dict[int, Tensor] = {}
        h = self.dwt(x)
        if self.training:
            self._check_batchnorm_sizes(x, h, last)
        for i, block in enumerate(self.blocks):
            if i > last:
                break
            h = block(h)
            if i in wanted:
                found[i] = h
        features = [found[i] for i in wanted]
        if not return_logits:
            return features
        logits = self.head(h)
        return logits if layers is None else (logits, features)

    def _check_batchnorm_sizes(self, x: Tensor, h: Tensor, last: int) -> None:
        """Before any block runs (and updates BatchNorm statistics): in training mode every block's
        BatchNorm needs more than one value per channel (batch x height x width > 1)."""
        n, rows, cols = h.shape[0], h.shape[-2], h.shape[-1]
        for i, block in enumerate(self.blocks[: last + 1]):
            stride = block[0].stride
            rows, cols = math.ceil(rows / stride[0]), math.ceil(cols / stride[1])  # 3x3, padding 1
            if n * rows * cols == 1:
                raise ValueError(
                    f"input of shape {tuple(x.shape)}: block {i} of the discriminator would see 1 value per channel, "
                    "which its BatchNorm cannot normalise in training mode; use a batch of >= 2 images or larger "
                    "ones (or eval mode)"
                )

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, blocks={self.num_blocks}, pool_size={self.pool_size}"
