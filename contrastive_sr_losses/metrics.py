"""Evaluation protocol of the SR literature: MATLAB bicubic resize, PSNR-Y, SSIM-Y and LPIPS.

* :func:`imresize`: MATLAB's ``imresize(img, scale, 'bicubic')`` (Keys cubic with a = -0.5, the
  kernel widened by ``1/scale`` when downscaling (antialiasing), symmetric borders, output size
  ``ceil(scale * size)``). This is how the papers make their LR images (``F.interpolate`` differs by
  up to 12/255 near the borders).
* :func:`psnr_y`, :func:`ssim_y`: on the BT.601 Y channel (``Y = 16 + 65.481 R + 128.553 G +
  24.966 B``, peak 255) of both images rounded to 8 bits, after cropping ``crop_border`` pixels
  (``= scale`` by convention) at each border, in float64, one value per image. SSIM is Wang et al.'s
  ``ssim_index``: 11x11 Gaussian window with sigma 1.5, valid region only, K1 = 0.01, K2 = 0.03,
  range 255, no downsampling. Average per image, then over images. A one-channel (grayscale) image
  is its own luma: its 8-bit levels 0..255 are compared as they are, as MATLAB's evaluation scripts
  and BasicSR score a 1-channel image (Set14's ``bridge.png``). ``round_y=True`` rounds Y to 8 bits
  first, as MATLAB's ``rgb2ycbcr`` does for ``uint8`` images (the RCAN / EDSR ``.m`` scripts).
* :class:`LPIPS` / :func:`lpips`: Zhang et al.'s learned perceptual distance (the ``lpips``
  package's v0.1 calibrated heads on ImageNet AlexNet / VGG16 / SqueezeNet-1.1 features), computed
  here without importing ``lpips`` or ``torchvision``; it reads the weight files from disk and never
  downloads anything.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .serialization import load_tensors_file
from ._validation import check_choice, check_floating, check_image, check_image_pair, check_positive_float
from .functional.color import rgb_to_y
from .functional.filters import gaussian_kernel1d

__all__ = ["imresize", "quantize", "psnr_y", "ssim_y", "ReferenceY", "LPIPS", "lpips", "LPIPS_NETS", "LPIPS_MIN_SIZE"]


# ----------------------------------------------------------------------------------------------------
# MATLAB-compatible bicubic resize
# ----------------------------------------------------------------------------------------------------


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

    Keys' cubic kernel (a = -0.5); when ``scale < 1`` and ``antialiasing`` (MATLAB's default) the kernel
    is stretched by ``1 / scale`` (``scale * cubic(scale * t)``, 4 / scale taps wide) so downscaling
    low-passes the image; borders are handled by mirroring with the edge pixel repeated (current MATLAB's
    ``aux = [1:n, n:-1:1]``; releases before the mirror was introduced clamped the index instead, which
    changes only taps more than one pixel beyond the border), weights are normalised per output pixel. Separable: the height is resized first, then the width (the order
    only changes float64 rounding). Computed in float64 and returned in the input's dtype, neither
    clamped nor rounded: call :func:`quantize` to get the 8-bit LR image MATLAB returns for ``uint8``
    input (MATLAB also rounds between the two passes for ``uint8``; this float version does not,
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


# ----------------------------------------------------------------------------------------------------
# PSNR-Y and SSIM-Y
# ----------------------------------------------------------------------------------------------------

SSIM_WINDOW = 11  # Wang et al.'s ssim_index: 11x11 Gaussian window, sigma 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def quantize(img: Tensor) -> Tensor:
    """Round images in [0, 1] to 8-bit levels (clamped), as saving to PNG would; same dtype.

    Example:
        >>> quantize(torch.tensor([-0.1, 0.5, 0.75, 1.2])) * 255
        tensor([  0., 128., 191., 255.])
    """
    check_floating(img, "img")
    return img.clamp(0.0, 1.0).mul_(255.0).round_().div_(255.0)  # one new tensor, then in place


def _check_crop(shape: torch.Size, crop_border: int, min_size: int) -> None:
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an int >= 0, got {crop_border!r}")
    h, w = shape[-2:]
    if min(h, w) - 2 * crop_border < min_size:
        if min_size == 1:
            raise ValueError(f"crop_border={crop_border} leaves no pixels of a {h}x{w} image")
        raise ValueError(
            f"ssim_y needs at least {min_size}x{min_size} pixels after cropping crop_border={crop_border} "
            f"at each border, got a {h}x{w} image"
        )


def _y_channel(img: Tensor, crop_border: int, round_y: bool = False) -> Tensor:
    """8-bit rounded, cropped float64 Y ``(N, 1, H', W')``: BT.601 luma in [16, 235] of RGB, the levels
    0..255 of a one-channel image; rounded to integers with ``round_y`` (MATLAB uint8)."""
    if crop_border:  # crop first: every step is per pixel
        img = img[..., crop_border:-crop_border, crop_border:-crop_border]
    img = quantize(img.to(torch.float64))
    y = rgb_to_y(img) if img.shape[1] == 3 else img * 255.0
    return y.round_() if round_y else y


def _check_y_input(x: Tensor, names: str) -> None:
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"{names} must be RGB of shape (N, 3, H, W) or one-channel Y / grayscale (N, 1, H, W), got {tuple(x.shape)}"
        )


_SSIM_TILE_ROWS = 32  # rows of the SSIM map computed at a time: their working set stays in cache


def _ssim_local_mean(x: Tensor, g: list[float]) -> Tensor:
    """Mean under the Gaussian window ``g (x) g`` over the *valid* region, ``(..., H, W)`` ->
    ``(..., H - k + 1, W - k + 1)``: two 1-D passes (the window is separable), each a sum of k
    shifted slices accumulated in place, in the input's dtype (2k multiply-adds per pixel, not k^2)."""
    k = len(g)
    h, w = x.shape[-2:]
    rows = x[..., 0 : h - k + 1, :] * g[0]
    for i in range(1, k):
        rows.add_(x[..., i : h - k + 1 + i, :], alpha=g[i])
    out = rows[..., 0 : w - k + 1] * g[0]
    for i in range(1, k):
        out.add_(rows[..., i : w - k + 1 + i], alpha=g[i])
    return out


def _ssim_of_y(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM map of float64 Y channels ``(N, 1, H, W)`` (range 255), ``(N,)``.

    Only four local means are needed, ``mu_x``, ``mu_y``, ``E[x^2 + y^2]`` and ``E[xy]`` (the two
    variances enter the formula only as their sum), and the map is built ``_SSIM_TILE_ROWS`` rows at a
    time so that the filter passes run on data in cache. Same values as five 2-D 11x11 convolutions
    to float64 round-off.
    """
    g = gaussian_kernel1d(SSIM_SIGMA, SSIM_WINDOW, dtype=torch.float64).tolist()
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    halo = SSIM_WINDOW - 1
    out_rows = x.shape[-2] - halo
    total = x.new_zeros(x.shape[0])
    for top in range(0, out_rows, _SSIM_TILE_ROWS):
        xs = x[:, 0, top : min(top + _SSIM_TILE_ROWS, out_rows) + halo]
        ys = y[:, 0, top : min(top + _SSIM_TILE_ROWS, out_rows) + halo]
        mu_x, mu_y, e_sq, e_xy = _ssim_local_mean(torch.stack([xs, ys, xs * xs + ys * ys, xs * ys], 1), g).unbind(1)
        mu_xy = mu_x * mu_y
        mu_sq = mu_x * mu_x + mu_y * mu_y
        ssim_map = ((2 * mu_xy + c1) * (2 * (e_xy - mu_xy) + c2)) / ((mu_sq + c1) * (e_sq - mu_sq + c2))
        total += ssim_map.sum(dim=(1, 2))
    return total / (out_rows * (x.shape[-1] - halo))


class ReferenceY:
    """The HR side of :func:`psnr_y` and :func:`ssim_y`, prepared once for many SR outputs.

    Evaluating several methods (bicubic, checkpoints) on one test image recomputes nothing of the HR
    image: its 8-bit Y channel is made once, on construction. ``ReferenceY(hr, c).psnr(sr)``
    equals ``psnr_y(sr, hr, c)`` exactly (``psnr_y`` is computed this way), likewise ``ssim``.

    Args:
        hr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        crop_border: pixels removed at each border before comparing (use the SR scale).
        round_y: round Y to 8 bits (MATLAB ``rgb2ycbcr`` on ``uint8``), see :func:`ssim_y`.

    Example:
        >>> hr = torch.rand(1, 3, 32, 32)
        >>> ref = ReferenceY(hr, crop_border=2)
        >>> sr = (hr + 0.05).clamp(0, 1)
        >>> bool(ref.psnr(sr) == psnr_y(sr, hr, crop_border=2)), bool(ref.ssim(sr) == ssim_y(sr, hr, crop_border=2))
        (True, True)
    """

    def __init__(self, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> None:
        check_image(hr, "hr")
        _check_y_input(hr, "hr")
        if not isinstance(round_y, bool):
            raise TypeError(f"round_y must be a bool, got {type(round_y).__name__}")
        _check_crop(hr.shape, crop_border, 1)
        self.hr = hr
        self.crop_border = crop_border
        self.round_y = round_y
        self.y = _y_channel(hr, crop_border, round_y)

    def _y_of(self, sr: Tensor, min_size: int = 1) -> Tensor:
        check_image_pair(sr, self.hr)
        _check_crop(sr.shape, self.crop_border, min_size)
        return _y_channel(sr, self.crop_border, self.round_y)

    def psnr(self, sr: Tensor) -> Tensor:
        """``(N,)`` float64 PSNR-Y (dB) of ``sr`` against the prepared HR image; ``inf`` if identical."""
        mse = (self._y_of(sr) - self.y).pow(2).mean(dim=(1, 2, 3))
        return 10.0 * torch.log10(255.0**2 / mse)

    def ssim(self, sr: Tensor) -> Tensor:
        """``(N,)`` float64 SSIM-Y of ``sr`` against the prepared HR image; 1 if identical."""
        return _ssim_of_y(self._y_of(sr, min_size=SSIM_WINDOW), self.y)


def psnr_y(sr: Tensor, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> Tensor:
    """Per-image PSNR (dB) on the BT.601 Y channel, the SR benchmark convention.

    Both images are rounded to 8 bits, converted to Y in [16, 235] (peak 255), cropped by
    ``crop_border`` pixels on each side, and compared in float64. One-channel images are their own Y
    (levels 0..255), as grayscale test images are scored in the literature. To score several outputs
    against one HR image, :class:`ReferenceY` prepares the HR side once.

    Args:
        sr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        hr: same shape as ``sr``.
        crop_border: pixels removed at each border before comparing (use the SR scale).
        round_y: round Y to 8 bits before comparing, as MATLAB's ``rgb2ycbcr`` on ``uint8`` images
            (the RCAN / EDSR MATLAB scripts). Default False: the float Y of BasicSR's
            ``calculate_psnr(test_y_channel=True)``.

    Returns:
        ``(N,)`` float64 tensor; ``inf`` for identical images.

    Example:
        >>> hr = torch.full((1, 3, 8, 8), 0.5)
        >>> psnr_y(hr, hr).item()
        inf
    """
    check_image_pair(sr, hr)
    _check_y_input(sr, "sr and hr")
    return ReferenceY(hr, crop_border, round_y=round_y).psnr(sr)


def ssim_y(sr: Tensor, hr: Tensor, crop_border: int = 0, *, round_y: bool = False) -> Tensor:
    """Per-image SSIM on the BT.601 Y channel (Wang et al. 2004, as the SR literature computes it).

    Both images are rounded to 8 bits, converted to Y (range 255), cropped by ``crop_border`` pixels
    on each side; then, in float64, local means, variances and covariance are taken with an 11x11
    Gaussian window (sigma 1.5) over the *valid* region only (no padding: the SSIM map is 10 pixels
    smaller in each direction) and ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)
    (s_x^2 + s_y^2 + C2))`` with ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2`` is averaged over the
    map. No downsampling (unlike MATLAB's later ``ssim`` function). The window is applied as two 1-D
    passes (it is separable), a block of rows at a time; :class:`ReferenceY` prepares the HR side
    once for several outputs.

    One-channel images are their own Y (levels 0..255, range 255).

    Args:
        sr: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` grayscale, in [0, 1].
        hr: same shape as ``sr``.
        crop_border: pixels removed at each border before comparing (use the SR scale); at least
            11x11 pixels must remain.
        round_y: round Y to 8 bits first, as MATLAB's ``rgb2ycbcr`` on ``uint8`` images (the RCAN /
            EDSR MATLAB scripts). Default False: BasicSR's ``calculate_ssim(test_y_channel=True)``,
            which this equals. On the bicubic baselines (Set5, Set14, B100, x2-x4) the default reads
            0.0004-0.0010 above the published SSIM and ``round_y=True`` within 0.0004 of it (README,
            evaluation protocol); neither reproduces the tables to the fourth decimal.

    Returns:
        ``(N,)`` float64 tensor, 1 for identical images.

    Example:
        >>> hr = torch.rand(2, 3, 24, 24)
        >>> ssim_y(hr, hr, crop_border=2)
        tensor([1., 1.], dtype=torch.float64)
    """
    check_image_pair(sr, hr)
    _check_y_input(sr, "sr and hr")
    _check_crop(sr.shape, crop_border, SSIM_WINDOW)
    return ReferenceY(hr, crop_border, round_y=round_y).ssim(sr)


# ----------------------------------------------------------------------------------------------------
# LPIPS
# ----------------------------------------------------------------------------------------------------

LPIPS_NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
#: Smallest height and width each LPIPS backbone's convolutions and poolings accept.
LPIPS_MIN_SIZE: dict[str, int] = {"alex": 31, "vgg": 16, "squeeze": 17}

# torchvision's file names for the ImageNet weights the lpips package builds on (what
# torch.hub would have downloaded into <torch.hub.get_dir()>/checkpoints/).
_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
# lpips' ScalingLayer: its inputs in [-1, 1] are mapped with (x - shift) / scale.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


class _Fire(nn.Module):
    """SqueezeNet's Fire module (torchvision's attribute names, so its state dict loads as is)."""

    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], dim=1)


def _features(net: str) -> tuple[nn.Sequential, tuple[int, ...], tuple[int, ...]]:
    """torchvision's ``features`` stack of ``net``, the indices after which lpips taps it, channels."""
    relu, pool = nn.ReLU, nn.MaxPool2d
    if net == "squeeze":  # squeezenet1_1
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=2), relu(), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(64, 16, 64, 64), _Fire(128, 16, 64, 64), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(128, 32, 128, 128), _Fire(256, 32, 128, 128), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(256, 48, 192, 192), _Fire(384, 48, 192, 192)]
        layers += [_Fire(384, 64, 256, 256), _Fire(512, 64, 256, 256)]
        return nn.Sequential(*layers), (2, 5, 8, 10, 11, 12, 13), (64, 128, 256, 384, 384, 512, 512)
    if net == "alex":
        layers = [nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(), pool(3, 2)]
        layers += [nn.Conv2d(64, 192, 5, padding=2), relu(), pool(3, 2)]
        layers += [nn.Conv2d(192, 384, 3, padding=1), relu(), nn.Conv2d(384, 256, 3, padding=1), relu()]
        layers += [nn.Conv2d(256, 256, 3, padding=1), relu()]
        return nn.Sequential(*layers), (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)
    layers, channels = [], 3  # vgg16 (configuration D), up to relu5_3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if width == "M":
            layers.append(pool(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), relu()]
            channels = int(width)
    return nn.Sequential(*layers), (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)


def _default_head_path(net: str) -> Path | None:
    """``<lpips package>/weights/v0.1/<net>.pth`` of an installed lpips, found without importing it."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / f"{net}.pth"


def _load_state(path: Path, what: str) -> dict[str, Tensor]:
    state = load_tensors_file(path, what, error=RuntimeError)  # weights_only; truncated / foreign: one line
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RuntimeError(f"the {what} file {path} does not hold a state dict")
    return state


class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al., *The Unreasonable Effectiveness of Deep Features as a Perceptual
    Metric*, CVPR 2018), the ``lpips`` package's metric, offline and without torchvision.

    Inputs in [0, 1] are mapped to [-1, 1], normalised with lpips' ScalingLayer, passed through the
    ImageNet backbone; at each tapped layer the features are unit-normalised along channels, their
    squared difference is weighted per channel by lpips' calibrated linear head, averaged over space,
    and the layers are summed. The result equals ``lpips.LPIPS(net=net)(sr, hr, normalize=True)``.

    Weights are read from disk, never downloaded:

    * the backbone: torchvision's ImageNet checkpoint (``alexnet-owt-7be5be79.pth``,
      ``vgg16-397923af.pth`` or ``squeezenet1_1-b8a52dc0.pth``) in ``<torch.hub.get_dir()>/checkpoints/``
      (``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``), or
      ``backbone_path``. Only its ``features.*`` entries are used.
    * the linear heads: ``lpips/weights/v0.1/<net>.pth`` of an installed ``lpips`` package (found
      without importing it, so ``pip install --no-deps lpips`` is enough and torchvision is not
      needed), or ``head_path``.

    A missing file raises ``FileNotFoundError`` naming the file and the folder to put it in.
    The module is frozen (no trainable parameters) and stays in eval mode; gradients flow to the
    inputs, so it can also serve as a perceptual loss.

    Args:
        net: backbone, ``'alex'`` (the package's default and the usual one in papers), ``'vgg'`` or
            ``'squeeze'``.
        backbone_path: torchvision checkpoint of the backbone (default: the torch hub cache).
        head_path: lpips linear-head weights (default: from the installed lpips package).

    Shape:
        ``sr``, ``hr``: ``(N, 3, H, W)`` RGB in [0, 1], H and W at least :data:`LPIPS_MIN_SIZE`
        (alex 31, vgg 16, squeeze 17; smaller is a ``ValueError``; H, W >= 32 is sensible); output ``(N,)``,
        in float32 (float64 for float64 inputs). 0 for identical images, larger is more different.

    Example:
        >>> metric = LPIPS("squeeze")  # doctest: +SKIP
        >>> metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2])
    """

    def __init__(
        self, net: str = "alex", *, backbone_path: str | Path | None = None, head_path: str | Path | None = None
    ) -> None:
        super().__init__()
        check_choice(net, "net", LPIPS_NETS)
        self.net = net
        backbone_file = (
            Path(backbone_path)
            if backbone_path is not None
            else Path(torch.hub.get_dir()) / "checkpoints" / _BACKBONE_FILES[net]
        )
        if not backbone_file.is_file():
            raise FileNotFoundError(
                f"LPIPS(net={net!r}) needs torchvision's ImageNet backbone weights '{_BACKBONE_FILES[net]}': "
                f"put that file in {backbone_file.parent}/ (torch.hub.get_dir()/checkpoints; set TORCH_HOME to "
                f"move it) or pass backbone_path=; nothing is downloaded (missing: {backbone_file})"
            )
        head_file = Path(head_path) if head_path is not None else _default_head_path(net)
        if head_file is None or not head_file.is_file():
            where = f"missing: {head_file}" if head_file is not None else "the lpips package is not installed"
            raise FileNotFoundError(
                f"LPIPS(net={net!r}) needs the lpips v0.1 linear-head weights 'weights/v0.1/{net}.pth' of the "
                f"lpips package: `pip install --no-deps lpips==0.1.4` (the file is read, the package is not "
                f"imported, torchvision is not needed) or pass head_path= ({where})"
            )
        self.features, taps, channels = _features(net)
        self._taps = taps
        backbone = _load_state(backbone_file, f"{net} backbone")
        features = {k[len("features.") :]: v for k, v in backbone.items() if k.startswith("features.")}
        try:
            self.features.load_state_dict(features)
        except RuntimeError as err:
            raise RuntimeError(f"{backbone_file} is not torchvision's {_BACKBONE_FILES[net]}: {err}") from err
        head = _load_state(head_file, f"lpips {net} head")
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        for k, conv in enumerate(self.heads):
            key = f"lin{k}.model.1.weight"
            if key not in head or head[key].shape != conv.weight.shape:
                raise RuntimeError(f"{head_file} is not lpips' v0.1 {net}.pth head (no {key} of shape (1, {channels[k]}, 1, 1))")
            conv.weight.data.copy_(head[key])
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps_of(self, x: Tensor) -> list[Tensor]:
        out, start = [], 0
        for stop in self._taps:
            for layer in self.features[start:stop]:
                x = layer(x)
            out.append(x)
            start = stop
        return out

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_image_pair(sr, hr)
        if sr.shape[1] != 3:
            raise ValueError(f"sr and hr must be RGB of shape (N, 3, H, W), got {tuple(sr.shape)}")
        least = LPIPS_MIN_SIZE[self.net]
        if min(sr.shape[-2:]) < least:
            raise ValueError(
                f"sr and hr must be at least {least}x{least} for LPIPS(net={self.net!r}) (its backbone pools the "
                f"image down), got {tuple(sr.shape[-2:])}"
            )
        dtype = self.shift.dtype  # float32, or float64 after .double()
        n = sr.shape[0]
        x = torch.cat([sr.to(dtype), hr.to(dtype)]) * 2.0 - 1.0
        x = (x - self.shift) / self.scale
        total = x.new_zeros(n)
        for feat, head in zip(self._taps_of(x), self.heads):
            feat = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            diff = (feat[:n] - feat[n:]).pow(2)
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total


def lpips(
    sr: Tensor,
    hr: Tensor,
    net: str = "alex",
    *,
    backbone_path: str | Path | None = None,
    head_path: str | Path | None = None,
) -> Tensor:
    """Per-image LPIPS of ``(N, 3, H, W)`` images in [0, 1], functional form of :class:`LPIPS`.

    Loads the weights on every call: build one :class:`LPIPS` (on the images' device) for a loop.
    Returns ``(N,)``.
    """
    metric = LPIPS(net, backbone_path=backbone_path, head_path=head_path).to(sr.device)
    return metric(sr, hr)

