"""Random sample generators of PCL (Wu et al., section 3.2, eqs 5-6): sharpened positives and
slightly blurred hard negatives of a batch of HR images.

Each sampler turns ``(N, C, H, W)`` into ``(N, k, C, H, W)``: ``k`` copies of every image. The
*ranges* of the random strengths are those of the authors' released code (their
RCAN / NLSN scripts); the *structure* of the draws defaults to the library's own form, and every
place where the released code differs is an option:

* :class:`RandomGaussianBlur`: an axis-aligned Gaussian with ``sigma_y, sigma_x ~ U[0.1, 2.0)`` drawn
  independently, on a kernel whose size is drawn from ``{3, 5, 7, 9, 11}``; reflect borders.
  Default: every image and copy draws its own strength, square kernels, float output. The released
  code (``RandomDegrad`` with ``--gpu_blur``, kornia's ``gaussian_blur2d``): one draw per copy shared
  by the whole batch (``per_batch=True``), the two kernel sizes drawn independently
  (``rectangular=True``), the result rounded to 8 bits (``quantize=True``).
* :class:`RandomSharpen`: ``blurred + f * (x - blurred)`` with ``blurred`` = ``x`` smoothed by the
  3x3 kernel ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` (PIL's ``SMOOTH``, used by PIL's, torchvision's
  and kornia's sharpness adjustment) and ``f ~ U[0.5, 3.0)`` (the scripts' ``--sharp_value 0.5
  --sharp_range 2.5``), clamped to ``[0, value_range]``. Default: one factor per image and copy (as the
  released code: kornia's ``sharpness`` with a factor per image), reflect borders, float output. The
  released code: the 1-pixel border left unsharpened (kornia / torchvision, ``border='keep'``), the
  result rounded to 8 bits (``quantize=True``).

Why the defaults stay the library's: independent per-image draws give every image of a batch its own
negatives (with ``per_batch`` one unlucky draw makes the whole batch's negatives nearly identical to
HR), square kernels and reflect borders treat both axes and the border pixels alike, and 8-bit
rounding moves a copy by at most half a level, below what the embedding separates, while keeping the
samples a smooth function of the strength. :class:`~contrastive_sr_losses.losses.FrequencyContrastiveLoss`
selects the released code's forms at once with ``sample_form='authors'``.

Randomness and devices: the parameters (a few numbers per copy) are drawn with ``generator`` on the
*generator's* device (``torch.rand(..., generator=g, device=g.device)``) and only these small tensors
are moved to the images' device, so a CPU ``torch.Generator`` works with CUDA images and gives the same
parameters as on the CPU. Without a generator the global RNG of the images' device is used (seed it
with ``torch.manual_seed``). The images themselves never leave their device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ._validation import (
    check_bool,
    check_choice,
    check_generator,
    check_image,
    check_interval,
    check_kernel_sizes,
    check_positive_int,
    check_reflect_padding,
    check_value_range,
    compute_dtype,
)
from .functional.filters import gaussian_kernel1d
from .functional.resize import quantize as quantize_8bit  # the constructors take a flag named quantize

__all__ = [
    "RandomGaussianBlur",
    "RandomSharpen",
    "gaussian_blur_copies",
    "sharpen_copies",
    "SMOOTH_KERNEL",
    "DEFAULT_BLUR_SIGMA",
    "DEFAULT_BLUR_KERNEL_SIZES",
    "DEFAULT_SHARPEN_FACTOR",
]

DEFAULT_BLUR_SIGMA: tuple[float, float] = (0.1, 2.0)
DEFAULT_BLUR_KERNEL_SIZES: tuple[int, ...] = (3, 5, 7, 9, 11)
DEFAULT_SHARPEN_FACTOR: tuple[float, float] = (0.5, 3.0)
# PIL's ImageFilter.SMOOTH: the "degenerate" image of PIL's / torchvision's sharpness adjustment.
SMOOTH_KERNEL: tuple[tuple[float, ...], ...] = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))
SMOOTH_SUM = 13.0
SHARPEN_BORDERS = ("reflect", "keep")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None, device) -> Tensor:
    """U[low, high) in float32, drawn on the generator's device (else ``device``), moved to ``device``."""
    draw_on = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=draw_on, dtype=torch.float32)
    return (low + (high - low) * u).to(device)


# ------------------------------------------------------------------------------------------------
# deterministic functional forms
# ------------------------------------------------------------------------------------------------
def _depthwise(y: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(y, weight, groups=y.shape[1])


def gaussian_blur_copies(
    x: Tensor, sigma: Tensor, kernel_size: Tensor | int, *, max_kernel_size: int | None = None
) -> Tensor:
    """Blur every image ``k`` times, each copy with its own axis-aligned Gaussian.

    Args:
        x: ``(N, C, H, W)`` images.
        sigma: ``(N, k, 2)`` standard deviations ``(sigma_y, sigma_x)`` in pixels, > 0, on ``x``'s device.
        kernel_size: ``(N, k)`` odd kernel sizes (a copy of size ``s`` uses the taps within ``s // 2``
            of the centre, normalised to sum 1), ``(N, k, 2)`` sizes ``(size_y, size_x)`` for
            rectangular kernels, or one odd int for all copies.
        max_kernel_size: an odd bound on the sizes in a ``kernel_size`` tensor (the samplers pass the
            largest size they draw from); ``None`` reads ``kernel_size.max()``, which waits for the
            device. Sizes above the bound are cut to it.

    Returns:
        ``(N, k, C, H, W)`` in ``x``'s dtype (computed in float32 for float16 / bfloat16, float64 for
        float64), reflect borders (needs H and W > ``max(kernel_size) // 2``).

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> out = gaussian_blur_copies(x, torch.full((2, 4, 2), 1.0), 5)
        >>> out.shape
        torch.Size([2, 4, 3, 16, 16])
    """
    check_image(x, "x")
    n, c, h, w = x.shape
    if not isinstance(sigma, Tensor) or sigma.dim() != 3 or sigma.shape[0] != n or sigma.shape[2] != 2:
        raise ValueError(f"sigma must be a (N={n}, k, 2) tensor of (sigma_y, sigma_x), got {getattr(sigma, 'shape', sigma)!r}")
    k = sigma.shape[1]
    if isinstance(kernel_size, Tensor):
        if kernel_size.shape not in ((n, k), (n, k, 2)):
            raise ValueError(
                f"kernel_size must be an int or a (N={n}, k={k}) or (N, k, 2) tensor, got shape {tuple(kernel_size.shape)}"
            )
        size = kernel_size.to(x.device)
        if max_kernel_size is None:
            max_kernel_size = int(kernel_size.max())
        kmax = check_kernel_sizes((max_kernel_size,))[0]
    else:
        kmax = check_kernel_sizes((kernel_size,))[0]
        size = torch.full((n, k), kmax, device=x.device)
    size = size.unsqueeze(-1).expand(n, k, 2) if size.dim() == 2 else size  # (N, k, 2): (size_y, size_x)
    pad = kmax // 2
    check_reflect_padding(x, pad, f"a {kmax}x{kmax} blur")
    dtype = compute_dtype(x)
    # Every copy's 1-D kernels on kmax taps: the Gaussian, zeroed beyond the copy's own half size,
    # renormalised. Zero taps read nothing, so padding by kmax // 2 equals padding by the copy's own.
    taps = gaussian_kernel1d(sigma.reshape(-1).to(dtype), kmax).view(n, k, 2, kmax)
    offset = torch.arange(kmax, device=x.device) - pad
    keep = offset.abs()[None, None, None, :] <= (size // 2)[:, :, :, None]  # (N, k, 2, kmax)
    taps = taps * keep
    taps = taps / taps.sum(-1, keepdim=True)
    ky = taps[:, :, 0, None, :].expand(n, k, c, kmax).reshape(n * k * c, 1, kmax, 1)
    kx = taps[:, :, 1, None, :].expand(n, k, c, kmax).reshape(n * k * c, 1, 1, kmax)
    y = x.to(dtype).unsqueeze(1).expand(n, k, c, h, w).reshape(1, n * k * c, h, w)
    y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    y = _depthwise(_depthwise(y, kx), ky)
    return y.view(n, k, c, h, w).to(x.dtype)


def sharpen_copies(x: Tensor, factor: Tensor, value_range: float | None = 1.0, *, border: str = "reflect") -> Tensor:
    """Sharpen every image ``k`` times: ``clamp(blurred + f * (x - blurred), 0, value_range)``.

    ``blurred`` is ``x`` smoothed by :data:`SMOOTH_KERNEL` / 13, with reflect borders (``border=
    'reflect'``, default) or, as PIL, torchvision and kornia (the authors' code) do, equal to ``x`` on
    the 1-pixel border, which is then left unsharpened (``border='keep'``). ``f > 1`` sharpens,
    ``f < 1`` softens, ``f = 1`` returns ``x`` (clamped).

    Args:
        x: ``(N, C, H, W)`` images (H, W >= 2).
        factor: ``(N, k)`` blend factors, on ``x``'s device.
        value_range: clamp to ``[0, value_range]`` (1.0 for [0, 1] images, 255.0 for [0, 255]); ``None``
            does not clamp.
        border: ``'reflect'`` or ``'keep'`` (see above).

    Returns:
        ``(N, k, C, H, W)`` in ``x``'s dtype (computed in float32 for float16 / bfloat16).

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> torch.allclose(sharpen_copies(x, torch.ones(2, 1))[:, 0], x, atol=1e-6)
        True
    """
    check_image(x, "x")
    n, c, h, w = x.shape
    if not isinstance(factor, Tensor) or factor.dim() != 2 or factor.shape[0] != n:
        raise ValueError(f"factor must be a (N={n}, k) tensor, got {getattr(factor, 'shape', factor)!r}")
    if value_range is not None:
        value_range = check_value_range(value_range)
    check_choice(border, "border", SHARPEN_BORDERS)
    check_reflect_padding(x, 1, "the 3x3 smoothing of the sharpening")
    dtype = compute_dtype(x)
    xf = x.to(dtype)
    kernel = torch.tensor(SMOOTH_KERNEL, dtype=dtype, device=x.device) / SMOOTH_SUM
    if border == "reflect":
        blurred = _depthwise(F.pad(xf, (1, 1, 1, 1), mode="reflect"), kernel.expand(c, 1, 3, 3))
    else:  # the valid 3x3 smoothing inside, x itself on the border: blend = x there
        blurred = xf.clone()
        blurred[..., 1:-1, 1:-1] = _depthwise(xf, kernel.expand(c, 1, 3, 3))
    f = factor.to(dtype)[:, :, None, None, None]
    out = blurred.unsqueeze(1) + f * (xf - blurred).unsqueeze(1)
    if value_range is not None:
        out = out.clamp(0.0, value_range)
    return out.to(x.dtype)


# ------------------------------------------------------------------------------------------------
# random samplers
# ------------------------------------------------------------------------------------------------
class RandomGaussianBlur(nn.Module):
    """``k`` randomly blurred copies of every image: PCL's hard negatives ``Blur(I_HR)`` (eq 6).

    Each copy draws ``sigma_y``, ``sigma_x`` from ``U[sigma)`` and a kernel size from
    ``kernel_sizes`` (uniformly); see :func:`gaussian_blur_copies`. A blur keeps values inside the
    input's range, so no clamping is needed.

    Args:
        k: copies per image (>= 1), default 4 (``K_N = 4``, the paper's default).
        sigma: ``(low, high)`` of the uniform draw of each axis' standard deviation in pixels, default
            ``(0.1, 2.0)`` (the authors' code).
        kernel_sizes: odd kernel sizes to draw from, default ``(3, 5, 7, 9, 11)`` (the authors' code).
            H and W must exceed ``max(kernel_sizes) // 2`` (reflect borders).
        per_batch: one draw per copy shared by every image of the batch (the authors' code); default
            False: every image draws its own (see the module docstring for why).
        rectangular: draw the y and x kernel sizes independently (the authors' code); default False:
            one size for both axes.
        quantize: round the copies to the 8-bit levels of ``[0, value_range]`` (the authors' code);
            default False.
        value_range: the value of white, used only by ``quantize`` (1.0 for [0, 1] images).

    Shape:
        - input: ``(N, C, H, W)``
        - output: ``(N, k, C, H, W)``, same dtype and device.

    Example:
        >>> blur = RandomGaussianBlur(k=4)
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> g = torch.Generator().manual_seed(0)
        >>> negatives = blur(hr, generator=g)
        >>> negatives.shape
        torch.Size([2, 4, 3, 32, 32])
        >>> torch.equal(negatives, blur(hr, generator=torch.Generator().manual_seed(0)))
        True
    """

    def __init__(
        self,
        k: int = 4,
        *,
        sigma: tuple[float, float] = DEFAULT_BLUR_SIGMA,
        kernel_sizes: Sequence[int] = DEFAULT_BLUR_KERNEL_SIZES,
        per_batch: bool = False,
        rectangular: bool = False,
        quantize: bool = False,
        value_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.k = check_positive_int(k, "k")
        self.sigma = check_interval(sigma, "sigma")
        self.kernel_sizes = check_kernel_sizes(kernel_sizes)
        self.per_batch = check_bool(per_batch, "per_batch", yaml_hint=False)
        self.rectangular = check_bool(rectangular, "rectangular", yaml_hint=False)
        self.quantize = check_bool(quantize, "quantize", yaml_hint=False)
        self.value_range = check_value_range(value_range)

    def sample_parameters(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[Tensor, Tensor]:
        """Draw ``sigma`` ``(n, k, 2)`` (float32) and ``kernel_size`` ``(n, k)`` (int64; ``(n, k, 2)``
        with ``rectangular``), returned on ``device``; with ``per_batch`` every image gets row 0's."""
        generator = check_generator(generator)
        draw_on = generator.device if generator is not None else device
        rows = 1 if self.per_batch else n
        sigma = _uniform((rows, self.k, 2), *self.sigma, generator, device)
        shape = (rows, self.k, 2) if self.rectangular else (rows, self.k)
        choice = torch.randint(len(self.kernel_sizes), shape, generator=generator, device=draw_on)
        sizes = torch.tensor(self.kernel_sizes, device=draw_on)[choice].to(device)
        if self.per_batch:
            sigma, sizes = sigma.expand(n, *sigma.shape[1:]), sizes.expand(n, *sizes.shape[1:])
        return sigma, sizes

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_image(x, "x")
        check_reflect_padding(x, max(self.kernel_sizes) // 2, f"RandomGaussianBlur with kernel_sizes={self.kernel_sizes}")
        sigma, sizes = self.sample_parameters(x.shape[0], generator=generator, device=x.device)
        out = gaussian_blur_copies(x, sigma, sizes, max_kernel_size=max(self.kernel_sizes))
        return quantize_8bit(out, self.value_range) if self.quantize else out

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, sigma={self.sigma}, kernel_sizes={self.kernel_sizes}, per_batch={self.per_batch}, "
            f"rectangular={self.rectangular}, quantize={self.quantize}"
        )


class RandomSharpen(nn.Module):
    """``k`` randomly sharpened copies of every image: PCL's positives ``Sharpen(I_HR)`` (eq 5).

    Each copy of each image draws its own blend factor ``f ~ U[factor)`` (as the authors' code, which
    passes kornia's ``sharpness`` one factor per image); see :func:`sharpen_copies`. With the authors'
    range ``(0.5, 3.0)`` about a fifth of the copies have ``f < 1`` and are slightly *softened*, as in
    their code; pass ``factor=(1.0, 3.0)`` for sharpening only.

    Args:
        k: copies per image (>= 1), default 4 (``K_P = 4``, the paper's default).
        factor: ``(low, high)`` of the uniform blend factor, default ``(0.5, 3.0)`` (the authors'
            scripts).
        value_range: the value of white, 1.0 for images in [0, 1] (default) or 255.0 for [0, 255]; the
            copies are clamped to ``[0, value_range]``. ``None`` does not clamp.
        per_batch: one factor per copy shared by the batch; default False (per image, as the
            authors' code).
        border: ``'reflect'`` (default: every pixel sharpened) or ``'keep'`` (the authors' code, via
            kornia: the 1-pixel border left as it is).
        quantize: round the copies to the 8-bit levels of ``[0, value_range]`` (the authors' code);
            default False. Needs a ``value_range``.

    Shape:
        - input: ``(N, C, H, W)`` (H, W >= 2)
        - output: ``(N, k, C, H, W)``, same dtype and device.

    Example:
        >>> sharpen = RandomSharpen(k=4, value_range=1.0)
        >>> positives = sharpen(torch.rand(2, 3, 32, 32), generator=torch.Generator().manual_seed(0))
        >>> positives.shape
        torch.Size([2, 4, 3, 32, 32])
    """

    def __init__(
        self,
        k: int = 4,
        *,
        factor: tuple[float, float] = DEFAULT_SHARPEN_FACTOR,
        value_range: float | None = 1.0,
        per_batch: bool = False,
        border: str = "reflect",
        quantize: bool = False,
    ) -> None:
        super().__init__()
        self.k = check_positive_int(k, "k")
        self.factor = check_interval(factor, "factor")
        self.value_range = None if value_range is None else check_value_range(value_range)
        self.per_batch = check_bool(per_batch, "per_batch", yaml_hint=False)
        self.border = check_choice(border, "border", SHARPEN_BORDERS)
        self.quantize = check_bool(quantize, "quantize", yaml_hint=False)
        if self.quantize and self.value_range is None:
            raise ValueError("quantize=True rounds to the 8-bit levels of [0, value_range]: give a value_range")

    def sample_parameters(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> Tensor:
        """Draw the blend factors ``(n, k)`` (float32), returned on ``device`` (row 0's for every image
        with ``per_batch``)."""
        factor = _uniform((1 if self.per_batch else n, self.k), *self.factor, check_generator(generator), device)
        return factor.expand(n, self.k)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_image(x, "x")
        factor = self.sample_parameters(x.shape[0], generator=generator, device=x.device)
        out = sharpen_copies(x, factor, self.value_range, border=self.border)
        return quantize_8bit(out, self.value_range) if self.quantize else out  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, factor={self.factor}, value_range={self.value_range}, per_batch={self.per_batch}, "
            f"border={self.border!r}, quantize={self.quantize}"
        )
