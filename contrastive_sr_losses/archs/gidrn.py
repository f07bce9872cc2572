"""G-IDRN, the group-information distillation residual network (Wang, Zhao, Liu, Tao, *G-IDRN: A
Group-information Distillation Residual Network for Lightweight Image Super-resolution*, Acta
Automatica Sinica 2024, section 2, eqs 1-10).

    F0 = conv3x3(x)                                                         (eq 1)
    F_D = DS{G-IDRG_1, G-IDRG_2, G-IDRG_3}(F0)                              (eq 2, weights l_i^j)
    SR = Up(ANRB(F_D)) + Up'(conv5x5(x))                                    (eqs 3-4, two-path reconstruction)
    G-IDRG = DS{G-IDB_1, G-IDB_2, G-IDB_3}                                  (weights w_i^j)
    DS{f_1..f_n}(x_1):  x_{j+1} = f_j(x_j) + sum_{i<=j} w_i^j x_i           (weighted dense shortcuts)
    G-IDB (fig 4b), C = 72 channels, group convs of m = 8 channels (g = C/m = 9 groups):
        for k = 1..3:  d_k = act(pw_k(y_{k-1}));  y_k = act(gc_k(d_k) + y_{k-1})    (LSRB, y_0 = input)
        d_4 = act(gc_4(y_3))
        out = CCA(gc_fuse([d_1, d_2, d_3, d_4]))
    ANRB: q, k, v = three 1x1 convs C -> 1; k, v average-pooled to 1x1, 3x3, 6x6, 8x8 and
          flattened (S = 110 samples); Y = softmax(q^T k) v; out = x + conv1x1(Y) (1 -> C)   (eqs 7-10)

``pw`` = pointwise (1x1) conv, ``gc`` = 3x3 group conv, act = LeakyReLU(0.05) (the paper's, after
IMDN), CCA = IMDN's contrast-aware channel attention (the attention the paper names for RFDB, of
which G-IDB is the modification). ``Up`` = conv3x3 (C -> 3 scale^2) + PixelShuffle; ``Up'`` =
PixelShuffle of the 5x5 conv's 3 scale^2 channels. No mean shift; [0, 1] data.

Choices where the paper is silent (figures 3-5 are not in our copy of the text):

- **Two-path branch: conv5x5(3 -> 3 scale^2) + PixelShuffle.** Of the readings of eq 3, only this
  one reproduces the paper's differences between scales (x3 - x2 = 11K, x4 - x2 = 26K; here 10,875
  and 26,100).
- **G-IDB.** Each distillation step's pointwise conv is the block's only channel "compression" (the
  paper merges RFDB's two compressions into one) and keeps C channels; its output is kept for the
  concatenation and feeds the LSRB's group conv; the fourth kept piece is a group conv of the last
  LSRB output (RFDB's c4); "finally a group conv fine-tunes the learned features" is a 3x3 group conv
  from the 4C concatenation to C (it replaces RFDB's 1x1 conv). Each of its 9 groups reads a
  contiguous 32-channel slice of the concatenation, as a plain group conv does.
- **Residual weights.** The learnable weight of the G-IDB's residual shortcut is the DS weight
  w_j^j of its group. Initialisation: w_j^j = 1 and every cross-block weight w_i^j (i < j) and every
  group-level weight l_i^j = 0, so the untrained network is a plain residual chain of G-IDBs and
  the dense shortcuts are learned. Scalars, without the normalisation of dense-shortcut networks
  (the paper leaves it out).
- **Parameter count**: 535,371 / 546,246 / 561,471 at x2 / x3 / x4 against the paper's 554K / 565K
  / 580K (-3.4% / -3.3% / -3.2%), within 5%.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_positive_float, check_positive_int
from .common import PixelShuffleDirect, check_network_input, check_scale, conv3x3

__all__ = ["GIDRN", "GIDB", "ANRB", "ContrastChannelAttention", "DenseShortcuts", "gidrn"]


class ContrastChannelAttention(nn.Module):
    """IMDN's contrast-aware channel attention: per-channel (standard deviation + mean) over the
    image, 1x1 conv down by ``reduction``, ReLU, 1x1 conv up, sigmoid, rescale the input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.body(std + mean)


class GIDB(nn.Module):
    """Group-information distillation block (fig 4b), without its residual shortcut (which the
    enclosing :class:`DenseShortcuts` adds with a learnable weight)."""

    def __init__(
        self,
        channels: int = 72,
        group_channels: int = 8,
        n_steps: int = 3,
        negative_slope: float = 0.05,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        groups = channels // group_channels
        self.points = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(n_steps))
        self.group_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, groups=groups) for _ in range(n_steps)
        )
        self.last = nn.Conv2d(channels, channels, 3, padding=1, groups=groups)
        self.fuse = nn.Conv2d((n_steps + 1) * channels, channels, 3, padding=1, groups=groups)
        self.attention = ContrastChannelAttention(channels, reduction)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        distilled, y = [], x
        for point, group_conv in zip(self.points, self.group_convs):
            d = F.leaky_relu(point(y), self.negative_slope)
            distilled.append(d)
            y = F.leaky_relu(group_conv(d) + y, self.negative_slope)
        distilled.append(F.leaky_relu(self.last(y), self.negative_slope))
        return self.attention(self.fuse(torch.cat(distilled, dim=1)))


class DenseShortcuts(nn.Module):
    """Weighted dense shortcuts around a chain of modules: ``x_{j+1} = f_j(x_j) + sum_{i<=j} w_i^j x_i``
    with learnable scalars ``w_i^j`` (``weights[j][i]``), initialised to ``diagonal`` for i = j and
    0 for i < j."""

    def __init__(self, modules: Iterable[nn.Module], diagonal: float = 1.0) -> None:
        super().__init__()
        self.body = nn.ModuleList(modules)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.cat([torch.zeros(j), torch.full((1,), float(diagonal))])) for j in range(len(self.body))
        )

    def forward(self, x: Tensor) -> Tensor:
        inputs = [x]
        for f, w in zip(self.body, self.weights):
            y = f(inputs[-1])
            for i, xi in enumerate(inputs):
                y = y + w[i].to(xi.dtype) * xi
            inputs.append(y)
        return inputs[-1]


class ANRB(nn.Module):
    """Asymmetric non-local residual block (eqs 7-10): single-channel query / key / value, keys and
    values sampled by pyramid average pooling (S = sum of size^2 samples), residual output."""

    def __init__(self, channels: int, pool_sizes: Sequence[int] = (1, 3, 6, 8)) -> None:
        super().__init__()
        self.pool_sizes = tuple(check_positive_int(s, "pool size") for s in pool_sizes)
        self.query = nn.Conv2d(channels, 1, 1)
        self.key = nn.Conv2d(channels, 1, 1)
        self.value = nn.Conv2d(channels, 1, 1)
        self.out = nn.Conv2d(1, channels, 1)

    def _pyramid(self, x: Tensor) -> Tensor:
        """``(N, 1, H, W)`` -> ``(N, 1, S)``: average-pooled to each size, flattened, concatenated."""
        return torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in self.pool_sizes], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, 1)
        k = self._pyramid(self.key(x))  # (N, 1, S)
        v = self._pyramid(self.value(x)).transpose(1, 2)  # (N, S, 1)
        y = torch.softmax(q @ k, dim=-1) @ v  # (N, HW, 1), eq 9
        return x + self.out(y.transpose(1, 2).reshape(n, 1, h, w))  # eq 10


class GIDRN(nn.Module):
    """G-IDRN super-resolution network (Wang et al., section 2).

    Args:
        scale: upscaling factor, 2, 3 or 4.
        n_feats: feature channels C (72).
        group_channels: channels per group of the group convs, m (8); must divide ``n_feats``.
        n_groups: G-IDRGs (3).
        n_blocks: G-IDBs per G-IDRG (3).
        pool_sizes: ANRB pyramid pooling sizes ((1, 3, 6, 8): S = 110, the paper's best, table 2).
        negative_slope: LeakyReLU slope (0.05).
        reduction: CCA reduction ratio (16, IMDN's).

    Shape:
        - Input: ``(N, 3, h, w)`` in [0, 1].
        - Output: ``(N, 3, scale*h, scale*w)``.

    Example:
        >>> model = GIDRN(scale=3, n_feats=16, n_groups=1, n_blocks=2)
        >>> model(torch.rand(1, 3, 9, 7)).shape
        torch.Size([1, 3, 27, 21])
    """

    def __init__(
        self,
        scale: int = 4,
        n_feats: int = 72,
        group_channels: int = 8,
        n_groups: int = 3,
        n_blocks: int = 3,
        pool_sizes: Sequence[int] = (1, 3, 6, 8),
        negative_slope: float = 0.05,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        check_positive_int(n_feats, "n_feats")
        check_positive_int(group_channels, "group_channels")
        if n_feats % group_channels:
            raise ValueError(
                f"group_channels must divide n_feats, got n_feats={n_feats}, group_channels={group_channels}"
            )
        check_positive_int(n_groups, "n_groups")
        check_positive_int(n_blocks, "n_blocks")
        negative_slope = check_positive_float(negative_slope, "negative_slope")
        self.head = conv3x3(3, n_feats)
        groups = (
            DenseShortcuts(GIDB(n_feats, group_channels, 3, negative_slope, reduction) for _ in range(n_blocks))
            for _ in range(n_groups)
        )
        self.body = DenseShortcuts(groups, diagonal=0.0)
        self.non_local = ANRB(n_feats, pool_sizes)
        self.upsample = PixelShuffleDirect(scale, n_feats, 3)
        self.coarse = PixelShuffleDirect(scale, 3, 3, kernel_size=5)

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x)
        fine = self.upsample(self.non_local(self.body(self.head(x))))
        return fine + self.coarse(x)


def gidrn(scale: int = 4, **kwargs) -> GIDRN:
    """G-IDRN: 3 G-IDRGs of 3 G-IDBs, C = 72, groups of 8 channels, ANRB with S = 110."""
    return GIDRN(scale, **kwargs)
