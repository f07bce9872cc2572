"""Feature spaces (embeddings) that the contrastive losses compare images in."""

from .random_conv_features import RandomConvFeatures
from .vgg import CSD_LAYERS, CSD_WEIGHTS, VGG19Features
from .wavelet_discriminator import WaveletDiscriminator

__all__ = ["WaveletDiscriminator", "RandomConvFeatures", "VGG19Features", "CSD_LAYERS", "CSD_WEIGHTS"]
