"""MATLAB-compatible bicubic resize and 8-bit rounding: how the SR literature makes its LR images.

* :func:`imresize`: MATLAB's ``imresize(img, scale, 'bicubic')`` (Keys cubic with a = -0.5, the
  kernel widened by ``1/scale`` when downscaling (antialiasing), symmetric borders, output size
  ``ceil(scale * size)``). This is how the papers make their LR images (``F.interpolate`` differs by
  up to 12/255 near the borders).
* :func:`quantize`: rounding to 8-bit levels, as saving to PNG (or MATLAB's ``uint8``) would:
  ``quantize(imresize(hr, 1 / scale))`` is the 8-bit LR image, and the evaluation protocol
  (:mod:`contrastive_sr_losses.metrics`) scores images rounded this way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_floating, check_positive_float

__all__ = ["imresize", "quantize"]


def _cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return torch.where(ax <= 1.0, inner, torch.where(ax <= 2.0, outer, torch.zeros_like(ax)))


def _contributions(
    in_len: int, out_len: int, scale: float, antialiasing: bool, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Input indices ``(out_len, P)`` and normalised weights ``(out_len, P)`` of one dimension.

    MATLAB's ``contributions``: output pixel x (1-based) sits at ``u = x / scale + (1 - 1 / scale) / 2``
    in input coordinates; the pixels ``floor(u - width / 2) + 0 .. P - 1`` contribute with weight
    ``h(u - index)``, rows normalised to sum 1, indices outside [1, in_len] mirrored (the border pixel
    repeated: ``... 2 1 | 1 2 ... n | n n-1 ...``).

    They depend on the sizes only, so they are computed on the CPU and then moved to ``device``:
    no device sync on CUDA, and ``meta`` tensors (shape inference) work.
    """
    index, weight = _contributions_cpu(in_len, out_len, scale, antialiasing)
    return index.to(device), weight.to(device)


def _contributions_cpu(in_len: int, out_len: int, scale: float, antialiasing: bool) -> tuple[Tensor, Tensor]:
    device = torch.device("cpu")
    kernel_width = 4.0
    if scale < 1.0 and antialiasing:  # widen the kernel: interpolate and low-pass at once

        def kernel(t: Tensor) -> Tensor:
            return scale * _cubic(scale * t)

        kernel_width /= scale
    else:
        kernel = _cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64, device=device)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2
    index = left[:, None] + torch.arange(taps, dtype=torch.float64, device=device)[None, :]  # 1-based
    weight = kernel(u[:, None] - index)
    weight = weight / weight.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_len, device=device), torch.arange(in_len - 1, -1, -1, device=device)])
    index = mirror[torch.remainder(index.long() - 1, 2 * in_len)]
    used = (weight != 0).any(dim=0)  # MATLAB drops the columns that are zero for every output pixel
    first, last = int(used.nonzero().min()), int(used.nonzero().max())
    return index[:, first : last + 1], weight[:, first : last + 1]


def _resize_dim(x: Tensor, dim: int, index: Tensor, weight: Tensor) -> Tensor:
    """``out[.., i, ..] = sum_p weight[i, p] * x[.., index[i, p], ..]`` along ``dim``."""
    shape = [1] * x.dim()
    shape[dim] = -1
    out = x.index_select(dim, index[:, 0]) * weight[:, 0].view(shape)
    for p in range(1, index.shape[1]):
        out = out + x.index_select(dim, index[:, p]) * weight[:, p].view(shape)
    return out


def imresize(img: Tensor, scale: float, *, antialiasing: bool = True) -> Tensor:
    """Bicubic resize exactly as MATLAB's ``imresize(img, scale)`` (the SR literature's LR images).

    Keys' cubic kernel (a = -0.5); when ``scale < 1`` and ``antialiasing`` (MATLAB's default) the kernel is
    stretched by ``1 / scale`` (``scale * cubic(scale * t)``, 4 / scale taps wide) so downscaling low-passes the
    image; borders are handled by mirroring with the edge pixel repeated (current MATLAB's ``aux = [1:n,
    n:-1:1]``; releases before the mirror was introduced clamped the index instead, which changes only taps more
    than one pixel beyond the border), weights are normalised per output pixel. Separable: the height is resized
    first, then the width (the order only changes float64 rounding). Computed in float64 and returned in the
    input's dtype, neither clamped nor rounded: call :func:`quantize` to get the 8-bit LR image MATLAB returns
    for ``uint8`` input (MATLAB also rounds between the two passes for ``uint8``; this float version does not,
    like the usual Python ports, which can move a rare pixel by one 8-bit level). Differentiable.

    Args:
        img: float tensor ``(..., C, H, W)`` (any number of leading dimensions, e.g. ``(C, H, W)`` or
            ``(N, C, H, W)``), RGB or any channels, values typically in [0, 1].
        scale: factor > 0 applied to both H and W, e.g. ``1 / 4`` to make x4 LR images or ``4`` to
            upsample them back. Output size ``(ceil(scale * H), ceil(scale * W))``, as MATLAB
            (crop HR images to a multiple of the SR scale first so the LR maps back exactly).
        antialiasing: widen the kernel when downscaling (MATLAB's default ``true``).

    Returns:
        ``(..., C, ceil(scale * H), ceil(scale * W))``, the dtype and device of ``img``.

    Example:
        >>> hr = torch.rand(1, 3, 16, 12)
        >>> lr = imresize(hr, 1 / 4)
        >>> lr.shape, imresize(lr, 4).shape
        (torch.Size([1, 3, 4, 3]), torch.Size([1, 3, 16, 12]))
        >>> imresize(torch.full((3, 5, 5), 0.25), 1 / 2).unique()  # constants are kept
        tensor([0.2500])
    """
    if not isinstance(img, Tensor):
        raise TypeError(f"img must be a torch.Tensor of shape (..., C, H, W), got {type(img).__name__}")
    if img.dim() < 2 or img.shape[-1] == 0 or img.shape[-2] == 0:
        raise ValueError(f"img must have shape (..., H, W) with H, W >= 1, got {tuple(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"img must be a floating-point tensor with values in [0, 1], got {img.dtype}")
    scale = check_positive_float(scale, "scale")
    h, w = img.shape[-2:]
    out_h, out_w = math.ceil(scale * h), math.ceil(scale * w)
    x = img.to(torch.float64)
    for dim, n_in, n_out in ((x.dim() - 2, h, out_h), (x.dim() - 1, w, out_w)):
        index, weight = _contributions(n_in, n_out, scale, antialiasing, img.device)
        x = _resize_dim(x, dim, index, weight)
    return x.to(img.dtype)


def quantize(img: Tensor, value_range: float = 1.0) -> Tensor:
    """Round images in ``[0, value_range]`` to 8-bit levels (clamped), as saving to PNG would; same dtype.

    Also the released PCL code's ``utility.quantize`` (used by :mod:`contrastive_sr_losses.samplers`).
    The rounding has no gradient (zero almost everywhere), as in that code.

    Example:
        >>> quantize(torch.tensor([-0.1, 0.5, 0.75, 1.2])) * 255
        tensor([  0., 128., 191., 255.])
        >>> quantize(torch.tensor([0.5, 254.6]), value_range=255.0)
        tensor([  0., 255.])
    """
    check_floating(img, "img")
    levels = 255.0 / check_positive_float(value_range, "value_range")
    return img.mul(levels).clamp(0.0, 255.0).round().div(levels)
