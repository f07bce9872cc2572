"""Feature spaces (embeddings) that the contrastive losses compare images in."""

from .wavelet_discriminator import WaveletDiscriminator

__all__ = ["WaveletDiscriminator"]
