"""One registry of the library's losses by short name: how to build each one and how to call it.

:class:`~contrastive_sr_losses.CombinedLoss`, the training kit's ``--loss`` specs
(``srkit/losses.py``) and the framework adapters (``CSRCombinedLoss``) all build their terms
from :data:`LOSSES`, so a name means the same loss everywhere.

Example:
    >>> from contrastive_sr_losses.losses.registry import LOSSES, build_loss
    >>> sorted(LOSSES)[:3]
    ['high_pass', 'l1', 'mse']
    >>> build_loss("pixel_contrastive", region=4)
    PixelContrastiveLoss(region=4, mode='grid', temperature=1.0, reduction='mean', backend='auto')
    >>> LOSSES["random_conv"].needs_lr       # its negative is the bicubic-upsampled LR image
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

__all__ = ["LossEntry", "LOSSES", "build_loss", "build_trainer", "term_needs_lr"]


@dataclass(frozen=True)
class LossEntry:
    """How to build and call one loss of the registry.

    Attributes:
        module, attr: the loss is ``module.attr(**options)`` (imported when first built).
        needs_lr: its forward takes the LR input batch as ``lr=`` (negative = bicubic-upsampled LR).
        summary: one line for listings (the paper and the usual weight).
        build: a factory used instead of ``module.attr`` (for losses built from parts).
        trainer: for a loss that trains its own embedding alongside the SR network (PCL's
            discriminator), the factory ``trainer(loss, **options)`` of the object that does it
            (:class:`~contrastive_sr_losses.PCLTrainer`); None otherwise. :func:`build_trainer`
            calls it; ``trained`` says whether there is one.
        default_weight: the weight of a ``--loss`` term written without one: 1, except where the loss
            study measured 1 as harmful (random-conv 0.001, PCL 0.01; the numbers: ``docs/choosing-a-loss.md``
            on the documentation site, ``benchmarks/results/loss_study*.md`` in the repository).
    """

    module: str
    attr: str
    needs_lr: bool
    summary: str
    build: Callable[..., nn.Module] | None = None
    trainer: Callable[..., Any] | None = None
    default_weight: float = 1.0

    @property
    def trained(self) -> bool:
        """Whether the loss trains its own embedding alongside the SR network (it has a ``trainer``)."""
        return self.trainer is not None


def _pcl(
    disc_channels: tuple[int, ...] | None = None, disc_strides: tuple[int, ...] | None = None, **kwargs: Any
) -> nn.Module:
    """PCL's loss over a fresh wavelet discriminator (``disc_channels`` / ``disc_strides``: its widths)."""
    from ..embeddings.wavelet_discriminator import WaveletDiscriminator
    from .pcl import FrequencyContrastiveLoss

    disc_kwargs = {k: v for k, v in (("channels", disc_channels), ("strides", disc_strides)) if v is not None}
    return FrequencyContrastiveLoss(WaveletDiscriminator(**disc_kwargs), **kwargs)


def _pcl_trainer(loss: nn.Module, **options: Any) -> Any:
    """PCL's alternating discriminator training over ``loss`` (``options``: :class:`PCLTrainer`'s)."""
    from .pcl_trainer import PCLTrainer

    return PCLTrainer(loss, **options)  # type: ignore[arg-type]


def _vgg_contrastive(weights: str | None = "imagenet", **kwargs: Any) -> nn.Module:
    """CSD's ratio loss on VGG19 features (``weights``: ``'imagenet'``, a path, or None)."""
    from ..embeddings.vgg import CSD_WEIGHTS, VGG19Features
    from .ratio_contrastive import RatioContrastiveLoss

    return RatioContrastiveLoss(VGG19Features(weights=weights), kwargs.pop("layer_weights", CSD_WEIGHTS), **kwargs)


#: Short name -> :class:`LossEntry`, in the order listings show them.
LOSSES: dict[str, LossEntry] = {
    "l1": LossEntry("torch.nn", "L1Loss", False, "mean absolute error (the SR papers' base loss)"),
    "mse": LossEntry("torch.nn", "MSELoss", False, "mean squared error"),
    "pixel_contrastive": LossEntry(
        "contrastive_sr_losses.losses.pixel_contrastive", "PixelContrastiveLoss", False,
        "local-region pixel contrastive loss (Zhou et al., PRFFN; weight 0.1, region 8)",
    ),
    "high_pass": LossEntry(
        "contrastive_sr_losses.losses.high_pass", "GaussianHighPassLoss", False,
        "Gaussian high-frequency L1 loss (Wang et al., G-IDRN; 0.4 * l1 + 0.6 * high_pass)",
    ),
    "random_conv": LossEntry(
        "contrastive_sr_losses.losses.random_conv", "RandomConvContrastiveLoss", True,
        "ratio contrastive loss in a frozen random Conv-Tanh-Conv space, negative = bicubic LR (RLFN / RRLFN); "
        "weight 0.001 when none is written (the loss study's least harmful; weight 1 lowered PSNR-Y by several dB: "
        "docs/choosing-a-loss.md)",
        default_weight=0.001,
    ),
    "vgg_contrastive": LossEntry(
        "contrastive_sr_losses.losses.ratio_contrastive", "RatioContrastiveLoss", True,
        "CSD / AECR-Net contrastive regularisation on VGG19 features (needs vgg19-dcbb9e9d.pth, weights=PATH)",
        build=_vgg_contrastive,
    ),
    "pcl": LossEntry(
        "contrastive_sr_losses.losses.pcl", "FrequencyContrastiveLoss", False,
        "PCL contrastive loss in a wavelet discriminator's space (Wu et al.; the paper's weight 1 lowered PSNR-Y "
        "by several dB in the loss study, see docs/choosing-a-loss.md: weight 0.01 when none is written), "
        "the discriminator trained alternately "
        "(d_lr=1e-4; lr_negative=true adds the LR negative; disc_channels/disc_strides; generator_gradient=false: "
        "the authors' released form, logged but no gradient to the network)",
        build=_pcl,
        trainer=_pcl_trainer,
        default_weight=0.01,
    ),
}


def build_loss(name: str, **options: Any) -> nn.Module:
    """Build the registry's loss ``name`` with ``options`` (its constructor's keyword arguments).

    Raises:
        KeyError: ``name`` is not in :data:`LOSSES` (the message lists the known names).
        ImportError: the module holding the loss cannot be imported here.
    """
    entry = LOSSES.get(name)
    if entry is None:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    factory = entry.build or getattr(importlib.import_module(entry.module), entry.attr)
    return factory(**options)


def build_trainer(name: str, loss: nn.Module, **options: Any) -> Any:
    """The trainer of the registry's trained loss ``name`` over ``loss`` (built by :func:`build_loss`),
    e.g. ``build_trainer("pcl", loss, lr=1e-4)`` is ``PCLTrainer(loss, lr=1e-4)``.

    Raises:
        KeyError: ``name`` is not in :data:`LOSSES`.
        ValueError: the loss ``name`` trains nothing of its own (its entry has no ``trainer``).

    Example:
        >>> loss = build_loss("pcl", disc_channels=(8, 8, 16, 16), disc_strides=(1, 2, 1, 2), layers=(0, 2))
        >>> build_trainer("pcl", loss, lr=1e-4)
        PCLTrainer(...)
    """
    entry = LOSSES.get(name)
    if entry is None:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    if entry.trainer is None:
        raise ValueError(f"the loss {name!r} trains nothing of its own: it has no trainer")
    return entry.trainer(loss, **options)


def term_needs_lr(name: str, loss: nn.Module) -> bool:
    """Whether the registry's loss ``name``, built as ``loss``, takes the LR input batch: always where
    :attr:`LossEntry.needs_lr`, and where the built loss was asked for an LR negative (``lr_negative``).

    Example:
        >>> term_needs_lr("random_conv", build_loss("random_conv")), term_needs_lr("l1", build_loss("l1"))
        (True, False)
    """
    return LOSSES[name].needs_lr or bool(getattr(loss, "lr_negative", False))
