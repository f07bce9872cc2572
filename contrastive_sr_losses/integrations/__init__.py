"""The losses as drop-ins for BasicSR, traiNNer-redux and neosr configs.

Call the framework's ``register_*`` function once before its ``train_pipeline`` (or from a shim file,
see each module); then name the losses in the config: ``CSRPixelContrastiveLoss``,
``CSRGaussianHighPassLoss``, ``CSRRandomConvContrastiveLoss``, ``CSRRatioContrastiveLoss``,
``CSRFrequencyContrastiveLoss``, ``CSRPCLLoss`` (:mod:`.adapters`). Importing this package, or any
module of it, imports no framework; each ``register_*`` imports its own.

Example:
    >>> from contrastive_sr_losses.integrations import register_basicsr   # then register_basicsr()
    >>> import sys
    >>> "basicsr" in sys.modules
    False
"""

from __future__ import annotations

from .basicsr import register_basicsr
from .neosr import register_neosr
from .traiNNer import register_traiNNer

__all__ = ["register_basicsr", "register_traiNNer", "register_neosr"]
