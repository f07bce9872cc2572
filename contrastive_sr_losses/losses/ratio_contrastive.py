"""Ratio-form contrastive loss in a frozen feature space: pull SR towards HR, push it from a negative.

    CL = sum_l w_l * d(phi_l(sr), phi_l(hr)) / (d(phi_l(sr), phi_l(neg)) + eps)       (Guo et al., eq 9)

with d the mean absolute (L1) distance. Its two published forms:

* RLFN / RRLFN (Guo et al., section 1.3): phi = a frozen random Conv-Tanh-Conv, negative = the
  bicubic-upsampled LR image; see :class:`~contrastive_sr_losses.losses.random_conv.RandomConvContrastiveLoss`.
* CSD / AECR-Net "contrastive regularisation": phi = VGG19 relu1_1..relu5_1 with weights
  1/32, 1/16, 1/8, 1/4, 1 (``RatioContrastiveLoss(VGG19Features(weights="imagenet"), CSD_WEIGHTS)``).

The distances are per image: ``reduction='mean'`` averages the per-image ratios over the batch. (CSD's
code divides batch-mean distances instead; the two agree for a batch of one, and the per-image form
does not depend on what else is in the batch, so it is the same under DDP whatever the per-GPU batch.)
Only ``sr`` is differentiated: the features of ``hr`` and of the negative are computed without
gradient, and the feature extractor is frozen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import (
    check_eps,
    check_image_pair,
    check_layer_weights,
    check_lr_image,
    check_reduction,
    compute_dtype,
    module_dtype,
    nonfinite_as_nan,
)

__all__ = ["RatioContrastiveLoss", "ratio_contrastive_loss", "upsample_negative"]

FeatureExtractor = Callable[[Tensor], Sequence[Tensor]]


def upsample_negative(
    lr: Tensor, like: Tensor, *, align_corners: bool = False, clamp_to: float | None = None
) -> Tensor:
    """The LR negative: ``lr`` bicubic-upsampled with ``F.interpolate`` to ``like``'s size.

    Args:
        lr: ``(N, C, h, w)`` low-resolution input of the network, floating, not larger than ``like``.
        like: ``(N, C, H, W)`` tensor whose size, dtype and device the result takes.
        align_corners: ``F.interpolate``'s flag. Default False: pixel centres aligned, the geometry of
            the bicubic LR images themselves (MATLAB's ``imresize``). The PCL authors' code uses True
            (``F.interpolate(lr, (h, w), mode='bicubic', align_corners=True)``), which stretches the
            image by a fraction of a pixel (mean |difference| 0.016 / 0.028 / 0.037 on Set5's
            butterfly at x2 / x3 / x4, values in [0, 1]).
        clamp_to: clamp the result to ``[0, clamp_to]`` (the PCL authors' code clamps to its RGB
            range; bicubic overshoots at edges); default None: no clamping.
    """
    check_lr_image(lr, like)
    up = F.interpolate(lr.to(like.dtype), size=like.shape[-2:], mode="bicubic", align_corners=align_corners)
    return up if clamp_to is None else up.clamp(0.0, clamp_to)


def ratio_contrastive_loss(
    sr: Tensor,
    hr: Tensor,
    negative: Tensor,
    feature_extractor: FeatureExtractor,
    layer_weights: Sequence[float],
    *,
    eps: float = 1e-7,
    reduction: str = "mean",
) -> Tensor:
    """``sum_l w_l * d(phi_l(sr), phi_l(hr)) / (d(phi_l(sr), phi_l(negative)) + eps)`` per image.

    Args:
        sr: ``(N, C, H, W)`` network output (the anchor).
        hr: ``(N, C, H, W)`` target (the positive).
        negative: ``(N, C, H, W)`` the negative, e.g. the bicubic-upsampled LR (:func:`upsample_negative`).
        feature_extractor: maps ``(N, C, H, W)`` to a sequence of L feature maps (a frozen module).
        layer_weights: L non-negative weights ``w_l``.
        eps: added to the negative distance (default 1e-7).
        reduction: ``'mean'`` over images (default), ``'sum'``, or ``'none'`` for the ``(N,)`` ratios.

    Returns:
        A scalar, or ``(N,)`` with ``reduction='none'``. ``hr`` and ``negative`` get no gradient.
        NaN for an image with a NaN or an Inf in ``sr``, ``hr`` or ``negative``.

    Example:
        >>> from contrastive_sr_losses.embeddings.random_conv_features import RandomConvFeatures
        >>> phi = RandomConvFeatures(seed=0)
        >>> sr = torch.rand(2, 3, 16, 16, requires_grad=True)
        >>> hr, neg = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        >>> ratio_contrastive_loss(sr, hr, neg, phi, (0.5, 0.5)).backward()
    """
    check_image_pair(sr, hr)
    check_image_pair(sr, negative, ("sr", "negative"))
    weights = check_layer_weights(layer_weights)
    eps = check_eps(eps)
    check_reduction(reduction)
    if not callable(feature_extractor):
        raise TypeError(f"feature_extractor must be callable (an nn.Module), got {type(feature_extractor).__name__}")
    dtype = module_dtype(feature_extractor, compute_dtype(sr, hr, negative))
    f_sr = list(feature_extractor(sr.to(dtype)))
    with torch.no_grad():
        f_hr = list(feature_extractor(hr.to(dtype)))
        f_neg = list(feature_extractor(negative.to(dtype)))
    if not (len(f_sr) == len(f_hr) == len(f_neg) == len(weights)):
        raise ValueError(
            f"layer_weights has {len(weights)} entries but the feature extractor returned {len(f_sr)} feature maps"
        )
    out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    loss = sr.new_zeros(sr.shape[0], dtype=out_dtype)
    for w, a, p, n in zip(weights, f_sr, f_hr, f_neg):
        if w == 0.0:
            continue
        a, p, n = a.to(out_dtype), p.to(out_dtype), n.to(out_dtype)
        d_pos = (a - p).abs().flatten(1).mean(1)  # (N,)
        d_neg = (a - n).abs().flatten(1).mean(1)
        loss = loss + w * d_pos / (d_neg + eps)
    # An Inf in an input can vanish in the features (a Tanh) or in Inf / Inf: make it NaN, as the
    # other losses do, without a host sync.
    loss = loss + nonfinite_as_nan(sr, hr, negative, dtype=out_dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class RatioContrastiveLoss(nn.Module):
    """Ratio contrastive loss in the feature space of a frozen extractor (CSD / AECR-Net / RLFN form).

    The extractor is frozen when the loss is built (``requires_grad_(False)`` and eval mode), and
    stays in eval mode when the loss is put in training mode.

    Args:
        feature_extractor: an ``nn.Module`` mapping ``(N, C, H, W)`` to a list of L feature maps, e.g.
            :class:`~contrastive_sr_losses.embeddings.vgg.VGG19Features`.
        layer_weights: L non-negative weights (CSD: 1/32, 1/16, 1/8, 1/4, 1 on relu1_1..relu5_1).
        eps: added to the negative distance (1e-7).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Shape:
        - sr, hr, negative: ``(N, C, H, W)``; or ``lr=(N, C, h, w)`` instead of ``negative``.
        - output: scalar, or ``(N,)`` with ``reduction='none'``.

    Example:
        >>> from contrastive_sr_losses.embeddings.vgg import CSD_WEIGHTS, VGG19Features
        >>> criterion = RatioContrastiveLoss(VGG19Features(weights=None), CSD_WEIGHTS)  # weights="imagenet" for real use
        >>> sr = torch.rand(1, 3, 32, 32, requires_grad=True)
        >>> hr, lr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16)
        >>> criterion(sr, hr, lr=lr).backward()
    """

    def __init__(
        self,
        feature_extractor: nn.Module,
        layer_weights: Sequence[float],
        *,
        eps: float = 1e-7,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not isinstance(feature_extractor, nn.Module):
            raise TypeError(f"feature_extractor must be an nn.Module, got {type(feature_extractor).__name__}")
        self.feature_extractor = feature_extractor.requires_grad_(False).eval()
        self.layer_weights = check_layer_weights(layer_weights)
        self.eps = check_eps(eps)
        self.reduction = check_reduction(reduction)

    def train(self, mode: bool = True) -> RatioContrastiveLoss:
        super().train(mode)
        self.feature_extractor.eval()
        return self

    def forward(self, sr: Tensor, hr: Tensor, negative: Tensor | None = None, *, lr: Tensor | None = None) -> Tensor:
        if (negative is None) == (lr is None):
            raise ValueError("pass exactly one of negative (N, C, H, W) or lr (N, C, h, w, upsampled bicubically)")
        if negative is None:
            check_image_pair(sr, hr)
            negative = upsample_negative(lr, sr)  # type: ignore[arg-type]
        return ratio_contrastive_loss(
            sr, hr, negative, self.feature_extractor, self.layer_weights, eps=self.eps, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"layer_weights={self.layer_weights}, eps={self.eps:g}, reduction={self.reduction!r}"
