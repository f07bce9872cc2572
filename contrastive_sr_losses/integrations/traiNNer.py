"""traiNNer-redux (a git checkout, not a package): ``register_traiNNer()`` adds the losses to its
``LOSS_REGISTRY`` and makes its ``build_model`` build an ``SRModel`` that also saves PCL's state.

traiNNer-redux's convention (``traiNNer/utils/registry.py``, ``traiNNer/models/sr_model.py``): the
registry lower-cases names (ours are unique ignoring case); ``train.losses`` is a list of
``{type, loss_weight, ...}``, each built with ``build_loss`` and moved with ``.to(device,
memory_format=channels_last)`` under ``use_channels_last``; in ``optimize_parameters`` each is called
as ``loss(output, gt)`` inside ``torch.autocast`` and the **model** multiplies the value by
``abs(loss.loss_weight)`` (a dict return: each entry), so these adapters return unweighted values.
``build_model`` always builds ``SRModel`` (no model registry): ``register_traiNNer()`` points
``traiNNer.models.SRModel`` at a subclass that adds the losses' state to the training state.

Launch: a 5-line ``train_csr.py`` next to traiNNer-redux's ``train.py`` (run ``python train_csr.py
-opt options/train/x.yml``)::

    import os.path as osp
    from contrastive_sr_losses.integrations import register_traiNNer
    register_traiNNer()
    from train import train_pipeline
    train_pipeline(osp.abspath(osp.dirname(__file__)))

or, losses only, a shim ``traiNNer/losses/csr_loss.py`` (traiNNer imports every ``*_loss.py``) holding
``from contrastive_sr_losses.integrations import register_traiNNer; register_traiNNer(model=False)``.

Importing this module does not import traiNNer; ``register_traiNNer`` does.

Example:
    >>> loss = CSRGaussianHighPassLoss(loss_weight=0.6)    # traiNNer's model applies loss_weight
    >>> loss.loss_weight, loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
    (0.6, torch.Size([]))
"""

from __future__ import annotations

from .adapters import ADAPTERS, Convention, adapter_classes, register_classes
from .state import with_loss_state

__all__ = ["TRAINNER", "register_traiNNer", *ADAPTERS]

TRAINNER = Convention("traiNNer-redux", loss_applies_weight=False, model_type="register_traiNNer() (model=True)")

_CLASSES = adapter_classes(TRAINNER, __name__)
globals().update(_CLASSES)  # CSRPixelContrastiveLoss, ... (ADAPTERS)


def register_traiNNer(model: bool = True) -> dict[str, type]:  # noqa: N802 (the framework's spelling)
    """Register the adapters with traiNNer-redux and (``model=True``) make ``build_model`` use an
    ``SRModel`` subclass that saves the losses' state; safe to call again. ``model=False`` for the
    shim file, which runs while traiNNer imports its losses. Returns the classes by name."""
    from traiNNer.utils.registry import LOSS_REGISTRY

    register_classes(LOSS_REGISTRY, _CLASSES, "traiNNer-redux")
    if not model:
        return dict(_CLASSES)
    import traiNNer.models as models

    if getattr(models.SRModel, "__qualname__", "") != "CSRSRModel":
        models.SRModel = with_loss_state(models.SRModel, "CSRSRModel")
    return {**_CLASSES, "CSRSRModel": models.SRModel}
