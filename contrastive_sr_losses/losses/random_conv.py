"""Random-conv contrastive loss of RLFN (Kong et al. 2022) as used by RRLFN (section 1.3,
eq 9): the ratio contrastive loss in the feature space of a frozen, randomly initialised
Conv3x3 -> Tanh -> Conv3x3, with the bicubic-upsampled LR image as the negative.

Neither paper publishes the channel count or the layer weights. Defaults chosen here: 16 channels
(see :class:`~contrastive_sr_losses.embeddings.random_conv_features.RandomConvFeatures`) and equal weights
(0.5, 0.5) on the two feature maps (after the Tanh, after the second conv), so the loss is the
average of two ratios: 0 when SR == HR, 1 when SR is as far from HR as from the bicubic image.
Near SR == negative the ratio explodes (``d_pos / eps``); an untrained network with a bicubic skip
connection starts there, so use the term when fine-tuning from a trained checkpoint, as RRLFN does
(it adds the loss only in the last warm-start stage, Guo et al., section 2.2).

Its weight beside L1 is not published either. In the library's loss study (``benchmarks/loss_study.py``)
every weight tried cost PSNR-Y against L1 alone: weight 1 lowered it by several dB, and 0.001, the least
harmful and this library's default where it picks the weight, still by a few hundredths of a dB
(600-iteration runs). Added for the last quarter of a 9,600-iteration run instead, a stronger network,
0.001 left PSNR-Y level or slightly higher and lowered LPIPS by 0.013-0.014 (3 paired seeds). The
ratio's gradient is far larger than L1's on a half-trained output, so start at a weight of 0.001 or
below. The numbers: ``docs/choosing-a-loss.md`` and ``docs/loss-study.md`` on the documentation site,
``benchmarks/results/loss_study*.md`` in the repository.

On its first call in training mode (the default mode of a module) each instance checks the batch's
ratio once (one host sync, never again): above 1,
the output is nearer the negative than HR in the random feature space and the term will mostly push
it away from the negative (in the loss study: shifted colours and low frequencies, not detail), so it
warns, once, pointing to :func:`contrastive_sr_losses.gradient_balance`. Silence it with
``warnings.filterwarnings("ignore", message="RandomConvContrastiveLoss")``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from .._range import check_value_range_once
from ..embeddings.random_conv_features import RandomConvFeatures
from .ratio_contrastive import RatioContrastiveLoss

__all__ = ["RandomConvContrastiveLoss", "random_conv_contrastive_loss", "RANDOM_CONV_WEIGHTS"]

RANDOM_CONV_WEIGHTS: tuple[float, float] = (0.5, 0.5)


class RandomConvContrastiveLoss(RatioContrastiveLoss):
    """RLFN / RRLFN contrastive loss: ratio of L1 feature distances in a frozen random Conv-Tanh-Conv.

    The random weights are buffers drawn from ``seed``: saved in ``state_dict``, moved by ``.to()``,
    never in ``parameters()``; two instances with the same seed give the same loss on any device.

    Args:
        channels: feature channels of the random convolutions (16).
        layer_weights: weights of the features after the Tanh and after the second conv ((0.5, 0.5)).
        seed: seed of the random weights (0).
        normalize: ImageNet mean / std normalisation of the input first (True, the RLFN authors' advice;
            needs RGB input).
        eps: added to the negative distance (1e-7).
        in_channels: image channels (3).
        value_range: what white is in the input (1.0 for [0, 1], 255.0 for [0, 255]). The ratio is
            computed on the images divided by ``value_range`` and multiplied by it, so the term
            scales like an L1 loss and ``L1 + lam * loss`` is the same objective in either range.
        reduction: ``'mean'`` over images (default), ``'sum'``, or ``'none'`` for ``(N,)``.

    Shape:
        - sr, hr: ``(N, C, H, W)``; negative ``(N, C, H, W)``, or ``lr=(N, C, h, w)`` (bicubic-upsampled
          to ``sr``'s size inside).
        - output: scalar, or ``(N,)`` with ``reduction='none'``.

    Example:
        >>> import torch.nn.functional as F
        >>> criterion = RandomConvContrastiveLoss(seed=0)
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> lr = F.avg_pool2d(hr, 2)
        >>> sr = (hr + 0.01 * torch.randn_like(hr)).requires_grad_()  # nearer HR than the negative
        >>> # weight 0.001: the least harmful of the loss study (weight 1 lowered PSNR-Y by several dB)
        >>> loss = F.l1_loss(sr, hr) + 0.001 * criterion(sr, hr, lr=lr)
        >>> loss.backward()
    """

    def __init__(
        self,
        *,
        channels: int = 16,
        layer_weights: Sequence[float] = RANDOM_CONV_WEIGHTS,
        seed: int = 0,
        normalize: bool = True,
        eps: float = 1e-7,
        in_channels: int = 3,
        value_range: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        features = RandomConvFeatures(
            in_channels, channels, seed=seed, normalize=normalize, value_range=value_range
        )
        super().__init__(features, layer_weights, eps=eps, reduction=reduction)
        if len(self.layer_weights) != 2:
            raise ValueError(
                f"layer_weights must have 2 entries (after the Tanh, after the second conv), got {layer_weights!r}"
            )
        self.value_range = features.value_range  # the extractor normalises by it; the loss scales with it
        self._first_batch_checked = False

    def forward(self, sr: Tensor, hr: Tensor, negative: Tensor | None = None, *, lr: Tensor | None = None) -> Tensor:
        check_value_range_once(self, sr, hr, self.value_range)
        loss = super().forward(sr, hr, negative, lr=lr)
        if self.training and not self._first_batch_checked:  # (eval mode: a validation or dry run)
            self._check_first_batch(loss, sr.shape[0])
        return loss * self.value_range if self.value_range != 1.0 else loss

    def _check_first_batch(self, loss: Tensor, n: int) -> None:
        """Warn once when the first batch's mean ratio is above 1 (one host sync, first call only)."""
        if torch.compiler.is_compiling():
            return  # no sync inside a compiled graph; the eager first call (if any) checks
        self._first_batch_checked = True
        value = loss.detach().float()
        ratio = float(value.mean() if self.reduction == "none" else value / n if self.reduction == "sum" else value)
        if ratio > 1.0:
            warnings.warn(
                f"RandomConvContrastiveLoss: the first batch's ratio is {ratio:.3g} > 1: the output is nearer the "
                "negative (bicubic LR) than HR in the random feature space, so the term will mostly push it away "
                "from the negative (the loss study measured shifted colours and low frequencies, several dB of "
                "PSNR-Y lost at weight 1; see docs/choosing-a-loss.md). Check its gradient against L1's with "
                "contrastive_sr_losses.gradient_balance and keep its weight small (0.001 or below)",
                stacklevel=5,  # the caller of criterion(...)
            )


def random_conv_contrastive_loss(
    sr: Tensor,
    hr: Tensor,
    negative: Tensor,
    *,
    channels: int = 16,
    layer_weights: Sequence[float] = RANDOM_CONV_WEIGHTS,
    seed: int = 0,
    normalize: bool = True,
    eps: float = 1e-7,
    value_range: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """Functional :class:`RandomConvContrastiveLoss` (builds the small random extractor on each call:
    keep a module instance in a training loop).

    Example:
        >>> sr = torch.rand(1, 3, 16, 16, requires_grad=True)
        >>> hr, neg = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
        >>> random_conv_contrastive_loss(sr, hr, neg, seed=0).backward()
    """
    module = RandomConvContrastiveLoss(
        channels=channels,
        layer_weights=layer_weights,
        seed=seed,
        normalize=normalize,
        eps=eps,
        in_channels=sr.shape[1] if isinstance(sr, Tensor) and sr.dim() == 4 else 3,
        value_range=value_range,
        reduction=reduction,
    )
    return module.to(sr.device if isinstance(sr, Tensor) else "cpu")(sr, hr, negative)
