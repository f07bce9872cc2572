"""contrastive-sr-losses: contrastive and frequency-domain training losses for single-image SR.

Example:
    >>> import torch.nn.functional as F
    >>> from contrastive_sr_losses import PixelContrastiveLoss
    >>> criterion = PixelContrastiveLoss(region=8)
    >>> sr, hr = torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32)
    >>> loss = F.l1_loss(sr, hr) + 0.1 * criterion(sr, hr)
"""

from . import metrics
from .losses import PixelContrastiveLoss, pixel_contrastive_loss, pixel_contrastive_reference_map

__version__ = "0.1.0"

__all__ = [
    "PixelContrastiveLoss",
    "pixel_contrastive_loss",
    "pixel_contrastive_reference_map",
    "metrics",
    "__version__",
]
