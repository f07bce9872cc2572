"""BasicSR (``pip install basicsr``): ``register_basicsr()`` adds the losses to ``LOSS_REGISTRY`` and
the model type ``CSRSRModel`` (BasicSR's ``SRModel`` that also saves PCL's state) to
``MODEL_REGISTRY``.

BasicSR's convention (``basicsr/losses/basic_loss.py``, ``basicsr/models/sr_model.py``): a loss is
built as ``cls(**opt)`` from the YAML block minus ``type``, multiplies by its own ``loss_weight``, and
``SRModel`` calls ``cri_pix(output, gt)`` (a tensor) and ``cri_perceptual(output, gt)`` (a tuple
``(percep, style)``). The adapters return the tuple unless built with ``slot: pixel``.

Launch: import and register before BasicSR's own ``train_pipeline`` (the BasicSR-examples pattern)::

    # train.py, run as: python train.py -opt options/train_edsr_pcl.yml
    import os.path as osp
    from contrastive_sr_losses.integrations import register_basicsr
    register_basicsr()
    from basicsr.train import train_pipeline
    train_pipeline(osp.abspath(osp.dirname(__file__)))

Importing this module does not import BasicSR; ``register_basicsr`` does.

Example:
    >>> loss = CSRGaussianHighPassLoss(loss_weight=0.6, slot="pixel")    # BasicSR's pixel_opt slot
    >>> loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
    torch.Size([])
"""

from __future__ import annotations

from .adapters import ADAPTERS, Convention, adapter_classes, register_classes
from .state import register_model

__all__ = ["BASICSR", "register_basicsr", *ADAPTERS]

BASICSR = Convention("BasicSR", loss_applies_weight=True, slots=("perceptual", "pixel"), model_type="model_type: CSRSRModel")

_CLASSES = adapter_classes(BASICSR, __name__)
globals().update(_CLASSES)  # CSRPixelContrastiveLoss, ... (ADAPTERS)


def register_basicsr() -> dict[str, type]:
    """Register the adapters and ``CSRSRModel`` with BasicSR; safe to call again. Returns the
    registered classes by name."""
    from basicsr.models.sr_model import SRModel
    from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

    register_classes(LOSS_REGISTRY, _CLASSES, "BasicSR")
    return {**_CLASSES, "CSRSRModel": register_model(MODEL_REGISTRY, SRModel, "CSRSRModel", "BasicSR")}
