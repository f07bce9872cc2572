"""Reusable pieces shared by the losses and metrics: region tiling, colour conversion, Gaussian
filters, wavelet transforms, MATLAB's bicubic resize."""

from .color import rgb_to_gray, rgb_to_y
from .filters import gaussian_blur2d, gaussian_high_pass, gaussian_kernel1d
from .regions import Tile, from_blocks, region_tiles, to_blocks
from .resize import imresize, quantize
from .wavelets import DWT2, WaveletBands, dwt2, haar_dwt, haar_idwt, high_frequency_bands, idwt2

__all__ = [
    "Tile",
    "region_tiles",
    "to_blocks",
    "from_blocks",
    "rgb_to_y",
    "rgb_to_gray",
    "gaussian_kernel1d",
    "gaussian_blur2d",
    "gaussian_high_pass",
    "DWT2",
    "WaveletBands",
    "dwt2",
    "idwt2",
    "haar_dwt",
    "haar_idwt",
    "high_frequency_bands",
    "imresize",
    "quantize",
]
