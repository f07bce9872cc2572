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

:func:`imresize` and :func:`quantize` live in :mod:`contrastive_sr_losses.functional.resize` (the
integrations and the training kit use them to make LR images) and are re-exported here; PSNR-Y and
SSIM-Y are in :mod:`.psnr_ssim`, LPIPS in :mod:`.lpips`.

Example:
    >>> hr = torch.rand(1, 3, 32, 32)
    >>> lr = quantize(imresize(hr, 1 / 2))          # the 8-bit LR image, as MATLAB makes it
    >>> sr = imresize(lr, 2)
    >>> bool(psnr_y(sr, hr, crop_border=2) > 0), ssim_y(hr, hr, crop_border=2)
    (True, tensor([1.], dtype=torch.float64))
"""

from ..functional.resize import imresize, quantize
from .perceptual import LPIPS, LPIPS_MIN_SIZE, LPIPS_NETS, lpips
from .psnr_ssim import SSIM_WINDOW, ReferenceY, psnr_y, ssim_y  # noqa: F401 (SSIM_WINDOW: the kit reads it here)

__all__ = ["imresize", "quantize", "psnr_y", "ssim_y", "ReferenceY", "LPIPS", "lpips", "LPIPS_NETS", "LPIPS_MIN_SIZE"]
