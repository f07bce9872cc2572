"""contrastive-sr-losses: contrastive and frequency-domain training losses for single-image SR.

Example:
    >>> import torch.nn.functional as F
    >>> from contrastive_sr_losses import PixelContrastiveLoss
    >>> criterion = PixelContrastiveLoss(region=8)
    >>> sr, hr = torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32)
    >>> loss = F.l1_loss(sr, hr) + 0.1 * criterion(sr, hr)
"""

from . import archs, metrics
from ._range import ValueRangeWarning, set_value_range_check
from .archs import create_model, list_models
from .balance import GradientBalance, TermBalance, gradient_balance, suggest_weight
from .embeddings import RandomConvFeatures, VGG19Features, WaveletDiscriminator
from .functional import dwt2, gaussian_blur2d, gaussian_high_pass, haar_dwt, haar_idwt, idwt2
from .losses import (
    CombinedLoss,
    FrequencyContrastiveLoss,
    GaussianHighPassLoss,
    PCLTrainer,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
    RatioContrastiveLoss,
    contrastive_discriminator_loss,
    frequency_contrastive_loss,
    gaussian_high_pass_loss,
    pixel_contrastive_loss,
    pixel_contrastive_reference_map,
    pixel_contrastive_sliding_reference_map,
    random_conv_contrastive_loss,
    ratio_contrastive_loss,
)
from .samplers import RandomGaussianBlur, RandomSharpen

__version__ = "0.2.0"

__all__ = [
    "CombinedLoss",
    "PixelContrastiveLoss",
    "pixel_contrastive_loss",
    "pixel_contrastive_reference_map",
    "pixel_contrastive_sliding_reference_map",
    "GaussianHighPassLoss",
    "gaussian_high_pass_loss",
    "gaussian_high_pass",
    "gaussian_blur2d",
    "RatioContrastiveLoss",
    "ratio_contrastive_loss",
    "RandomConvContrastiveLoss",
    "random_conv_contrastive_loss",
    "RandomConvFeatures",
    "VGG19Features",
    "FrequencyContrastiveLoss",
    "frequency_contrastive_loss",
    "contrastive_discriminator_loss",
    "PCLTrainer",
    "WaveletDiscriminator",
    "RandomSharpen",
    "RandomGaussianBlur",
    "dwt2",
    "idwt2",
    "haar_dwt",
    "haar_idwt",
    "gradient_balance",
    "suggest_weight",
    "GradientBalance",
    "TermBalance",
    "ValueRangeWarning",
    "set_value_range_check",
    "create_model",
    "list_models",
    "archs",
    "metrics",
    "__version__",
]
