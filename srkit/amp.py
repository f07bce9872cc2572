"""A first-step check of automatic mixed precision (``--amp bf16|fp16``) for ``examples/train.py``.

The AMP paths (the network, every loss and PCL's discriminator under ``torch.autocast``) have not
all been run on a GPU, so before the first AMP step :func:`check_amp_first_step` evaluates the
first batch twice, under autocast and in float32, and stops the run with one line if a value
disagrees beyond :data:`AMP_RTOL` (or is not finite under autocast): a wrong AMP path then fails
before training instead of training silently wrong. Compared: the total loss, each loss term and,
with ``pcl``, the discriminator's eq 7 loss on (hr, sr).

The check changes nothing the run depends on: no gradient, the network and the losses in eval mode
(so no BatchNorm statistics move and PCL makes no discriminator step; its discriminator's BatchNorm
uses running statistics here, batch statistics in its training step), the RNG states forked.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from contrastive_sr_losses.utils import training_mode

from .losses import CompositeLoss
from .runtime import UsageError

__all__ = ["AMP_RTOL", "AMP_ATOL", "check_amp_first_step"]

#: Largest relative difference allowed between a value under autocast and in float32: about ten
#: roundings of the dtype's mantissa (bfloat16 8 bits, float16 11 bits) in the network's output.
AMP_RTOL: dict[torch.dtype, float] = {torch.bfloat16: 0.05, torch.float16: 0.01}
AMP_ATOL = 1e-4  # for values near zero
AMP_NAMES: dict[torch.dtype, str] = {torch.bfloat16: "bf16", torch.float16: "fp16"}
_SEED = 0


def _values(
    model: nn.Module, criterion: CompositeLoss, lr: Tensor, hr: Tensor, dtype: torch.dtype, autocast: bool
) -> dict[str, float]:
    devices = [lr.device] if lr.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad(), training_mode(model, False), training_mode(criterion, False):
        torch.manual_seed(_SEED)  # the losses' random draws (PCL's samples) are the same in both runs
        with torch.autocast(lr.device.type, dtype=dtype, enabled=autocast):
            sr = model(lr)
            total, parts = criterion(sr, hr, lr)
            values = {"total loss": total, **{f"{name} loss": value for name, value in parts.items()}}
            if "pcl" in criterion.trainers:
                from contrastive_sr_losses.losses.pcl import contrastive_discriminator_loss

                disc = criterion.trainers["pcl"].discriminator
                disc_dtype = next(disc.parameters()).dtype
                values["pcl discriminator (eq 7)"] = contrastive_discriminator_loss(
                    disc(hr.to(disc_dtype)), disc(sr.to(disc_dtype))
                )
    return {name: float(value) for name, value in values.items()}


def check_amp_first_step(
    model: nn.Module, criterion: CompositeLoss, lr: Tensor, hr: Tensor, dtype: torch.dtype
) -> str:
    """Compare the first batch's losses under ``torch.autocast(dtype)`` with float32; return a log line.

    Raises :class:`~srkit.runtime.UsageError` (one line, naming ``--amp``) when a value is not finite
    under autocast or differs from float32 by more than ``AMP_RTOL[dtype] * |float32| + AMP_ATOL``.
    Synchronises the device (once). ``model`` is the bare network (not a DDP wrapper: no collectives).

    Example:
        >>> model = torch.nn.Conv2d(3, 3, 3, padding=1)
        >>> lr = hr = torch.rand(2, 3, 8, 8)
        >>> check_amp_first_step(model, CompositeLoss("l1", torch.device("cpu")), lr, hr, torch.bfloat16)
        'amp check: bf16 autocast agrees with float32 on the first batch (largest relative difference ...)'
    """
    amp = _values(model, criterion, lr, hr, dtype, autocast=True)
    ref = _values(model, criterion, lr, hr, dtype, autocast=False)
    flag, rtol = f"--amp {AMP_NAMES[dtype]}", AMP_RTOL[dtype]
    worst = 0.0
    for name, value in amp.items():
        expected = ref[name]
        if not math.isfinite(value):
            raise UsageError(
                f"{flag}: the first batch's {name} is {value} under autocast but {expected:.6g} in float32; "
                "this AMP path does not work on this setup: train with --amp none (and please report it)"
            )
        difference = abs(value - expected)
        worst = max(worst, difference / max(abs(expected), 1e-12))
        if difference > rtol * abs(expected) + AMP_ATOL:
            raise UsageError(
                f"{flag}: the first batch's {name} is {value:.6g} under autocast but {expected:.6g} in float32 "
                f"(relative difference {difference / max(abs(expected), 1e-12):.2g} > {rtol:g}); this AMP path "
                "computes something else on this setup: train with --amp none (and please report it)"
            )
    return (
        f"amp check: {AMP_NAMES[dtype]} autocast agrees with float32 on the first batch (largest relative "
        f"difference {worst:.2g} <= {rtol:g}; compared: {', '.join(amp)})"
    )
