"""SwinIR-light (Liang, Cao, Sun, Zhang, Van Gool, Timofte, *SwinIR: Image Restoration Using Swin
Transformer*, ICCVW 2021), the lightweight SR configuration.

    x -> MeanShift -> conv3x3 (shallow features F0)
      -> LayerNorm -> RSTB x 4 -> LayerNorm -> conv3x3, + F0
      -> conv3x3 (60 -> 3 * scale**2) -> PixelShuffle ("pixelshuffledirect") -> MeanShift^-1
    RSTB (residual Swin Transformer block) = x + conv3x3(SwinLayer x 6 (x))
    SwinLayer = x + Attn(LN(x)); x + MLP(LN(x)), attention inside 8x8 windows, every second layer
                with windows shifted by 4 pixels (cyclic shift + attention mask)

Light configuration: embed_dim 60, depths (6, 6, 6, 6), heads (6, 6, 6, 6), window 8, mlp_ratio 2,
qkv bias, stochastic depth 0.1, mean shift (0.4488, 0.4371, 0.4040) on [0, 1] data (img_range 1).

Why our own implementation and not spandrel's: spandrel (MIT, ships SwinIR as a plain module) depends
on torchvision, which cannot be imported beside every torch build (not beside this project's CPU
build, for one); an optional extra that cannot be installed next to the core package's torch would
leave the baseline untestable in the core test suite and add a heavy dependency for ~300 lines.
This module is written from the paper's description, with the reference code's conventions where the
paper is silent (LayerNorm placement, -100 attention mask, trunc-normal init std 0.02 of the linear
layers and of the relative-position-bias tables, reflect padding of the input to a multiple of the
window size, cropped off the output).

Parameter counts (scale 2 / 3 / 4): 910,152 / 918,267 / 929,628 parameters. Of these, 32,400 are the
24 relative-position-bias tables ((2*8-1)**2 x 6 heads each); without them 877,752 / 885,867 /
897,228, which are the paper's 878K / 886K / 897K (the tables are parameters stored directly on the
attention modules, which module-based counters such as thop skip). The relative position index and
the attention masks are buffers / computed per input size, not parameters.

The shifted-window attention mask is computed for the actual (padded) input size at every forward,
so any input size works, not only the training patch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_positive_float, check_positive_int
from .common import DIV2K_RGB_MEAN, MeanShift, PixelShuffleDirect, check_network_input, check_scale, conv3x3

__all__ = ["SwinIR", "WindowAttention", "SwinLayer", "RSTB", "swinir_light", "shifted_window_mask"]


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(N, H, W, C)`` -> ``(N * H/window * W/window, window*window, C)``, windows in raster order."""
    n, h, w, c = x.shape
    x = x.view(n, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(N * nW, window*window, C)`` -> ``(N, H, W, C)``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: torch.device | None = None) -> Tensor:
    """Additive attention mask ``(nW, window*window, window*window)`` for windows shifted by ``shift``.

    After the cyclic shift, a window at the bottom or right border holds pixels from up to four
    regions of the unshifted image that are not neighbours; pairs from different regions get -100
    (softmax weight ~e^-100), pairs from one region 0.
    """
    region = torch.zeros(1, h, w, 1, device=device)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for ws in bounds:
            region[:, hs, ws, :] = label
            label += 1
    labels = window_partition(region, window).squeeze(-1)  # (nW, window*window)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape, device=device).masked_fill(different, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``window x window`` windows with a learned relative position
    bias: ``softmax(q k^T / sqrt(d) + B + mask) v`` (SwinIR eq 5, after Swin Transformer).

    ``relative_position_bias_table`` ((2w-1)^2, heads) is a parameter; ``relative_position_index``
    (w^2, w^2), which picks the table row of each query/key pair, is a fixed buffer.
    """

    relative_position_index: Tensor

    def __init__(self, dim: int, window: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim must be divisible by the number of heads, got {dim} and {heads}")
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, w^2, w^2), each in [0, 2w-2]
        self.register_buffer("relative_position_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, t, c = x.shape  # b = N * nW windows of t = w^2 tokens
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (b, heads, t, t)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(t, t, self.heads).permute(2, 0, 1).to(attn.dtype)
        if mask is not None:
            n_windows = mask.shape[0]
            attn = attn.view(b // n_windows, n_windows, self.heads, t, t) + mask[None, :, None].to(attn.dtype)
            attn = attn.view(b, self.heads, t, t)
        out = attn.softmax(dim=-1) @ v  # (b, heads, t, d)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p`` and
    scale the kept ones by 1/(1-p); the identity in eval mode."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class SwinLayer(nn.Module):
    """One Swin Transformer layer on ``(N, H*W, C)`` tokens of an ``H x W`` map (H, W multiples of the
    window): (shifted-)window attention and an MLP, each pre-LayerNorm with a residual."""

    def __init__(
        self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float = 2.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor | None) -> Tensor:
        h, w = size
        n, _, c = x.shape
        y = self.norm1(x).view(n, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), mask if self.shift else None)
        y = window_reverse(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(n, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RSTB(nn.Module):
    """Residual Swin Transformer block: ``depth`` Swin layers (every second one shifted), a conv3x3 on
    the token map reshaped to an image, and a residual connection (SwinIR eq 3-4)."""

    def __init__(
        self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, drop_path: Sequence[float]
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SwinLayer(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, drop_path[i])
            for i in range(depth)
        )
        self.conv = conv3x3(dim, dim)

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor) -> Tensor:
        y = x
        for layer in self.layers:
            y = layer(y, size, mask)
        n, _, c = x.shape
        y = self.conv(y.transpose(1, 2).reshape(n, c, *size))
        return x + y.flatten(2).transpose(1, 2)


class SwinIR(nn.Module):
    """SwinIR for classical SR with the pixel-shuffle-direct upsampler (the lightweight variant).

    Args:
        scale: upscaling factor, 2, 3 or 4.
        embed_dim: token channels (60 for SwinIR-light).
        depths: Swin layers per RSTB ((6, 6, 6, 6)).
        heads: attention heads per RSTB ((6, 6, 6, 6)).
        window: attention window side (8).
        mlp_ratio: MLP hidden width / embed_dim (2).
        drop_path_rate: stochastic-depth rate, linearly increasing from 0 to it over the layers (0.1).
        img_range: internal value range (1: SwinIR works on [0, 1] data).
        rgb_mean: mean subtracted from the input, in [0, 1] (DIV2K's).

    Shape:
        - Input: ``(N, 3, h, w)`` in [0, 1], any ``h, w`` (reflect-padded at the bottom / right to
          multiples of ``window`` inside, replicate-padded where h or w is too small to reflect, the
          padding cropped off the output).
        - Output: ``(N, 3, scale*h, scale*w)``.

    Example:
        >>> model = SwinIR(scale=2, embed_dim=12, depths=(2,), heads=(2,), window=4)
        >>> model(torch.rand(1, 3, 6, 10)).shape
        torch.Size([1, 3, 12, 20])
    """

    def __init__(
        self,
        scale: int = 4,
        embed_dim: int = 60,
        depths: Sequence[int] = (6, 6, 6, 6),
        heads: Sequence[int] = (6, 6, 6, 6),
        window: int = 8,
        mlp_ratio: float = 2.0,
        drop_path_rate: float = 0.1,
        img_range: float = 1.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        check_positive_int(embed_dim, "embed_dim")
        self.window = check_positive_int(window, "window", minimum=2)
        if len(depths) != len(heads) or not depths:
            raise ValueError(f"depths and heads must be non-empty and of one length, got {depths} and {heads}")
        check_positive_float(mlp_ratio, "mlp_ratio")
        if int(embed_dim * mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio must leave an MLP of >= 1 unit (embed_dim {embed_dim} x mlp_ratio), got {mlp_ratio}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.mean_shift = MeanShift(rgb_mean, img_range)
        self.conv_first = conv3x3(3, embed_dim)
        self.embed_norm = nn.LayerNorm(embed_dim)
        n_layers = sum(depths)
        rates = [drop_path_rate * i / max(1, n_layers - 1) for i in range(n_layers)]
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.blocks = nn.ModuleList(
            RSTB(embed_dim, d, h, window, mlp_ratio, rates[s : s + d]) for d, h, s in zip(depths, heads, starts)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = conv3x3(embed_dim, embed_dim)
        self.upsample = PixelShuffleDirect(scale, embed_dim, 3)
        self.apply(_init_transformer_weights)

    def forward(self, x: Tensor) -> Tensor:
        check_network_input(x)
        h, w = x.shape[-2:]
        x = self.conv_first(_pad_to_multiple(self.mean_shift.normalize(x), self.window))
        size = (x.shape[-2], x.shape[-1])
        mask = shifted_window_mask(*size, self.window, self.window // 2, device=x.device)
        tokens = self.embed_norm(x.flatten(2).transpose(1, 2))
        for block in self.blocks:
            tokens = block(tokens, size, mask)
        tokens = self.norm(tokens)
        body = tokens.transpose(1, 2).reshape(x.shape)
        x = x + self.conv_after_body(body)
        out = self.mean_shift.restore(self.upsample(x))
        return out[..., : h * self.scale, : w * self.scale]


def _pad_to_multiple(x: Tensor, window: int) -> Tensor:
    """Pad H and W at the bottom / right up to multiples of ``window``: reflect, as the reference code,
    or replicate where the image is too small to reflect (padding >= size; the reference fails there)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % window, (-w) % window
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _init_transformer_weights(module: nn.Module) -> None:
    """The reference initialisation: linear layers trunc-normal(std 0.02) with zero bias, LayerNorms
    weight 1 / bias 0; convolutions keep PyTorch's default."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def swinir_light(scale: int = 4, **kwargs) -> SwinIR:
    """SwinIR-light: embed_dim 60, depths (6, 6, 6, 6), heads (6, 6, 6, 6), window 8, mlp_ratio 2."""
    return SwinIR(scale, **kwargs)
