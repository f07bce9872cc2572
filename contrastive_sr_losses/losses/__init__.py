"""Loss modules, one file per loss family, each with its functional twin."""

from .combined import CombinedLoss
from .high_pass import GaussianHighPassLoss, gaussian_high_pass_loss
from .pcl import FrequencyContrastiveLoss, contrastive_discriminator_loss, frequency_contrastive_loss
from .pcl_trainer import PCLTrainer
from .pixel_contrastive import (
    PixelContrastiveLoss,
    pixel_contrastive_loss,
    pixel_contrastive_reference_map,
    pixel_contrastive_sliding_reference_map,
)
from .random_conv import RandomConvContrastiveLoss, random_conv_contrastive_loss
from .ratio_contrastive import RatioContrastiveLoss, ratio_contrastive_loss

__all__ = [
    "CombinedLoss",
    "PixelContrastiveLoss",
    "pixel_contrastive_loss",
    "pixel_contrastive_reference_map",
    "pixel_contrastive_sliding_reference_map",
    "GaussianHighPassLoss",
    "gaussian_high_pass_loss",
    "RatioContrastiveLoss",
    "ratio_contrastive_loss",
    "RandomConvContrastiveLoss",
    "random_conv_contrastive_loss",
    "FrequencyContrastiveLoss",
    "frequency_contrastive_loss",
    "contrastive_discriminator_loss",
    "PCLTrainer",
]
