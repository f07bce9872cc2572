"""Input validation shared by every loss of the package.

Each check raises a real exception (``TypeError`` for a wrong kind of value, ``ValueError`` for a
wrong value) whose message names the argument and says what was expected and what was received.
None of them looks at tensor *values* (no ``.min()``/``.max()``), so none forces a device sync.

Hyper-parameters are checked against the ranges below: finite, and where the loss stays a usable
number (outside them it becomes NaN, Inf or a constant 0 in float32, e.g. ``1 / temperature``
overflows for a temperature below 3e-39, a Gaussian of sigma 1e-30 is 0 / 0).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Collection

import torch
from torch import Tensor

__all__ = [
    "check_image",
    "check_image_pair",
    "check_floating",
    "check_lr_image",
    "check_positive_float",
    "check_temperature",
    "check_sigma",
    "check_value_range",
    "check_eps",
    "check_layer_weights",
    "nonfinite_as_nan",
    "autocast_disabled",
    "check_positive_int",
    "check_bool",
    "check_betas",
    "check_loss_weight",
    "check_seed",
    "check_int_pair",
    "check_choice",
    "compute_dtype",
    "module_dtype",
    "check_crop_border",
    "check_y_channels",
    "REDUCTIONS",
    "check_reduction",
    "check_interval",
    "check_kernel_size",
    "check_kernel_sizes",
    "check_generator",
    "check_reflect_padding",
    "check_int_tuple",
    "check_region",
    "check_logits",
    "check_feature_maps",
    "check_layer_indices",
    "check_scale",
]


TEMPERATURE_RANGE = (1e-6, 1e6)  # softmax temperatures; 1/255 and 255 (the [0, 255] conventions) inside
SIGMA_RANGE = (0.25, 1e3)  # Gaussian sigma in pixels: below 0.25 the kernel is [~0, 1, ~0] (loss ~ 0)
VALUE_RANGE_RANGE = (1e-3, 1e6)  # the value of white: 1.0, 255.0, 65535.0 ...
EPS_RANGE = (1e-12, 1.0)  # stabilisers added to a norm or a distance
LOSS_WEIGHT_MAX = 1e6  # a term weighted more than this overflows float32 for losses above ~3e32
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts
REDUCTIONS = ("mean", "sum", "none")  # a loss's reduction over the images of a batch


def check_floating(x: object, name: str) -> Tensor:
    """Check that ``x`` is a floating-point tensor of any shape; return it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64) with values in "
            f"[0, 1], got {x.dtype} (convert integer images with x.float() / 255)"
        )
    return x


def check_image(x: object, name: str = "x", *, channels: int | None = None) -> Tensor:
    """Check that ``x`` is a non-empty floating ``(N, C, H, W)`` tensor (with ``C == channels`` when
    given); return it."""
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
    if x.shape[1] > 4 and min(x.shape[2], x.shape[3]) <= 4 and channels is None:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: this looks like the channels-last layout (N, H, W, C); the losses "
            f"take (N, C, H, W): pass {name}.permute(0, 3, 1, 2) (a channels_last memory format is fine, only the "
            "order of the axes matters)"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must be (N, {channels}, H, W), got shape {tuple(x.shape)}")
    return x


def check_lr_image(lr: object, sr: Tensor, name: str = "lr") -> Tensor:
    """Check an LR input beside ``sr``: a non-empty floating ``(N, C, h, w)`` tensor with ``sr``'s N, C
    and device and ``h <= H``, ``w <= W`` (it is upsampled to ``sr``'s size); return it."""
    check_image(lr, name)
    assert isinstance(lr, Tensor)
    if lr.shape[:2] != sr.shape[:2]:
        raise ValueError(
            f"{name} must have the batch size and channels of sr {tuple(sr.shape[:2])}, got shape {tuple(lr.shape)}"
        )
    if lr.shape[-2] > sr.shape[-2] or lr.shape[-1] > sr.shape[-1]:
        raise ValueError(
            f"{name} must not be larger than sr (it is upsampled to sr's size), got {tuple(lr.shape)} "
            f"for sr {tuple(sr.shape)}"
        )
    if lr.device != sr.device:
        raise ValueError(f"{name} and sr must be on the same device, got {lr.device} and {sr.device}")
    return lr


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


def check_positive_int(value: object, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An ``int`` (not a bool) ``>= minimum`` (and ``<= maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_bool(value: object, name: str, *, yaml_hint: bool = True) -> bool:
    """A real ``bool``: a string such as ``'false'`` (a quoted YAML value) or a number is refused,
    not read as its truth value (``bool('false')`` is True). ``yaml_hint=False``: the short message
    of the library's own constructors (``"<name> must be a bool, got <type>"``)."""
    if not isinstance(value, bool):
        if not yaml_hint:
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        raise TypeError(f"{name} must be a bool (true / false, unquoted in YAML), got {type(value).__name__} {value!r}")
    return value


def check_betas(value: object, name: str = "betas") -> tuple[float, float]:
    """Adam's ``(beta1, beta2)``: two finite numbers in [0, 1)."""
    try:
        items = tuple(value) if not isinstance(value, (str, bytes)) else None  # type: ignore[arg-type]
    except TypeError:
        items = None
    if items is None or any(isinstance(b, bool) or not isinstance(b, numbers.Real) for b in items):
        raise TypeError(f"{name} must be a pair of numbers (beta1, beta2), got {type(value).__name__} {value!r}")
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair of numbers (beta1, beta2), got {len(items)} value(s): {value!r}")
    betas = (float(items[0]), float(items[1]))
    if not all(0.0 <= b < 1.0 for b in betas):  # NaN fails too
        raise ValueError(f"{name} must be two numbers in [0, 1), got {value!r}")
    return betas


def check_loss_weight(value: object, name: str = "loss_weight") -> float:
    """A loss term's weight: a finite number in ``[0, LOSS_WEIGHT_MAX]`` (1e6). 0 is allowed: the term
    is still computed (and a trained embedding, PCL's discriminator, still trains) but adds nothing
    to the loss or its gradient."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    weight = float(value)
    if not (0.0 <= weight <= LOSS_WEIGHT_MAX):  # NaN and Inf fail too
        raise ValueError(f"{name} must be a finite number in [0, {LOSS_WEIGHT_MAX:g}], got {value!r}")
    return weight


def check_seed(value: object, name: str = "seed") -> int:
    """A seed ``torch.Generator.manual_seed`` accepts: an int in ``[-2**63, 2**64 - 1]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    lo, hi = SEED_RANGE
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in [-2**63, 2**64 - 1], got {value}")
    return value


def check_int_pair(value: object, name: str, minimum: int = 1) -> tuple[int, int]:
    """A ``(height, width)``-like pair of ints ``>= minimum``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, torch.Size)):
        raise TypeError(f"{name} must be a pair of ints (H, W), got {type(value).__name__} {value!r}")
    if len(value) != 2:
        raise ValueError(f"{name} must be a pair of ints (H, W), got {len(value)} value(s): {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be a pair of ints (H, W), got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be a pair of ints >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def check_positive_float(
    value: object, name: str, *, minimum: float | None = None, maximum: float | None = None, why: str = ""
) -> float:
    """Check that ``value`` is a finite real number > 0 (and in ``[minimum, maximum]`` when given);
    return it as a float. ``why`` is added to the out-of-range message."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    low = minimum if minimum is not None else 0.0
    high = maximum if maximum is not None else math.inf
    if not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}]{why}, got {value:g}")
    return value


def check_temperature(value: object, name: str = "temperature") -> float:
    """A softmax temperature: finite, in :data:`TEMPERATURE_RANGE` (``1e-6 .. 1e6``)."""
    lo, hi = TEMPERATURE_RANGE
    return check_positive_float(value, name, minimum=lo, maximum=hi, why=" (logits are divided by it)")


def check_sigma(value: object, name: str = "sigma") -> float:
    """A Gaussian standard deviation in pixels: finite, in :data:`SIGMA_RANGE` (``0.25 .. 1000``)."""
    lo, hi = SIGMA_RANGE
    return check_positive_float(value, name, minimum=lo, maximum=hi, why=" pixels")


def check_value_range(value: object, name: str = "value_range") -> float:
    """The value of white in the images (1.0 for [0, 1], 255.0 for [0, 255]): finite, in
    :data:`VALUE_RANGE_RANGE` (``1e-3 .. 1e6``)."""
    lo, hi = VALUE_RANGE_RANGE
    return check_positive_float(value, name, minimum=lo, maximum=hi, why=" (1.0 for [0, 1] images, 255.0 for [0, 255])")


def check_eps(value: object, name: str = "eps") -> float:
    """A stabiliser added to a norm or a distance: finite, in :data:`EPS_RANGE` (``1e-12 .. 1``)."""
    lo, hi = EPS_RANGE
    return check_positive_float(value, name, minimum=lo, maximum=hi)


def check_layer_weights(value: object, name: str = "layer_weights") -> tuple[float, ...]:
    """A non-empty sequence of finite numbers >= 0, at least one of them > 0; returned as floats."""
    try:
        items = tuple(value) if not isinstance(value, (str, bytes)) else None  # type: ignore[arg-type]
    except TypeError:
        items = None
    if items is None or any(isinstance(w, bool) or not isinstance(w, numbers.Real) for w in items):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(value).__name__} {value!r}")
    weights = tuple(float(w) for w in items)
    if not weights or not all(math.isfinite(w) and w >= 0.0 for w in weights) or not any(w > 0 for w in weights):
        raise ValueError(
            f"{name} must be a non-empty sequence of numbers >= 0, finite and not all 0, got {value!r}"
        )
    return weights


def nonfinite_as_nan(*tensors: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Per image ``(N,)``: 0 where every value of every tensor is finite, NaN otherwise.

    Add it to a loss whose computation would swallow an Inf (a ``tanh``, a ratio of two infinite
    distances) so that non-finite input gives NaN as in the other losses. Arithmetic only
    (``x - x`` is 0 or NaN, exactly), no host sync, and no gradient (its derivative is 0).
    """
    out = None
    for t in tensors:
        flag = (t.detach() - t.detach()).flatten(1).to(dtype).sum(1)
        out = flag if out is None else out + flag
    assert out is not None
    return out


def autocast_disabled(device_type: str) -> contextlib.AbstractContextManager[None]:
    """``torch.autocast(device_type, enabled=False)``, or a no-op where autocast does not exist
    (``meta`` tensors, used for shape inference by torch.compile and FlopCounterMode)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def check_choice(value: object, name: str, choices: Collection[str]) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value  # type: ignore[return-value]


def check_crop_border(shape: torch.Size, crop_border: object, min_size: int) -> int:
    """``crop_border``: an int >= 0 that leaves at least ``min_size`` x ``min_size`` pixels of an
    image of ``shape`` (``(..., H, W)``) after cropping it at each border (1: any pixel; SSIM's window
    otherwise); returned."""
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an int >= 0, got {crop_border!r}")
    h, w = shape[-2:]
    if min(h, w) - 2 * crop_border < min_size:
        if min_size == 1:
            raise ValueError(f"crop_border={crop_border} leaves no pixels of a {h}x{w} image")
        raise ValueError(
            f"ssim_y needs at least {min_size}x{min_size} pixels after cropping crop_border={crop_border} "
            f"at each border, got a {h}x{w} image"
        )
    return crop_border


def check_y_channels(x: Tensor, names: str) -> Tensor:
    """An ``(N, C, H, W)`` image scored on its luma: RGB (C = 3) or already one channel (C = 1)."""
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"{names} must be RGB of shape (N, 3, H, W) or one-channel Y / grayscale (N, 1, H, W), got {tuple(x.shape)}"
        )
    return x


def check_reduction(value: object, allowed: Collection[str] = REDUCTIONS) -> str:
    """A loss's ``reduction``: one of ``allowed`` (default :data:`REDUCTIONS`)."""
    return check_choice(value, "reduction", allowed)


def check_interval(value: object, name: str, minimum: float = 0.0) -> tuple[float, float]:
    """A pair ``(low, high)`` of numbers with ``minimum < low <= high < inf`` (a sampling range)."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (minimum < low <= high < float("inf")):
        raise ValueError(f"{name} must be a pair (low, high) with {minimum:g} < low <= high < inf, got {value!r}")
    return low, high


def check_kernel_size(value: object, name: str = "kernel_size") -> int:
    """A centred filter's size: an odd int >= 1."""
    check_positive_int(value, name)
    if value % 2 == 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be odd (the filter is centred), got {value}")
    return value  # type: ignore[return-value]


def check_kernel_sizes(value: object, name: str = "kernel_sizes") -> tuple[int, ...]:
    """A non-empty sequence of odd ints >= 1 (the sizes a sampler draws from)."""
    try:
        sizes = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of odd ints, got {value!r}") from None
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"{name} must be a non-empty sequence of odd ints >= 1, got {value!r}")
    return sizes


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """A ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_reflect_padding(x: Tensor, pad: int, what: str) -> Tensor:
    """An image ``(..., H, W)`` that ``pad`` pixels of reflect padding fit (H and W > ``pad``);
    ``what`` names the filter in the message."""
    h, w = x.shape[-2:]
    if pad >= h or pad >= w:
        raise ValueError(
            f"{what} reflects {pad} pixels at the borders, which needs H and W > {pad}; got an image of {h}x{w}"
        )
    return x


def check_int_tuple(value: object, name: str, minimum: int = 1) -> tuple[int, ...]:
    """A non-empty sequence of ints ``>= minimum`` (e.g. a network's channels or strides), as a tuple."""
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {value!r}") from None
    if not items:
        raise ValueError(f"{name} must not be empty")
    return tuple(check_positive_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))


def check_region(region: object, shape: torch.Size, name: str = "region") -> int:
    """A square region side: an int >= 1 no larger than the image's height and width (``shape``: ``(..., H, W)``)."""
    check_positive_int(region, name)
    h, w = shape[-2:]
    if region > min(h, w):  # type: ignore[operator]
        raise ValueError(
            f"{name} must be <= the image's height and width, got {name}={region} for an image of {h}x{w}"
        )
    return region  # type: ignore[return-value]


def check_logits(x: object, name: str) -> Tensor:
    """A floating tensor ``(B, ...)`` with a non-empty batch dimension (a discriminator's logits)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (B, ...), got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must have a non-empty batch dimension (B, ...), got shape {tuple(x.shape)}")
    return x


def check_feature_maps(anchor: list[Tensor], positives: list[Tensor], negatives: list[Tensor]) -> None:
    """Per layer l: a floating ``(N, C, H, W)`` anchor and ``(N, K, C, H, W)`` positives and negatives
    (K >= 1) on its device (the inputs of a contrastive loss on precomputed features)."""
    if not len(anchor) == len(positives) == len(negatives):
        raise ValueError(
            f"anchor, positives and negatives must hold one entry per layer, got {len(anchor)}, "
            f"{len(positives)} and {len(negatives)} layers"
        )
    for layer, (a, p, n) in enumerate(zip(anchor, positives, negatives)):
        if a.dim() != 4 or not a.is_floating_point():
            raise ValueError(f"anchor[{layer}] must be a floating (N, C, H, W) feature map, got shape {tuple(a.shape)} {a.dtype}")
        if a.numel() == 0:
            raise ValueError(f"anchor[{layer}] must be non-empty (N, C, H, W >= 1), got shape {tuple(a.shape)}")
        for name, t in (("positives", p), ("negatives", n)):
            if not t.is_floating_point():
                raise TypeError(f"{name}[{layer}] must be a floating-point feature map, got {t.dtype}")
            if t.dim() != 5 or t.shape[0] != a.shape[0] or t.shape[2:] != a.shape[1:] or t.shape[1] < 1:
                raise ValueError(
                    f"{name}[{layer}] must be (N, K, C, H, W) = {(a.shape[0], 'K>=1', *a.shape[1:])} to match "
                    f"anchor[{layer}] {tuple(a.shape)}, got {tuple(t.shape)}"
                )
            if t.device != a.device:
                raise ValueError(f"{name}[{layer}] is on {t.device} but anchor[{layer}] on {a.device}")


def check_layer_indices(module: torch.nn.Module, layers: object) -> tuple[int, ...]:
    """Indices of ``module``'s layers to read features from: checked by the module's own
    ``check_layers`` where it has one, else any non-empty sequence."""
    check = getattr(module, "check_layers", None)
    if callable(check):
        return tuple(check(layers))
    try:
        items = tuple(layers)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"layers must be a sequence of layer indices, got {layers!r}") from None
    if not items:
        raise ValueError("layers must name at least one layer")
    return items


def check_scale(value: object, name: str = "scale") -> int | None:
    """An SR scale factor: None (not given) or an int >= 2."""
    return None if value is None else check_positive_int(value, name, minimum=2)
