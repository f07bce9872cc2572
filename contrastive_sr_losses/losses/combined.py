"""One loss object for a whole objective: a weighted sum of the library's losses, by name.

The loss study's best objective (L1 + 0.1 x pixel contrastive + 1.5 x high-pass) is one line,
and it fits a framework's single loss slot through its adapter (``CSRCombinedLoss``).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from .registry import LOSSES, build_loss, build_trainer, term_needs_lr

__all__ = ["CombinedLoss", "TermSpec"]

#: A term of :class:`CombinedLoss`: its weight, or ``(weight, {option: value})``.
TermSpec = float | tuple[float, Mapping[str, Any]]


def _parse_term(name: object, spec: object) -> tuple[str, float, dict[str, Any]]:
    """Validate one ``name: spec`` pair; return ``(name, weight, options)``."""
    if not isinstance(name, str) or name not in LOSSES:
        raise KeyError(f"CombinedLoss: unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    options: object = {}
    weight = spec
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2:
            raise ValueError(
                f"CombinedLoss term {name!r}: expected a weight or (weight, {{options}}), got a sequence of {len(spec)}"
            )
        weight, options = spec
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"CombinedLoss term {name!r}: the weight must be a number, got {type(weight).__name__} {weight!r}")
    if not (math.isfinite(float(weight)) and float(weight) > 0):
        raise ValueError(f"CombinedLoss term {name!r}: the weight must be a finite number > 0, got {weight!r}")
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(
            f"CombinedLoss term {name!r}: the options must be a mapping of option name -> value, got {options!r}"
        )
    return name, float(weight), dict(options)


class CombinedLoss(nn.Module):
    r"""A weighted sum of the library's losses, named as in the registry (:data:`~contrastive_sr_losses.losses.registry.LOSSES`).

    ``CombinedLoss({"l1": 1.0, "pixel_contrastive": 0.1, "high_pass": 1.5})(sr, hr)`` is
    ``F.l1_loss(sr, hr) + 0.1 * PixelContrastiveLoss()(sr, hr) + 1.5 * GaussianHighPassLoss()(sr, hr)``:
    the loss study's best objective (Zhou et al. eq 11 plus G-IDRN's high-pass term at 0.4 / 0.6).

    Args:
        terms: loss name -> weight, or -> ``(weight, {option: value})`` with the loss's constructor
            options, e.g. ``{"l1": 1.0, "pixel_contrastive": (0.1, {"region": 4})}``. Names:
            ``l1``, ``mse``, ``pixel_contrastive``, ``high_pass``, ``random_conv`` (needs ``lr``),
            ``vgg_contrastive`` (needs ``lr``), ``pcl``. Weights are finite numbers > 0.
        pcl_trainer: for a ``pcl`` term, a function ``FrequencyContrastiveLoss -> PCLTrainer``
            (default ``PCLTrainer(loss)``: the discriminator's own Adam at 1e-4). In training mode
            every call makes one discriminator step first; in eval mode the loss alone is computed.
        device: where to build the terms (and PCL's discriminator, before its optimizer is made).

    Shape:
        ``sr``, ``hr``: ``(N, C, H, W)``; ``lr``: ``(N, C, H / s, W / s)``, the LR input batch, needed
        only by the terms that use it (``random_conv``, ``vgg_contrastive``, ``pcl`` with
        ``lr_negative=True``). Returns a scalar, in float32 (float64 for float64 inputs).

    Attributes:
        losses: ``nn.ModuleDict`` name -> loss module.
        weights: name -> weight.
        last_values: name -> the term's last unweighted value, detached, on the device (reading it
            costs no host sync until you convert it, e.g. for a log line).
        trainers: name -> ``PCLTrainer`` of a ``pcl`` term.

    Example:
        >>> import torch.nn.functional as F
        >>> from contrastive_sr_losses import CombinedLoss, GaussianHighPassLoss, PixelContrastiveLoss
        >>> criterion = CombinedLoss({"l1": 1.0, "pixel_contrastive": 0.1, "high_pass": 1.5})
        >>> sr, hr = torch.rand(2, 3, 16, 16, requires_grad=True), torch.rand(2, 3, 16, 16)
        >>> loss = criterion(sr, hr)
        >>> loss.backward()
        >>> by_hand = F.l1_loss(sr, hr) + 0.1 * PixelContrastiveLoss()(sr, hr) + 1.5 * GaussianHighPassLoss()(sr, hr)
        >>> torch.allclose(loss, by_hand)
        True
        >>> sorted(criterion.last_values)
        ['high_pass', 'l1', 'pixel_contrastive']
    """

    def __init__(
        self,
        terms: Mapping[str, TermSpec],
        *,
        pcl_trainer: Callable[[nn.Module], Any] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(terms, Mapping) or not terms:
            raise ValueError(f"CombinedLoss: terms must be a non-empty mapping of loss name -> weight, got {terms!r}")
        parsed = [_parse_term(name, spec) for name, spec in terms.items()]
        self.weights: dict[str, float] = {name: weight for name, weight, _ in parsed}
        self.options: dict[str, dict[str, Any]] = {name: options for name, _, options in parsed}
        losses = {}
        for name, _, options in parsed:
            try:
                losses[name] = build_loss(name, **options)
            except (TypeError, ValueError) as err:
                raise type(err)(f"CombinedLoss term {name!r}: {err}") from err
        self.losses = nn.ModuleDict(losses)
        if device is not None:
            self.losses.to(device)
        self.trainers: dict[str, Any] = {}
        for name in self.losses:
            if LOSSES[name].trained:
                make = pcl_trainer or functools.partial(build_trainer, name)
                self.trainers[name] = make(self.losses[name])
        self.last_values: dict[str, Tensor] = {}

    @property
    def needs_lr(self) -> bool:
        """Whether a term uses the LR input batch (pass ``lr=`` to :meth:`forward`)."""
        return any(self._term_needs_lr(name) for name in self.losses)

    def _term_needs_lr(self, name: str) -> bool:
        return term_needs_lr(name, self.losses[name])

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None, *, terms: dict[str, Tensor] | None = None) -> Tensor:
        """The weighted sum of the terms on ``(sr, hr)`` (and ``lr`` for the terms that use it).

        ``terms``, when given, is filled with each term's *weighted* value, graph kept (for
        :func:`~contrastive_sr_losses.gradient_balance`); :attr:`last_values` gets the unweighted
        values, detached."""
        values: dict[str, Tensor] = {}
        for name, loss in self.losses.items():
            if self._term_needs_lr(name) and lr is None:
                raise ValueError(
                    f"CombinedLoss term {name!r} needs the LR input batch: call criterion(sr, hr, lr) "
                    "(its negative is the bicubic-upsampled LR image)"
                )
            if name in self.trainers:
                call = self.trainers[name] if self.training else loss
                values[name] = call(sr, hr, lr if loss.lr_negative else None)
            elif LOSSES[name].needs_lr:
                values[name] = loss(sr, hr, lr=lr)
            else:
                values[name] = loss(sr, hr)
        weighted = {
            name: self.weights[name] * (v if v.dtype in (torch.float32, torch.float64) else v.float())
            for name, v in values.items()
        }
        if terms is not None:
            terms.update(weighted)
        self.last_values = {name: v.detach() for name, v in values.items()}
        total = None
        for v in weighted.values():
            total = v if total is None else total + v
        assert total is not None
        return total

    def trainer_state(self) -> dict[str, Any]:
        """What the terms train besides the SR network (PCL: discriminator optimizer, step count);
        save it with your checkpoint next to :meth:`state_dict` (which holds the modules)."""
        return {name: trainer.state_dict() for name, trainer in self.trainers.items()}

    def load_trainer_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`trainer_state`."""
        for name, trainer in self.trainers.items():
            trainer.load_state_dict(state[name])

    def extra_repr(self) -> str:
        return ", ".join(f"{name}: {w:g}" + (f" {self.options[name]}" if self.options[name] else "")
                         for name, w in self.weights.items())
