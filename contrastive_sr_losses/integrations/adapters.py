"""The losses of the package in the calling convention of BasicSR and its descendants.

Every adapter is built from keyword options (a YAML / TOML block minus ``type``) as
``Adapter(loss_weight=1.0, reduction='mean', <the loss's own options>)`` and called as
``adapter(pred, target, weight=None, lq=None, **kwargs)`` with RGB images in [0, 1]. What differs
between frameworks is a :class:`Convention`: whether the loss multiplies by its ``loss_weight``
(BasicSR, neosr) or the model does (traiNNer-redux), and BasicSR's slot-dependent return (its
``perceptual_opt`` slot unpacks ``(percep, style)``). Each framework module makes its own classes
from the ones here with :func:`adapter_classes`, so the three can be registered in one process.

========================================  ======================================================
registered name                           the loss
========================================  ======================================================
``CSRPixelContrastiveLoss``               :class:`~contrastive_sr_losses.PixelContrastiveLoss`
``CSRGaussianHighPassLoss``               :class:`~contrastive_sr_losses.GaussianHighPassLoss`
``CSRRandomConvContrastiveLoss``          :class:`~contrastive_sr_losses.RandomConvContrastiveLoss`
``CSRRatioContrastiveLoss``               :class:`~contrastive_sr_losses.RatioContrastiveLoss` (CSD: VGG19)
``CSRFrequencyContrastiveLoss``           :class:`~contrastive_sr_losses.FrequencyContrastiveLoss`,
                                          frozen discriminator read from a file
``CSRPCLLoss``                            :class:`~contrastive_sr_losses.PCLTrainer`: PCL with its
                                          discriminator trained alongside (state saved with the
                                          framework's training state by the model types of
                                          :mod:`.state`)
========================================  ======================================================

The ratio losses (and PCL with ``lr_negative``) need the LR image: they take ``lq`` when the
framework passes it, else they make it from the target, ``imresize(target, 1 / scale)`` (MATLAB
bicubic, the usual way SR datasets make their LR images): set ``scale`` in their options.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
from torch import Tensor

from .._validation import check_betas, check_bool, check_choice, check_loss_weight, check_positive_float, check_scale
from ..embeddings import VGG19Features, WaveletDiscriminator
from ..embeddings.vgg import CSD_LAYERS, CSD_WEIGHTS
from ..embeddings.wavelet_discriminator import PCL_CHANNELS, PCL_FEATURE_LAYERS, PCL_STRIDES
from ..functional.resize import imresize
from ..losses import (
    CombinedLoss,
    FrequencyContrastiveLoss,
    GaussianHighPassLoss,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
    RatioContrastiveLoss,
)
from ..losses.high_pass import DEFAULT_HIGH_PASS_SIGMA
from ..losses.random_conv import RANDOM_CONV_WEIGHTS
from ..losses.registry import build_trainer, term_needs_lr
from ..serialization import load_tensors_file

__all__ = [
    "Convention",
    "CSRLoss",
    "PixelContrastiveAdapter",
    "GaussianHighPassAdapter",
    "RandomConvContrastiveAdapter",
    "RatioContrastiveAdapter",
    "FrequencyContrastiveAdapter",
    "PCLAdapter",
    "ADAPTERS",
    "adapter_classes",
    "register_classes",
]


@dataclass(frozen=True)
class Convention:
    """How one framework calls a loss.

    Attributes:
        framework: its name, for messages.
        loss_applies_weight: True where the loss returns ``loss_weight * value`` (BasicSR, neosr),
            False where the model multiplies by the loss's ``loss_weight`` (traiNNer-redux).
        slots: BasicSR-style slot names a loss can be put in, the default first; ``'perceptual'``
            returns ``(value, None)``, every other slot the tensor. Empty: no ``slot`` option.
        model_type: the name of the model type that keeps PCL's state in the training state.
    """

    framework: str
    loss_applies_weight: bool
    slots: tuple[str, ...] = ()
    model_type: str = ""


class CSRLoss(nn.Module):
    """Base of the adapters: ``loss_weight``, ``reduction``, the framework's forward signature.

    Every option is checked when the loss is built, before the framework's first step: ``loss_weight``
    a finite number in [0, 1e6] (0: the term is computed and logged, PCL's discriminator still trains,
    but it adds nothing to the total nor to the gradient), booleans real booleans (YAML ``false``, not
    the string ``'false'``), sequences of the right length, required paths present; a bad value is a
    one-line ``TypeError`` / ``ValueError`` naming the option.

    Subclasses build the core loss in ``__init__`` and compute it in :meth:`compute`. Whether it takes
    the LR image comes from the loss registry (:func:`~contrastive_sr_losses.losses.registry.term_needs_lr`
    of ``registry_name``); where it does, :meth:`lr_image` is ``lq`` when the framework passes it, else
    ``imresize(target, 1 / scale)``.
    """

    convention: ClassVar[Convention]
    #: the loss's name in :data:`~contrastive_sr_losses.losses.registry.LOSSES`
    registry_name: ClassVar[str | None] = None
    scale: int | None = None
    loss: nn.Module

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", slot: str | None = None) -> None:
        super().__init__()
        self.loss_weight = check_loss_weight(loss_weight)
        self.reduction = reduction
        slots = self.convention.slots
        if slots:
            self.slot = check_choice(slots[0] if slot is None else slot, "slot", slots)
        elif slot is not None:
            raise ValueError(f"slot: {self.convention.framework} has no loss slots to choose, got {slot!r}")
        else:
            self.slot = None

    @property
    def needs_lr(self) -> bool:
        """Whether :meth:`compute` takes the LR image (the registry's word for the built loss)."""
        return self.registry_name is not None and term_needs_lr(self.registry_name, self.loss)

    def lr_image(self, target: Tensor, lq: Tensor | None) -> Tensor:
        """The LR image of a pair: ``lq`` when given, else ``imresize(target, 1 / scale)``."""
        if lq is not None:
            return lq
        if self.scale is None:
            raise ValueError(
                f"scale: {type(self).__name__} needs the LR image and the framework passed no lq; set "
                "scale (2, 3, 4) in its options to make one by bicubic down-scaling of the target"
            )
        with torch.no_grad():
            return imresize(target, 1.0 / self.scale)

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        """The loss of ``pred`` against ``target``; ``lr``: the LR image where :attr:`needs_lr`, else None."""
        raise NotImplementedError

    def forward(
        self, pred: Tensor, target: Tensor, weight: Tensor | None = None, lq: Tensor | None = None, **kwargs: Any
    ) -> Tensor | tuple[Tensor, None]:
        """``pred``, ``target``: ``(N, 3, H, W)`` RGB in [0, 1]; ``lq``: the LR input, optional.

        Returns the value times ``loss_weight`` where the convention says so, as ``(value, None)``
        in BasicSR's perceptual slot."""
        if weight is not None:
            raise ValueError(f"weight: element-wise loss weights are not supported by {type(self).__name__}")
        value = self.compute(pred, target, self.lr_image(target, lq) if self.needs_lr else None)
        if self.convention.loss_applies_weight:
            value = value * self.loss_weight
        return (value, None) if self.slot == "perceptual" else value

    def extra_repr(self) -> str:
        slot = f", slot={self.slot!r}" if self.slot else ""
        return f"loss_weight={self.loss_weight:g}{slot}"


class PixelContrastiveAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.PixelContrastiveLoss` (Zhou et al., eq 9-10; eq 11 uses
    ``loss_weight: 0.1`` beside L1).

    Example:
        >>> from contrastive_sr_losses.integrations.basicsr import CSRPixelContrastiveLoss
        >>> loss = CSRPixelContrastiveLoss(loss_weight=0.1, region=8)      # BasicSR's perceptual slot
        >>> percep, style = loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
        >>> style is None
        True
    """

    registry_name = "pixel_contrastive"

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        region: int = 8,
        mode: str = "grid",
        temperature: float = 1.0,
        backend: str = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.loss = PixelContrastiveLoss(
            region, mode=mode, temperature=temperature, reduction=reduction, backend=backend, chunk_size=chunk_size
        )

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target)


class GaussianHighPassAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.GaussianHighPassLoss` (G-IDRN, eq 12: ``0.4 * L1 + 0.6 * L_hf``).

    Example:
        >>> from contrastive_sr_losses.integrations.neosr import CSRGaussianHighPassLoss
        >>> CSRGaussianHighPassLoss(loss_weight=0.6)(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
        torch.Size([])
    """

    registry_name = "high_pass"

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        sigma: float = DEFAULT_HIGH_PASS_SIGMA,
        kernel_size: int | None = None,
        mode: str = "spatial",
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.loss = GaussianHighPassLoss(sigma, kernel_size=kernel_size, mode=mode, reduction=reduction)

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target)


class RandomConvContrastiveAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.RandomConvContrastiveLoss` (RLFN / RRLFN), negative = the
    bicubic-upsampled LR image (``lq``, or the target down-scaled by ``scale``).

    Example:
        >>> from contrastive_sr_losses.integrations.traiNNer import CSRRandomConvContrastiveLoss
        >>> loss = CSRRandomConvContrastiveLoss(loss_weight=0.001, scale=2)  # traiNNer weights it itself
        >>> loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).shape
        torch.Size([])

    ``loss_weight`` defaults to 0.001, the least harmful weight of the library's loss study: it still
    cost a few hundredths of a dB of PSNR-Y against L1 alone, and weight 1 cost several dB (the numbers:
    ``docs/choosing-a-loss.md`` on the documentation site, ``benchmarks/results/loss_study*.md`` in the
    repository).
    """

    registry_name = "random_conv"

    def __init__(
        self,
        loss_weight: float = 0.001,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        scale: int | None = None,
        channels: int = 16,
        layer_weights: Sequence[float] = RANDOM_CONV_WEIGHTS,
        seed: int = 0,
        normalize: bool = True,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.scale = check_scale(scale)
        self.loss = RandomConvContrastiveLoss(
            channels=channels, layer_weights=layer_weights, seed=seed, normalize=check_bool(normalize, "normalize"),
            eps=eps, reduction=reduction,
        )

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target, lr=lr)


class RatioContrastiveAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.RatioContrastiveLoss` in VGG19 (CSD / AECR-Net), negative = the
    bicubic-upsampled LR image. ``vgg_weights``: ``'imagenet'`` (torchvision's ``vgg19-dcbb9e9d.pth``
    from ``$TORCH_HOME/hub/checkpoints/``, never downloaded), a path, or None (random: tests only).
    """

    registry_name = "vgg_contrastive"

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        scale: int | None = None,
        vgg_weights: str | None = "imagenet",
        layers: Sequence[str] = CSD_LAYERS,
        layer_weights: Sequence[float] = CSD_WEIGHTS,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.scale = check_scale(scale)
        if vgg_weights is not None and (isinstance(vgg_weights, bool) or not isinstance(vgg_weights, (str, os.PathLike))):
            raise TypeError(f"vgg_weights must be 'imagenet', a path or None, got {type(vgg_weights).__name__} {vgg_weights!r}")
        self.loss = RatioContrastiveLoss(VGG19Features(layers, vgg_weights), layer_weights, eps=eps, reduction=reduction)

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target, lr=lr)


def _pcl_criterion(
    discriminator: WaveletDiscriminator, reduction: str, options: dict[str, Any]
) -> FrequencyContrastiveLoss:
    return FrequencyContrastiveLoss(discriminator, reduction=reduction, **options)


class FrequencyContrastiveAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.FrequencyContrastiveLoss` with a frozen, pretrained wavelet
    discriminator read from ``discriminator_weights`` (a ``WaveletDiscriminator`` state dict, for
    example the ``discriminator`` entry of a ``CSRPCLLoss`` training state): PCL without the GAN-like
    training, the paper's own suggestion. ``lr_negative: true`` uses the LR image as one negative.
    ``loss_weight`` defaults to 0.01, as :class:`PCLAdapter`'s (the loss study's least harmful alpha; the
    paper's 1 lowered PSNR-Y by several dB, see ``docs/choosing-a-loss.md``).
    """

    registry_name = "pcl"

    def __init__(
        self,
        loss_weight: float = 0.01,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        discriminator_weights: str,
        scale: int | None = None,
        channels: Sequence[int] = PCL_CHANNELS,
        strides: Sequence[int] = PCL_STRIDES,
        num_positives: int = 4,
        num_negatives: int = 4,
        layers: Sequence[int] = PCL_FEATURE_LAYERS,
        temperature: float = 1.0,
        lr_negative: bool = False,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.scale = check_scale(scale)
        if isinstance(discriminator_weights, bool) or not isinstance(discriminator_weights, (str, os.PathLike)):
            raise TypeError(
                "discriminator_weights must be the path of a WaveletDiscriminator state dict (required), got "
                f"{type(discriminator_weights).__name__} {discriminator_weights!r}"
            )
        disc = WaveletDiscriminator(channels=channels, strides=strides)
        state = load_tensors_file(discriminator_weights, "discriminator_weights")  # weights_only=True
        try:
            disc.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"discriminator_weights {discriminator_weights}: not a state dict of a WaveletDiscriminator with "
                f"channels={list(channels)}, strides={list(strides)} ({first})"
            ) from None
        options = dict(num_positives=num_positives, num_negatives=num_negatives, layers=layers,
                       temperature=temperature, lr_negative=check_bool(lr_negative, "lr_negative"))
        self.loss = _pcl_criterion(disc.requires_grad_(False), reduction, options)

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target, lr)


class PCLAdapter(CSRLoss):
    """PCL (Wu et al.): :class:`~contrastive_sr_losses.PCLTrainer` over a fresh
    :class:`~contrastive_sr_losses.embeddings.WaveletDiscriminator`. Each training-mode call makes one
    discriminator step (its own Adam, ``disc_lr``) then returns the generator-side contrastive loss.
    The paper's eq 11 is ``L1 + 1.0 * L_CL``; ``loss_weight`` defaults to 0.01 instead, the least
    harmful alpha of the library's loss study: alpha 1 lowered PSNR-Y by several dB against L1 alone
    (the numbers: ``docs/choosing-a-loss.md`` on the documentation site,
    ``benchmarks/results/loss_study*.md`` in the repository). ``generator_gradient: false`` is the authors'
    released form (the loss is logged but sends the network no gradient).

    The discriminator and its optimizer are state a resume must restore: use the framework's model
    type that saves it (BasicSR ``model_type: CSRSRModel``, neosr ``model_type = "csr_image"``,
    traiNNer-redux: ``register_traiNNer()``); elsewhere the first call warns that a resume would
    start the discriminator afresh.

    Example:
        >>> from contrastive_sr_losses.integrations.neosr import CSRPCLLoss
        >>> pcl = CSRPCLLoss(channels=(8, 8, 16, 16), strides=(1, 2, 1, 2), layers=(0, 2))
        >>> pcl.state_saved_by = "doctest"        # what the saving model types set
        >>> loss = pcl(torch.rand(2, 3, 16, 16, requires_grad=True), torch.rand(2, 3, 16, 16))
        >>> pcl.training_state()["steps"]
        1
    """

    registry_name = "pcl"
    state_saved_by: str | None = None

    def __init__(
        self,
        loss_weight: float = 0.01,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        scale: int | None = None,
        channels: Sequence[int] = PCL_CHANNELS,
        strides: Sequence[int] = PCL_STRIDES,
        num_positives: int = 4,
        num_negatives: int = 4,
        layers: Sequence[int] = PCL_FEATURE_LAYERS,
        temperature: float = 1.0,
        lr_negative: bool = False,
        disc_lr: float = 1e-4,
        disc_betas: Sequence[float] = (0.9, 0.999),
        generator_gradient: bool = True,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        self.scale = check_scale(scale)
        betas = check_betas(disc_betas, "disc_betas")
        disc_lr = check_positive_float(disc_lr, "disc_lr")
        options = dict(num_positives=num_positives, num_negatives=num_negatives, layers=layers,
                       temperature=temperature, lr_negative=check_bool(lr_negative, "lr_negative"),
                       generator_gradient=check_bool(generator_gradient, "generator_gradient"))
        self.loss = _pcl_criterion(WaveletDiscriminator(channels=channels, strides=strides), reduction, options)
        self.trainer = build_trainer(self.registry_name, self.loss, lr=disc_lr, betas=betas)
        self._warned = False

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        if not self.training:
            return self.loss(pred, target, lr)
        if self.state_saved_by is None and not self._warned:
            self._warned = True
            warnings.warn(
                f"{type(self).__name__}: this model type does not save the discriminator and its optimizer "
                f"with the training state, so a resume starts them afresh; use {self.convention.model_type}",
                stacklevel=3,
            )
        return self.trainer(pred, target, lr)

    def training_state(self) -> dict[str, Any]:
        """Discriminator, its optimizer and step count (:meth:`PCLTrainer.state_dict`)."""
        return self.trainer.state_dict()

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state`."""
        self.trainer.load_state_dict(state)


class CombinedAdapter(CSRLoss):
    """:class:`~contrastive_sr_losses.CombinedLoss`: a whole objective in one loss slot, e.g. the loss
    study's best, ``terms: {l1: 1.0, pixel_contrastive: 0.1, high_pass: 1.5}`` (a term may be
    ``[weight, {options}]``). ``scale`` makes the LR image for the terms that need it when the
    framework passes no ``lq``. PCL is not accepted here: its discriminator state needs
    ``CSRPCLLoss`` (in BasicSR, put that in the perceptual slot beside this one in the pixel slot).

    Example:
        >>> from contrastive_sr_losses.integrations.basicsr import CSRCombinedLoss
        >>> loss = CSRCombinedLoss(slot="pixel", terms={"l1": 1.0, "pixel_contrastive": 0.1, "high_pass": 1.5})
        >>> loss(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)).shape     # BasicSR's pixel slot
        torch.Size([])
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        reduction: str = "mean",
        slot: str | None = None,
        *,
        terms: dict[str, Any],
        scale: int | None = None,
    ) -> None:
        super().__init__(loss_weight, reduction, slot)
        if reduction != "mean":
            raise ValueError(f"reduction: {type(self).__name__} sums scalar terms, so only 'mean' applies, got {reduction!r}")
        if isinstance(terms, dict) and "pcl" in terms:
            raise ValueError(
                f"terms: {type(self).__name__} cannot keep PCL's discriminator state across a resume; "
                "use CSRPCLLoss for the pcl term (BasicSR: in the perceptual slot, this loss in the pixel slot)"
            )
        self.scale = check_scale(scale)
        self.loss = CombinedLoss(terms)

    @property
    def needs_lr(self) -> bool:
        return self.loss.needs_lr

    def compute(self, pred: Tensor, target: Tensor, lr: Tensor | None) -> Tensor:
        return self.loss(pred, target, lr)


#: Registered name -> generic adapter class, in README order.
ADAPTERS: dict[str, type[CSRLoss]] = {
    "CSRPixelContrastiveLoss": PixelContrastiveAdapter,
    "CSRGaussianHighPassLoss": GaussianHighPassAdapter,
    "CSRRandomConvContrastiveLoss": RandomConvContrastiveAdapter,
    "CSRRatioContrastiveLoss": RatioContrastiveAdapter,
    "CSRFrequencyContrastiveLoss": FrequencyContrastiveAdapter,
    "CSRPCLLoss": PCLAdapter,
    "CSRCombinedLoss": CombinedAdapter,
}


def adapter_classes(convention: Convention, module: str) -> dict[str, type[CSRLoss]]:
    """One class per entry of :data:`ADAPTERS`, named as registered, following ``convention``,
    defined in ``module`` (the framework module that exports them)."""
    made = {}
    for name, base in ADAPTERS.items():
        summary = (base.__doc__ or "").strip().split("\n\n")[0]
        doc = f"{summary}\n\n{convention.framework}'s convention; options and example: :class:`{base.__name__}`."
        made[name] = type(name, (base,), {"convention": convention, "__module__": module, "__qualname__": name, "__doc__": doc})
    return made


def register_classes(registry: Any, classes: dict[str, type], framework: str) -> None:
    """Register ``classes`` into a BasicSR-style ``registry`` (``name in registry``, ``get``,
    ``register``) under their class names; a name already holding the same class (a second call) is
    skipped, one holding another object is an error."""
    for name, cls in classes.items():
        if name in registry:
            existing = registry.get(name)
            if (getattr(existing, "__module__", None), getattr(existing, "__qualname__", None)) == (cls.__module__, name):
                continue
            raise ValueError(f"{name}: the {framework} registry already holds another object under this name: {existing!r}")
        registry.register(cls)
