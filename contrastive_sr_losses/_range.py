"""The value-range guard: a one-time look at the images a range-dependent loss receives.

The pixel contrastive, random-conv and PCL losses give a *different objective* (not just a scaled
one) when the images are in [0, 255] and ``value_range`` says 1 (the default), or when ``sr`` and
``hr`` are in different ranges. On its first call each such loss module reads the images' minimum
and maximum once (one host sync, first call only; never again, never under ``torch.compile``
tracing) and warns once with a :class:`ValueRangeWarning` naming ``value_range`` when:

- ``hr`` looks like [0, 255] (its maximum is above 2) while ``value_range`` is 1, or ``hr`` looks
  like [0, 1] (its maximum at most 1.5) while ``value_range`` is 100 or more;
- ``sr`` and ``hr`` look like different ranges (one's maximum above 20, the other's at most 1.5).

Turn it off with ``contrastive_sr_losses.set_value_range_check(False)`` or the environment variable
``CSR_VALUE_RANGE_CHECK=0``.

Example:
    >>> import warnings
    >>> from contrastive_sr_losses import PixelContrastiveLoss, ValueRangeWarning
    >>> hr = 255 * torch.rand(1, 3, 16, 16)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = PixelContrastiveLoss()(hr.clone(), hr)
    >>> [issubclass(w.category, ValueRangeWarning) for w in caught]
    [True]
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import Tensor

__all__ = ["ValueRangeWarning", "set_value_range_check", "value_range_check_enabled", "check_value_range_once"]

_ENABLED = os.environ.get("CSR_VALUE_RANGE_CHECK", "1") != "0"


class ValueRangeWarning(UserWarning):
    """The images a loss received do not look like its ``value_range`` (or ``sr`` and ``hr`` differ)."""


def set_value_range_check(enabled: bool) -> None:
    """Turn the first-call value-range check of every loss on or off (default on, unless the
    environment sets ``CSR_VALUE_RANGE_CHECK=0``)."""
    global _ENABLED
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    _ENABLED = enabled


def value_range_check_enabled() -> bool:
    """Whether the first-call value-range check is on."""
    return _ENABLED


def _problems(sr_max: float, hr_max: float, value_range: float) -> list[str]:
    found: list[str] = []
    if not (math.isfinite(sr_max) and math.isfinite(hr_max)):
        return found  # NaN / Inf say nothing about the range (the losses report non-finite values themselves)
    if value_range <= 1.5 and hr_max > 2.0:
        found.append(
            f"hr looks like [0, 255] (its maximum is {hr_max:.4g}) while value_range={value_range:g}: "
            "pass value_range=255.0 to the loss, or divide the images by 255"
        )
    elif value_range >= 100 and 0 < hr_max <= 1.5:
        found.append(
            f"hr looks like [0, 1] (its maximum is {hr_max:.4g}) while value_range={value_range:g}: "
            "pass value_range=1.0 (the default) to the loss, or scale the images to [0, value_range]"
        )
    if (sr_max > 20 and hr_max <= 1.5) or (hr_max > 20 and sr_max <= 1.5):
        found.append(
            f"sr and hr look like different ranges (maxima {sr_max:.4g} and {hr_max:.4g}): bring both to the "
            f"range value_range={value_range:g} says"
        )
    return found


def check_value_range_once(owner: object, sr: Tensor, hr: Tensor, value_range: float | None) -> None:
    """On ``owner``'s first call, warn once if ``sr`` / ``hr`` do not look like ``value_range``.

    Costs one host sync on the first call of each loss module and nothing afterwards (an attribute
    flag on ``owner``). Skipped while ``torch.compile`` traces, and when turned off.
    """
    if getattr(owner, "_value_range_checked", False) or not _ENABLED:
        return
    if not (isinstance(sr, Tensor) and isinstance(hr, Tensor) and sr.numel() and hr.numel()):
        return  # the loss's own validation reports it
    if torch.compiler.is_compiling() or "meta" in (sr.device.type, hr.device.type):
        return  # no values to read (tracing, shape inference)
    object.__setattr__(owner, "_value_range_checked", True)
    if value_range is None:
        return
    try:
        with torch.no_grad():
            sr_max, hr_max = torch.stack([sr.detach().amax().float(), hr.detach().amax().float()]).tolist()
    except (NotImplementedError, RuntimeError):  # tensors without readable data (fake / traced)
        return
    problems = _problems(sr_max, hr_max, float(value_range))
    if problems:
        warnings.warn(
            f"{type(owner).__name__}: " + "; ".join(problems)
            + " (checked once, on the first call; contrastive_sr_losses.set_value_range_check(False) turns it off)",
            ValueRangeWarning,
            stacklevel=3,
        )
