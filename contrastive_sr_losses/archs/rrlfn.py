"""RRLFN, the re-parameterised residual local feature network (Guo, Zhuang, Li, *An Efficient Dense
Residual Network for Image Super-Resolution Reconstruction*, 2025, section 1, eqs 1-8),
built on RLFN (Kong et al. 2022).

    F0 = conv3x3(x)                                         (eq 1, shallow features)
    Fn = RRLFB_n(F_{n-1})
    SR = PixelShuffle(conv3x3(conv3x3(F_N) + F0))           (eq 1, upsampler = conv + sub-pixel)
    RRLFB: R = RM3(RM2(RM1(F_in))) + F_in;  out = ESA(conv1x1(R))      (eqs 2-3)
    RM (training):  ReLU(conv3x3(x) + conv1x1(x))           (re-parameterisable conv, eq 6)
    RM (inference): ReLU(conv3x3'(x)), the 1x1 kernel added to the centre of the 3x3 one

``model.reparameterize()`` (alias ``fuse()``) merges every RM's branches into one 3x3 convolution in
place (eq 6; with ``branch_norm=True`` each branch's BatchNorm is folded into it first, eqs 7-8). The
fused model computes the same function (to float rounding) in eval mode and is what the paper counts
and times.

Choices where the paper is silent:

- **Width and depth: 48 channels, 6 RRLFBs, ESA with 16 channels** (RLFN's ESA: 1x1 reduce, strided
  3x3, 7x7/3 max-pool, 3x3, bilinear upsampling, 1x1 expand, sigmoid gate). The paper gives neither,
  but these reproduce its published sizes exactly for the fused (inference) network: 454,620
  parameters at x2 (paper 454K) and 470,208 at x4 (paper 470K); 461,115 at x3 (not published).
  The training-time network has 18 x (48*48 + 48) = 42,336 more (the 1x1 branches).
- **Branches: a 3x3 and a 1x1 conv, no BatchNorm by default.** The text names "a 3x3 kernel, a 1x1
  conv and ReLU" per RM and gives the BN folding (eqs 7-8) only "for convs with a BN layer"; BN is
  usually harmful in SR networks (EDSR), so ``branch_norm=False`` is the default and True adds one
  BatchNorm per branch.
- **Activation: ReLU**, as the text says (RLFN's code uses LeakyReLU 0.05).
- **Small inputs**: the ESA's 7x7 max-pool needs an LR input of at least 15x15 pixels; on smaller
  inputs the pooling window shrinks to the strided map's size instead of failing (3x3 is the
  smallest input, for the strided conv).
- No mean shift: the network works on [0, 1] data as RLFN does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_positive_int
from .common import PixelShuffleDirect, check_network_input, check_scale, conv3x3

__all__ = ["RRLFN", "RRLFB", "RepConv", "ESA", "rrlfn"]


def _fold_batch_norm(weight: Tensor, bias: Tensor, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """``BN(conv(x))`` as one conv (eq 8): with s = gamma / sqrt(var + eps), W' = s W and
    b' = s (b - mean) + beta."""
    std = (bn.running_var + bn.eps).sqrt()
    gamma = bn.weight / std
    return weight * gamma.view(-1, 1, 1, 1), (bias - bn.running_mean) * gamma + bn.bias


class RepConv(nn.Module):
    """Re-parameterisable 3x3 convolution: a 3x3 and a 1x1 branch in parallel while training (each
    optionally followed by BatchNorm), one 3x3 conv after :meth:`reparameterize` (eqs 6-8)."""

    def __init__(self, in_channels: int, out_channels: int, branch_norm: bool = False) -> None:
        super().__init__()
        self.conv3 = conv3x3(in_channels, out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1)
        self.norm3: nn.Module = nn.BatchNorm2d(out_channels) if branch_norm else nn.Identity()
        self.norm1: nn.Module = nn.BatchNorm2d(out_channels) if branch_norm else nn.Identity()
        self.fused: nn.Conv2d | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.norm3(self.conv3(x)) + self.norm1(self.conv1(x))

    def _branch(self, conv: nn.Conv2d, norm: nn.Module) -> tuple[Tensor, Tensor]:
        weight = conv.weight
        bias = conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])
        if isinstance(norm, nn.BatchNorm2d):
            return _fold_batch_norm(weight, bias, norm)
        return weight, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by one 3x3 conv computing their sum (BatchNorm with its running
        statistics, i.e. eval-mode behaviour). Idempotent."""
        if self.fused is not None:
            return
        w3, b3 = self._branch(self.conv3, self.norm3)
        w1, b1 = self._branch(self.conv1, self.norm1)
        fused = conv3x3(self.conv3.in_channels, self.conv3.out_channels).to(w3.device, w3.dtype)
        fused.weight.copy_(w3 + F.pad(w1, (1, 1, 1, 1)))  # a 1x1 kernel is a 3x3 kernel with zeros around
        fused.bias.copy_(b3 + b1)
        self.fused = fused
        del self.conv3, self.conv1, self.norm3, self.norm1


class ESA(nn.Module):
    """Enhanced spatial attention (RLFN's variant): a sigmoid gate computed from a strided, max-pooled
    and re-upsampled view of the features, multiplied into them."""

    def __init__(self, channels: int, esa_channels: int = 16) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, esa_channels, 1)
        self.skip = nn.Conv2d(esa_channels, esa_channels, 1)
        self.down = nn.Conv2d(esa_channels, esa_channels, 3, stride=2)
        self.conv = conv3x3(esa_channels, esa_channels)
        self.expand = nn.Conv2d(esa_channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        reduced = self.reduce(x)
        y = self.down(reduced)
        kernel = min(7, y.shape[-2], y.shape[-1])
        y = self.conv(F.max_pool2d(y, kernel_size=kernel, stride=3))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.expand(y + self.skip(reduced)))


class RRLFB(nn.Module):
    """Re-parameterised residual local feature block (eqs 2-3): three ReLU(RepConv) steps, a residual
    connection, a 1x1 conv and ESA."""

    def __init__(self, channels: int, esa_channels: int = 16, n_convs: int = 3, branch_norm: bool = False) -> None:
        super().__init__()
        check_positive_int(n_convs, "n_convs")
        self.convs = nn.ModuleList(RepConv(channels, channels, branch_norm) for _ in range(n_convs))
        self.mix = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(channels, esa_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for conv in self.convs:
            y = F.relu(conv(y))
        return self.esa(self.mix(y + x))


class RRLFN(nn.Module):
    """RRLFN super-resolution network (Guo et al., section 1).

    Args:
        scale: upscaling factor, 2, 3 or 4.
        n_blocks: RRLFBs (6; not stated, see the module docstring).
        n_feats: feature channels (48).
        esa_channels: channels inside ESA (16).
        branch_norm: add a BatchNorm to each training-time branch of the re-parameterisable convs
            (folded away by :meth:`reparameterize`, eqs 7-8). Default False.

    Shape:
        - Input: ``(N, 3, h, w)`` in [0, 1].
        - Output: ``(N, 3, scale*h, scale*w)``.

    Example:
        >>> model = RRLFN(scale=2, n_blocks=2, n_feats=16, esa_channels=8).eval()
        >>> x = torch.rand(1, 3, 16, 16)
        >>> y = model(x)
        >>> fused = model.reparameterize()  # in place; returns the model
        >>> torch.allclose(fused(x), y, atol=1e-5)
        True
    """

    def __init__(
        self,
        scale: int = 4,
        n_blocks: int = 6,
        n_feats: int = 48,
        esa_channels: int = 16,
        branch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        check_positive_int(n_blocks, "n_blocks")
        check_positive_int(n_feats, "n_feats")
        check_positive_int(esa_channels, "esa_channels")
        self.head = conv3x3(3, n_feats)
        self.blocks = nn.Sequential(*[RRLFB(n_feats, esa_channels, branch_norm=branch_norm) for _ in range(n_blocks)])
        self.body_conv = conv3x3(n_feats, n_feats)
        self.upsample = PixelShuffleDirect(scale, n_feats, 3)

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x)
        if min(x.shape[-2:]) < 3:
            raise ValueError(
                f"RRLFN needs inputs of at least 3x3 pixels (ESA's strided 3x3 conv), got {tuple(x.shape)}"
            )
        features = self.head(x)
        return self.upsample(self.body_conv(self.blocks(features)) + features)

    @property
    def is_reparameterized(self) -> bool:
        return all(m.fused is not None for m in self.modules() if isinstance(m, RepConv))

    def reparameterize(self) -> RRLFN:
        """Merge every re-parameterisable conv's branches into one 3x3 conv, in place, and return the
        model. Call it on a trained model in eval mode: the fused network computes what the eval-mode
        unfused one did (BatchNorm branches use their running statistics). Idempotent."""
        for module in self.modules():
            if isinstance(module, RepConv):
                module.reparameterize()
        return self

    fuse = reparameterize


def rrlfn(scale: int = 4, **kwargs) -> RRLFN:
    """RRLFN: 6 RRLFBs, 48 channels, ESA 16 (454,620 / 470,208 parameters at x2 / x4 once fused)."""
    return RRLFN(scale, **kwargs)
