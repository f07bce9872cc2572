"""Loss modules, one file per loss family, each with its functional twin."""

from .pixel_contrastive import PixelContrastiveLoss, pixel_contrastive_loss, pixel_contrastive_reference_map

__all__ = ["PixelContrastiveLoss", "pixel_contrastive_loss", "pixel_contrastive_reference_map"]
