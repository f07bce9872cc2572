"""neosr (a git checkout, not a package): ``register_neosr()`` adds the losses to neosr's
``LOSS_REGISTRY`` and the model type ``csr_image`` (neosr's ``image`` model that also saves PCL's
state) to its ``MODEL_REGISTRY``.

neosr's convention (``neosr/models/image.py``): fixed slots (``pixel_opt``, ``perceptual_opt``, ...,
in the ``[train]`` table of the TOML config), each built with ``build_loss`` (exact names), moved with
``.to(device, memory_format=torch.channels_last)`` and called as ``cri(output, gt)`` inside
``torch.autocast``; the values are summed as returned, so the loss applies its own ``loss_weight``.

Launch: a 5-line ``train_csr.py`` next to neosr's ``train.py`` (run ``python train_csr.py -opt
options/x.toml``)::

    import os.path as osp
    from contrastive_sr_losses.integrations import register_neosr
    register_neosr()
    from train import train_pipeline
    train_pipeline(osp.abspath(osp.dirname(__file__)))

or, losses only, a shim ``neosr/losses/csr_loss.py`` (neosr imports every ``*_loss.py``) holding
``from contrastive_sr_losses.integrations import register_neosr; register_neosr(model=False)``.

Importing this module does not import neosr; ``register_neosr`` does.

Example:
    >>> loss = CSRGaussianHighPassLoss(loss_weight=0.6)    # neosr sums values as returned: weighted here
    >>> loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
    torch.Size([])
"""

from __future__ import annotations

from .adapters import ADAPTERS, Convention, adapter_classes, register_classes
from .state import register_model

__all__ = ["NEOSR", "register_neosr", *ADAPTERS]

NEOSR = Convention("neosr", loss_applies_weight=True, model_type='model_type = "csr_image" with register_neosr()')

_CLASSES = adapter_classes(NEOSR, __name__)
globals().update(_CLASSES)  # CSRPixelContrastiveLoss, ... (ADAPTERS)


def register_neosr(model: bool = True) -> dict[str, type]:
    """Register the adapters and (``model=True``) the model type ``csr_image`` with neosr; safe to
    call again. ``model=False`` for the shim file, which runs while neosr imports its losses (its
    models import the losses, so they cannot be imported yet). Returns the registered classes."""
    from neosr.utils.registry import LOSS_REGISTRY

    register_classes(LOSS_REGISTRY, _CLASSES, "neosr")
    if not model:
        return dict(_CLASSES)
    from neosr.models.image import image
    from neosr.utils.registry import MODEL_REGISTRY

    return {**_CLASSES, "csr_image": register_model(MODEL_REGISTRY, image, "csr_image", "neosr")}
