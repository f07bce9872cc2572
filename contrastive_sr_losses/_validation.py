"""Input validation shared by every loss of the package.

Each check raises a real exception (``TypeError`` for a wrong kind of value, ``ValueError`` for a
wrong value) whose message names the argument and says what was expected and what was received.
None of them looks at tensor *values* (no ``.min()``/``.max()``), so none forces a device sync.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch
from torch import Tensor

__all__ = [
    "check_image",
    "check_image_pair",
    "check_positive_float",
    "check_positive_int",
    "check_choice",
    "compute_dtype",
    "module_dtype",
]


def check_image(x: object, name: str = "x") -> Tensor:
    """Check that ``x`` is a non-empty floating ``(N, C, H, W)`` tensor; return it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be 4-D of shape (N, C, H, W), got {x.dim()}-D shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), got {x.dtype}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    return x


def check_image_pair(sr: object, hr: object, names: tuple[str, str] = ("sr", "hr")) -> None:
    """Check that ``sr`` and ``hr`` are non-empty floating ``(N, C, H, W)`` tensors of one shape on one device.

    Different floating dtypes are accepted (under autocast a network's bfloat16 output meets a float32
    target); losses compute in :func:`compute_dtype` of the pair.
    """
    a, b = check_image(sr, names[0]), check_image(hr, names[1])
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape (N, C, H, W), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.device != b.device:
        raise ValueError(
            f"{names[0]} and {names[1]} must be on the same device, got {a.device} and {b.device} "
            "(the loss never moves data between devices: move one of them first)"
        )


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """The dtype a loss computes in: float64 if any input is float64, float32 otherwise (fp16/bf16 included)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def module_dtype(module: object, fallback: torch.dtype) -> torch.dtype:
    """The dtype of a module's first floating parameter (inputs are cast to it before the module is
    called), else ``fallback`` (modules without parameters, whose buffers follow the input dtype)."""
    if isinstance(module, torch.nn.Module):
        for t in module.parameters():
            if t.is_floating_point():
                return t.dtype
    return fallback


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_positive_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_choice(value: object, name: str, choices: Collection[str]) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value  # type: ignore[return-value]
