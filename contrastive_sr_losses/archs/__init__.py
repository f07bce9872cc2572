"""Reference super-resolution networks and a small registry.

The networks of the papers whose losses this package implements, and the standard baselines users
retrain with them. Every model maps an RGB batch ``(N, 3, h, w)`` in [0, 1] to ``(N, 3, scale*h,
scale*w)``, supports ``scale`` 2, 3 and 4, trains from scratch with its standard initialisation and
never modifies its input in place.

================  =====================================  ======================  ===========================
name              network                                parameters (x4)         published (x4)
================  =====================================  ======================  ===========================
``edsr_baseline`` EDSR baseline (Lim et al. 2017)        1,517,571               1,517,571
``edsr``          EDSR (32 blocks, 256 channels)         43,089,923              43,090K
``rcan``          RCAN (Zhang et al. 2018)               15,592,355              15,592,379 (+24 frozen)
``swinir_light``  SwinIR-light (Liang et al. 2021)       929,628                 897K (w/o 32,400 tables)
``prffn``         PRFFN (Zhou et al.)                    2,945,975               3,131K (see prffn.py)
``rrlfn``         RRLFN (Guo et al.), re-parameterised   470,208 (512,544 train) 470K
``gidrn``         G-IDRN (Wang et al.)                   561,471                 580K (see gidrn.py)
================  =====================================  ======================  ===========================

Each module's docstring says which choices the paper left open and how the count compares.

Example:
    >>> from contrastive_sr_losses.archs import create_model, list_models
    >>> "edsr_baseline" in list_models()
    True
    >>> model = create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16)  # a tiny variant
    >>> model(torch.rand(1, 3, 12, 12)).shape
    torch.Size([1, 3, 24, 24])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from . import edsr as _edsr
from . import gidrn as _gidrn
from . import prffn as _prffn
from . import rcan as _rcan
from . import rrlfn as _rrlfn
from . import swinir as _swinir
from .common import SUPPORTED_SCALES, check_scale
from .edsr import EDSR
from .gidrn import GIDRN
from .prffn import PRFFN
from .rcan import RCAN
from .rrlfn import RRLFN
from .swinir import SwinIR
from .weights import Weights, WeightsInfo, export_state_dict, load_weights

__all__ = [
    "create_model",
    "load_weights",
    "export_state_dict",
    "WeightsInfo",
    "list_models",
    "SUPPORTED_SCALES",
    "TINY_OVERRIDES",
    "EDSR",
    "RCAN",
    "SwinIR",
    "PRFFN",
    "RRLFN",
    "GIDRN",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "edsr_baseline": _edsr.edsr_baseline,
    "edsr": _edsr.edsr,
    "rcan": _rcan.rcan,
    "swinir_light": _swinir.swinir_light,
    "prffn": _prffn.prffn,
    "rrlfn": _rrlfn.rrlfn,
    "gidrn": _gidrn.gidrn,
}


#: Constructor overrides giving a tiny variant of each network, with every block type, the real
#: upsampler and the real input / output handling, but few blocks and channels: for smoke tests and
#: quick CPU runs, ``create_model(name, scale, **TINY_OVERRIDES[name])``.
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "edsr_baseline": {"n_resblocks": 2, "n_feats": 16},
    "edsr": {"n_resblocks": 2, "n_feats": 16},
    "rcan": {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 16, "reduction": 4},
    "swinir_light": {"embed_dim": 12, "depths": (2, 2), "heads": (2, 3), "window": 4},
    "prffn": {"n_groups": 2, "n_feats": 16, "reduction": 4},
    "rrlfn": {"n_blocks": 2, "n_feats": 16, "esa_channels": 8},
    "gidrn": {"n_feats": 16, "group_channels": 8, "n_groups": 2, "n_blocks": 2, "reduction": 4},
}


def list_models() -> list[str]:
    """The names :func:`create_model` accepts, in a fixed order."""
    return list(_REGISTRY)


def create_model(name: str, scale: int = 4, *, weights: Weights | None = None, **kwargs: Any) -> nn.Module:
    """Build the reference network ``name`` for upscaling factor ``scale``, optionally with weights.

    Args:
        name: one of :func:`list_models`.
        scale: 2, 3 or 4.
        weights: a checkpoint path or a state dict to load, strictly: our layout, or for
            ``edsr_baseline`` / ``edsr`` / ``rcan`` / ``swinir_light`` BasicSR's or the original
            authors' (see :mod:`~contrastive_sr_losses.archs.weights`); wrapped in ``params`` /
            ``params_ema`` / ``state_dict`` or not, ``module.`` prefixes stripped. The layout read is
            in ``model.weights_info`` and logged.
        **kwargs: constructor arguments overriding the network's published defaults (for example
            ``n_resblocks=2, n_feats=16`` for a tiny EDSR in tests or CPU runs).

    Returns:
        An ``nn.Module`` in training mode: freshly initialised, or holding ``weights``.

    Raises:
        ValueError: for an unknown ``name`` (the message lists the known ones), an unsupported
            ``scale``, or ``weights`` that do not fit (missing / unexpected keys, other shapes).
            TypeError: for a keyword the network does not take, or a ``name`` that is not a str.

    Example:
        >>> model = create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16)
        >>> copy = create_model("edsr_baseline", scale=2, weights=model.state_dict(), n_resblocks=2, n_feats=16)
        >>> copy.weights_info.layout
        'ours'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name (str), one of {', '.join(_REGISTRY)}; got {type(name).__name__} {name!r}")
    if name not in _REGISTRY:
        known = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"unknown model name {name!r}; known models: {known}")
    check_scale(scale)
    model = _REGISTRY[name](scale, **kwargs)
    if weights is not None:
        load_weights(model, weights)
    return model
