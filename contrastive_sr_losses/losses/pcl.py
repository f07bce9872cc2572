"""PCL: contrastive loss in the feature space of a wavelet discriminator (Wu, Jiang, Liu, Ma, *A Practical
Contrastive Learning Framework for Single Image Super-Resolution*, section 3, eqs 5-11).

For SR image i, positives are the HR image and sharpened copies of it (eq 5), hard negatives are
slightly blurred copies (eq 6), optionally with the bicubic-upsampled LR input. All are embedded by a
discriminator E_D that sees only the Haar detail sub-bands (section 3.3). With f, p, n the features of
SR, positives and negatives at layer l and s the mean over pixels of the channel-wise cosine (eq 9)::

    s(x, y)  = 1/(HW) * sum_hw  <x_hw, y_hw> / (|x_hw| |y_hw|)                                      (eq 9)
    L_{i,l}  = 1/K_P * sum_j -log( exp(s(f,p_j)/tau) / (exp(s(f,p_j)/tau) + sum_k exp(s(f,n_k)/tau)) )  (eq 8)
    L_CL     = 1/(N L) * sum_i sum_l L_{i,l};     L_SR = L1 + alpha * L_CL, alpha = 1                 (eqs 10, 11)

The paper's alpha = 1 lowered PSNR-Y by several dB against L1 alone in the library's loss study; the
library hands out alpha = 0.01 where it picks the weight (the numbers: ``docs/choosing-a-loss.md`` and
``docs/loss-study.md`` on the documentation site, ``benchmarks/results/loss_study*.md`` in the
repository).

E_D is trained GAN-like, one step per generator step, with the contrastive discriminator loss of eq 7
(one real against the batch of fakes and vice versa, a softmax cross-entropy).

Where this implementation departs from the authors' released code, on purpose:

* the generator-side pass keeps autograd through the (frozen) discriminator, so the SR network does
  learn from L_CL (the released code runs that pass under ``no_grad``, which makes the term a
  constant); the discriminator's parameters get no gradient from it;
* the discriminator runs in eval mode in that pass: BatchNorm uses its running statistics and does not
  update them (features then do not depend on what else is in the batch).

Where it differs by default but offers the released code's form as an option (each documented where
it is offered, and tested against a re-implementation of the released code):

* eq 7 on patch logits: per position by default, ``form='flattened'`` / ``PCLTrainer(discriminator_form=
  'flattened')`` pools all ``B x 16`` logits as the released code does;
* the samples: ``FrequencyContrastiveLoss(sample_form='authors')`` (per-batch rectangular blurs,
  border-keeping sharpening, 8-bit rounding, the LR negative upsampled with ``align_corners=True``
  and clamped);
* the discriminator's optimiser: a constant 1e-4 by default; ``PCLTrainer(lr=..., scheduler=...)``
  takes the generator's learning rate and, if wanted, a schedule;
* ``PCLTrainer(augment_discriminator=True)``: sharpened copies as reals and blurred copies as fakes in
  the discriminator step (the authors' RCAN script's ``--contras_D_train``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._range import check_value_range_once
from .._validation import (
    REDUCTIONS,
    autocast_disabled,
    check_bool,
    check_choice,
    check_eps,
    check_feature_maps,
    check_image_pair,
    check_layer_indices,
    check_logits,
    check_lr_image,
    check_positive_int,
    check_reduction,
    check_temperature,
    compute_dtype,
    module_dtype,
)
from ..embeddings.wavelet_discriminator import PCL_FEATURE_LAYERS
from ..samplers import (
    DEFAULT_BLUR_KERNEL_SIZES,
    DEFAULT_BLUR_SIGMA,
    DEFAULT_SHARPEN_FACTOR,
    RandomGaussianBlur,
    RandomSharpen,
)
from ..utils import training_mode
from .ratio_contrastive import upsample_negative

__all__ = [
    "contrastive_discriminator_loss",
    "frequency_contrastive_loss",
    "FrequencyContrastiveLoss",
]

PCL_REDUCTIONS = tuple(r for r in REDUCTIONS if r != "sum")  # eq 10 is a mean; no sum
DISCRIMINATOR_FORMS = ("per_position", "flattened")
SAMPLE_FORMS = ("library", "authors")
Features = Tensor | Sequence[Tensor]
# Lower bound of the feature norms in the cosine (eq 9). The gradient of x / max(|x|, eps) is up to
# 1 / eps where |x| < eps (a flat image has all-zero detail features), so eps bounds it; 1e-4 is a
# normal float16 number (the normalisation itself runs in float32) and keeps the backward through a
# float16 discriminator finite. Feature vectors of real images have norms far above it.
COSINE_EPS = 1e-4


# ------------------------------------------------------------------------------------------------
# eq 7: the discriminator's loss
# ------------------------------------------------------------------------------------------------
def contrastive_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, *, form: str = "per_position") -> Tensor:
    r"""Contrastive discriminator loss of eq 7 (Yu et al.'s one-against-a-batch softmax cross-entropy).

    Every real logit is classified against all fake logits (target: the real one), and every negated
    fake logit against all negated real logits::

        L_D = mean_i [ logsumexp(r_i, f_1..f_B) - r_i ] + mean_j [ logsumexp(-f_j, -r_1..-r_B) + f_j ]

    The paper writes eq 7 as the log-likelihood to maximise; this is its negative, to minimise. Patch
    discriminators give several logits per image (for :class:`WaveletDiscriminator`, one per 4x4 cell);
    dimension 0 is the batch and ``form`` says what a logit is contrasted with:

    * ``'per_position'`` (default): each position with the same position of the other batch (B
      logits), then everything is averaged. Eq 7 is written per image; a cell of one image is
      evidence about that region, and comparing it with other images' cells at other places mixes
      regions of different content.
    * ``'flattened'``: the authors' code (``'patchD'``): all ``B x P`` logits of each side form one
      set, so every real cell is classified against every fake cell of the batch.

    Args:
        real_logits: ``(B_real, ...)`` logits of the HR images.
        fake_logits: ``(B_fake, ...)`` logits of the SR images, same trailing shape and device.
        form: ``'per_position'`` or ``'flattened'`` (see above).

    Returns:
        Scalar, float32 (float64 for float64 logits).

    Example:
        >>> real, fake = torch.tensor([2.0]), torch.tensor([0.0])
        >>> contrastive_discriminator_loss(real, fake)  # 2 * log(1 + e^(0 - 2))
        tensor(0.2539)
    """
    check_logits(real_logits, "real_logits")
    check_logits(fake_logits, "fake_logits")
    if real_logits.shape[1:] != fake_logits.shape[1:] or real_logits.device != fake_logits.device:
        raise ValueError(
            "real_logits and fake_logits must share the shape after the batch dimension and the device, got "
            f"{tuple(real_logits.shape)} on {real_logits.device} and {tuple(fake_logits.shape)} on {fake_logits.device}"
        )
    check_choice(form, "form", DISCRIMINATOR_FORMS)
    dtype = compute_dtype(real_logits, fake_logits)
    if form == "flattened":  # one set of B x P logits per side: (B_real P, 1), (B_fake P, 1)
        r, f = real_logits.to(dtype).reshape(-1, 1), fake_logits.to(dtype).reshape(-1, 1)
    else:
        r = real_logits.to(dtype).reshape(real_logits.shape[0], -1)  # (B_real, P)
        f = fake_logits.to(dtype).reshape(fake_logits.shape[0], -1)  # (B_fake, P)
    # real half: row i holds [r_i, f_1..f_B] per position; the target is the first entry
    fake_lse = torch.logsumexp(f, dim=0, keepdim=True)  # (1, P)
    real_half = torch.logaddexp(r, fake_lse) - r
    real_lse = torch.logsumexp(-r, dim=0, keepdim=True)
    fake_half = torch.logaddexp(-f, real_lse) + f
    return real_half.mean() + fake_half.mean()


# ------------------------------------------------------------------------------------------------
# eqs 8-10 on precomputed features
# ------------------------------------------------------------------------------------------------
def _as_list(x: object, name: str) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, Tensor) for t in x):
        return list(x)
    raise TypeError(f"{name} must be a tensor or a non-empty list of tensors (one per layer), got {type(x).__name__}")


def _mean_cosine(anchor: Tensor, samples: Tensor, dtype: torch.dtype, eps: float) -> Tensor:
    """eq 9 for every (image, sample): ``(N, C, H, W)`` x ``(N, K, C, H, W)`` -> ``(N, K)``.

    The cosine of two C-vectors is the dot product of the unit vectors, so both sides are normalised
    along C once (``x / max(|x|, eps)``: a zero vector has cosine 0 with everything) and one
    contraction sums over C and the pixels; no ``(N, K, C, H, W)`` product is materialised.
    """
    a = F.normalize(anchor.to(dtype), dim=1, eps=eps)
    s = F.normalize(samples.to(dtype), dim=2, eps=eps)
    hw = anchor.shape[-2] * anchor.shape[-1]
    return torch.einsum("nchw,nkchw->nk", a, s) / hw


def frequency_contrastive_loss(
    anchor: Features,
    positives: Features,
    negatives: Features,
    *,
    temperature: float = 1.0,
    reduction: str = "mean",
    eps: float = COSINE_EPS,
) -> Tensor:
    r"""PCL's contrastive loss (eqs 8-10) on precomputed feature maps.

    Args:
        anchor: the SR image's features, ``(N, C_l, H_l, W_l)`` per layer l (a tensor or a list of L).
        positives: ``(N, K_P, C_l, H_l, W_l)`` per layer: features of the positives (HR and its
            sharpened copies).
        negatives: ``(N, K_N, C_l, H_l, W_l)`` per layer: features of the negatives.
        temperature: tau of eq 8, default 1.0 (the authors' code; the paper gives no value).
        reduction: ``'mean'`` (default): eq 10, the mean over images and layers; ``'none'``: the
            ``(N,)`` per-image losses (mean over layers).
        eps: lower bound of the feature-vector norms in the cosine (eq 9), default 1e-4: it bounds
            the gradient where a feature vector is (near) zero, e.g. for a flat image, by ``1 / eps``.

    Returns:
        Scalar (or ``(N,)``), float32 (float64 if the anchor is float64); computed in float32 for
        float16 / bfloat16 features. Gradients flow to every input that requires them.

    Each term equals ``log(1 + sum_k exp((s(f, n_k) - s(f, p_j)) / tau))``; as cosines lie in
    [-1, 1], it is at least ``log(1 + K_N exp(-2 / tau))``, reached when the anchor's features point
    like every positive's and opposite to every negative's, pixel by pixel.

    Example:
        >>> f = torch.randn(2, 8, 4, 4, requires_grad=True)
        >>> p, n = torch.randn(2, 4, 8, 4, 4), torch.randn(2, 4, 8, 4, 4)
        >>> loss = frequency_contrastive_loss([f], [p], [n])
        >>> loss.backward()
        >>> frequency_contrastive_loss(f, p, n, reduction="none").shape
        torch.Size([2])
    """
    anchors = _as_list(anchor, "anchor")
    pos = _as_list(positives, "positives")
    neg = _as_list(negatives, "negatives")
    check_feature_maps(anchors, pos, neg)
    temperature = check_temperature(temperature)
    check_reduction(reduction, PCL_REDUCTIONS)
    eps = check_eps(eps)
    dtype = compute_dtype(*anchors)
    total = None
    with autocast_disabled(anchors[0].device.type):  # autocast would run einsum in 16 bits
        for a, p, n in zip(anchors, pos, neg):
            s_pos = _mean_cosine(a, p, dtype, eps) / temperature  # (N, K_P)
            s_neg = _mean_cosine(a, n, dtype, eps) / temperature  # (N, K_N)
            negative_mass = torch.logsumexp(s_neg, dim=1, keepdim=True)  # log sum_k exp(s(f, n_k) / tau)
            per_image = (torch.logaddexp(s_pos, negative_mass) - s_pos).mean(dim=1)  # eq 8, (N,)
            total = per_image if total is None else total + per_image
    per_image = total / len(anchors)  # type: ignore[operator]
    return per_image.mean() if reduction == "mean" else per_image


# ------------------------------------------------------------------------------------------------
# the module: samples, embedding, loss
# ------------------------------------------------------------------------------------------------
class FrequencyContrastiveLoss(nn.Module):
    r"""PCL's generator-side contrastive loss (Wu et al., eqs 8-10) with its samples and embedding.

    ``forward(sr, hr, lr=None)``: positives = ``hr`` and ``num_positives - 1`` sharpened copies
    (:class:`~contrastive_sr_losses.samplers.RandomSharpen`), negatives = ``num_negatives`` blurred
    copies (:class:`~contrastive_sr_losses.samplers.RandomGaussianBlur`), of which the first is
    replaced by the bicubic-upsampled ``lr`` when ``lr_negative=True``; all are embedded by
    ``discriminator`` and compared with ``sr``'s embedding by :func:`frequency_contrastive_loss`.

    Gradients reach ``sr`` through the discriminator, whose parameters get none from this loss (they
    are passed detached through ``torch.func.functional_call``), so it needs no ``requires_grad_``
    switching and works both with a discriminator trained alongside (:class:`PCLTrainer`) and with a
    pretrained, frozen one (``FrequencyContrastiveLoss(disc.requires_grad_(False))``, the paper's own
    suggestion to avoid the GAN-like training). The discriminator runs in eval mode (BatchNorm with its
    running statistics, not updated); the module keeps it in eval mode when put in training mode, and
    a discriminator found in training mode is switched to eval for the call and restored after it.

    Args:
        discriminator: the embedding, e.g.
            :class:`~contrastive_sr_losses.embeddings.WaveletDiscriminator`; any module called as
            ``discriminator(x, layers=layers, return_logits=False)`` returning a list of feature maps.
        num_positives: K_P, positives per image *including* ``hr`` (>= 1); default 4, the paper's
            K_P and the authors' code's layout (HR + 3 sharpened). The paper's text can also be read
            as HR plus K_P sharpened copies: pass 5 for that.
        num_negatives: K_N, negatives per image including the LR one (>= 1); default 4 (the paper's).
        layers: discriminator blocks whose outputs are compared, default ``(0, 2, 4, 6)`` (the
            stride-1 blocks of :class:`WaveletDiscriminator`: "the first 4 intermediate layers", L = 4).
        temperature: tau of eq 8, default 1.0 (the authors' code).
        lr_negative: use the bicubic-upsampled LR input as one of the negatives (then ``lr`` is
            required); default False (the paper's full method, its table 4 config 6, uses generated
            negatives only; the authors' released code uses LR + 3 blurred).
        value_range: white of the images (1.0 for [0, 1], 255.0 for [0, 255]); sharpened copies are
            clamped to ``[0, value_range]``. The discriminator sees the images divided by
            ``value_range`` (here and in :class:`PCLTrainer`'s step) and the loss is multiplied by it,
            so it scales like L1 and ``L1 + alpha * loss`` is the same objective in either range
            (``None``: no clamping, no scaling).
        sharpen_factor, blur_sigma, blur_kernel_sizes: ranges of the samplers, defaults from the
            authors' code (``(0.5, 3.0)``, ``(0.1, 2.0)``, ``(3, 5, 7, 9, 11)``).
        sample_form: ``'library'`` (default) or ``'authors'``: how the samples are made. ``'authors'``
            is the released code: one blur per copy for the whole batch with independently drawn
            kernel height and width, sharpening that leaves the 1-pixel border as it is, both rounded
            to 8 bits, and the LR negative upsampled with ``align_corners=True`` and clamped. The
            library's form draws per image, square kernels, every pixel sharpened, no rounding, and
            upsamples the LR with ``align_corners=False`` (the LR images' own geometry); the module
            docstring of :mod:`contrastive_sr_losses.samplers` says why.
        reduction: ``'mean'`` (eq 10, default) or ``'none'`` (``(N,)``).
        generator_gradient: ``True`` (default): ``sr``'s embedding keeps its graph, so the SR network
            learns from L_CL (eq 11 as the paper writes it). ``False``: the authors' released code, which
            embeds ``sr`` under ``torch.no_grad()``: the same value is returned (to log) but ``sr`` gets no
            gradient from it, so the network trains on the other terms (L1) alone; the discriminator still
            trains through :class:`PCLTrainer`. The published PCL numbers come from this form. Default
            ``True`` because a term that sends no gradient is not a training loss; note that with
            ``True`` and alpha >= 0.1 the library's loss study measured large PSNR-Y losses (see
            ``docs/choosing-a-loss.md``).

    Shape:
        - sr, hr: ``(N, C, H, W)``; lr: ``(N, C, h, w)`` (any size; upsampled to ``H x W``).
        - output: scalar, or ``(N,)`` with ``reduction='none'``.

    Example:
        >>> from contrastive_sr_losses.embeddings import WaveletDiscriminator
        >>> criterion = FrequencyContrastiveLoss(WaveletDiscriminator().requires_grad_(False))  # frozen E_D
        >>> sr = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> # eq 11 with alpha 0.01, not the paper's 1: in the library's loss study alpha 1 lowered PSNR-Y by
        >>> # several dB against L1 alone (docs/choosing-a-loss.md); check the term's size with gradient_balance
        >>> loss = torch.nn.functional.l1_loss(sr, hr) + 0.01 * criterion(sr, hr)
        >>> loss.backward()
        >>> sr.grad.abs().sum() > 0
        tensor(True)
    """

    def __init__(
        self,
        discriminator: nn.Module,
        num_positives: int = 4,
        num_negatives: int = 4,
        layers: Sequence[int] = PCL_FEATURE_LAYERS,
        temperature: float = 1.0,
        lr_negative: bool = False,
        *,
        value_range: float | None = 1.0,
        sharpen_factor: tuple[float, float] = DEFAULT_SHARPEN_FACTOR,
        blur_sigma: tuple[float, float] = DEFAULT_BLUR_SIGMA,
        blur_kernel_sizes: Sequence[int] = DEFAULT_BLUR_KERNEL_SIZES,
        sample_form: str = "library",
        reduction: str = "mean",
        generator_gradient: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(discriminator, nn.Module):
            raise TypeError(f"discriminator must be an nn.Module, got {type(discriminator).__name__}")
        self.generator_gradient = check_bool(generator_gradient, "generator_gradient", yaml_hint=False)
        self.discriminator = discriminator.eval()
        self.num_positives = check_positive_int(num_positives, "num_positives")
        self.num_negatives = check_positive_int(num_negatives, "num_negatives")
        self.layers = check_layer_indices(discriminator, layers)
        self.temperature = check_temperature(temperature)
        self.lr_negative = check_bool(lr_negative, "lr_negative", yaml_hint=False)
        self.reduction = check_reduction(reduction, PCL_REDUCTIONS)
        self.sample_form = check_choice(sample_form, "sample_form", SAMPLE_FORMS)
        authors = sample_form == "authors"
        if authors and value_range is None:
            raise ValueError("sample_form='authors' rounds the samples to 8 bits of [0, value_range]: give a value_range")
        num_blurred = self.num_negatives - int(lr_negative)
        # Samplers exist only when they make copies; their arguments are checked either way.
        sharpen = RandomSharpen(
            max(1, self.num_positives - 1), factor=sharpen_factor, value_range=value_range,
            border="keep" if authors else "reflect", quantize=authors,
        )
        blur = RandomGaussianBlur(
            max(1, num_blurred), sigma=blur_sigma, kernel_sizes=blur_kernel_sizes,
            per_batch=authors, rectangular=authors, quantize=authors, value_range=value_range or 1.0,
        )
        self.sharpen = sharpen if self.num_positives > 1 else None
        self.blur = blur if num_blurred > 0 else None
        self.value_range = sharpen.value_range

    def to_unit_range(self, x: Tensor) -> Tensor:
        """``x / value_range``: what the discriminator sees (no pass over ``x`` for a range of 1)."""
        v = self.value_range
        return x if v is None or v == 1.0 else x / v

    def train(self, mode: bool = True) -> FrequencyContrastiveLoss:
        super().train(mode)
        self.discriminator.eval()
        return self

    def make_samples(
        self, hr: Tensor, lr: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """The positives ``(N, K_P, C, H, W)`` (``hr`` first) and negatives ``(N, K_N, C, H, W)`` (the
        upsampled ``lr`` first when ``lr_negative``), without gradient, in ``hr``'s dtype."""
        with torch.no_grad():
            positives = [hr.unsqueeze(1)]
            if self.sharpen is not None:
                positives.append(self.sharpen(hr, generator=generator))
            negatives = []
            if self.lr_negative:
                authors = self.sample_form == "authors"
                clamp_to = self.value_range if authors else None
                up = upsample_negative(lr, hr, align_corners=authors, clamp_to=clamp_to)  # type: ignore[arg-type]
                negatives.append(up.unsqueeze(1))
            if self.blur is not None:
                negatives.append(self.blur(hr, generator=generator))
            return torch.cat(positives, dim=1), torch.cat(negatives, dim=1)

    def _check_lr(self, lr: Tensor | None, sr: Tensor) -> None:
        if self.lr_negative and lr is None:
            raise ValueError(
                "lr_negative=True uses the bicubic-upsampled LR input as a negative: call criterion(sr, hr, lr)"
            )
        if not self.lr_negative and lr is not None:
            raise ValueError(
                "lr was given but lr_negative=False would ignore it: build the loss with lr_negative=True "
                "to use it as a negative, or do not pass lr"
            )
        if lr is not None:
            check_lr_image(lr, sr)

    def embed(self, x: Tensor) -> list[Tensor]:
        """Features of ``x`` at ``self.layers``, differentiable w.r.t. ``x`` only (eval mode)."""
        disc = self.discriminator
        detached = {name: p.detach() for name, p in disc.named_parameters()}
        with training_mode(disc, False):
            return list(
                torch.func.functional_call(disc, detached, (x,), {"layers": self.layers, "return_logits": False})
            )

    def forward(
        self, sr: Tensor, hr: Tensor, lr: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        check_image_pair(sr, hr)
        self._check_lr(lr, sr)
        check_value_range_once(self, sr, hr, self.value_range)
        positives, negatives = self.make_samples(hr, lr, generator)
        n, k_pos = positives.shape[:2]
        dtype = module_dtype(self.discriminator, compute_dtype(sr, hr))
        with torch.set_grad_enabled(self.generator_gradient and torch.is_grad_enabled()):
            anchor = self.embed(self.to_unit_range(sr.to(dtype)))
        with torch.no_grad():
            samples = self.to_unit_range(torch.cat([positives, negatives], dim=1).flatten(0, 1).to(dtype))
            sample_features = [f.unflatten(0, (n, -1)) for f in self.embed(samples)]
        loss = frequency_contrastive_loss(
            anchor,
            [f[:, :k_pos] for f in sample_features],
            [f[:, k_pos:] for f in sample_features],
            temperature=self.temperature,
            reduction=self.reduction,
        )
        v = self.value_range
        return loss if v is None or v == 1.0 else loss * v

    def extra_repr(self) -> str:
        return (
            f"num_positives={self.num_positives}, num_negatives={self.num_negatives}, layers={self.layers}, "
            f"temperature={self.temperature}, lr_negative={self.lr_negative}, value_range={self.value_range}, "
            f"sample_form={self.sample_form!r}, reduction={self.reduction!r}, generator_gradient={self.generator_gradient}"
        )
