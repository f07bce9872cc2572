"""``backend='auto'``'s verdicts: the Triton kernels are used only after they pass a self-check on first use.

The kernels are tested in Triton's CPU interpreter and compiled offline, but a real launch can still
fail (shared memory or registers, a Triton / driver mismatch) or compute something wrong that the
interpreter does not show. So the first time ``'auto'`` would run them for a configuration
(:class:`SelfCheckKey`: device, dtypes, mode, region, channels, memory layouts) in a process,
:func:`run_triton_selfcheck` runs both the kernels and the ``'torch'`` backend on a few blocks /
windows cut from the actual input (at most 2 images of ``2 region x 2 region`` pixels) and compares
the loss map and both gradients with per-dtype tolerances. The verdict is cached per process; on an
exception or a mismatch that configuration uses the ``'torch'`` backend (the same loss, slower) and
one :class:`TritonSelfCheckWarning` says what failed and how to report it. A launch that raises
later, on an input the check did not cover, switches its configuration to ``'torch'`` the same way.

This module holds the verdict cache and the comparison; :func:`use_triton` is the choice the
``'auto'`` custom op (:mod:`.auto`) asks for on every call, at run time: under ``torch.compile`` the
graph holds that one opaque op, so the check never runs while tracing and needs no graph break.
Only the first call per configuration synchronises the device (the comparison reads values); later
calls look the verdict up in a dict. A configuration first met while a CUDA graph is being captured
uses ``'torch'`` without a check (a check would synchronise). Both backends are reached through
their public entry points (:func:`~.pixel_contrastive_torch.torch_forward` / ``torch_backward`` and
the Triton module's ``pixel_contrastive_triton_forward`` / ``_backward``).

``backend='triton'`` is not checked (errors raise). ``CSR_TRITON_SELFCHECK=0`` in the environment
turns the check off: ``'auto'`` then runs the kernels directly and their errors raise, as with
``backend='triton'``. :func:`triton_selfcheck_verdicts` shows the cached verdicts and
:func:`clear_triton_selfcheck` forgets them (the next call checks again).

Example:
    >>> from contrastive_sr_losses.kernels import clear_triton_selfcheck, triton_selfcheck_verdicts
    >>> clear_triton_selfcheck()
    >>> triton_selfcheck_verdicts()  # nothing checked yet (and on the CPU 'auto' never runs Triton)
    {}
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import compute_dtype
from .pixel_contrastive_torch import torch_backward, torch_forward

__all__ = [
    "SELFCHECK_ENV",
    "SELFCHECK_TOLERANCES",
    "REPORT_URL",
    "SelfCheckKey",
    "SelfCheckVerdict",
    "TritonSelfCheckWarning",
    "clear_triton_selfcheck",
    "mismatch",
    "pixel_contrastive_auto_map",  # noqa: F822  (served by the module __getattr__ below, lazily)
    "record_launch_failure",
    "run_triton_selfcheck",
    "selfcheck_enabled",
    "selfcheck_key",
    "triton_selfcheck_verdicts",
    "use_triton",
]

#: Environment variable: ``0`` (or ``false`` / ``no`` / ``off``) skips the self-check, ``1`` (default) runs it.
SELFCHECK_ENV = "CSR_TRITON_SELFCHECK"
REPORT_URL = "https://github.com/contrastive-sr-losses/contrastive-sr-losses/issues"
#: ``(rtol, atol as a fraction of the largest expected magnitude)`` by the dtype of the compared tensor:
#: loss maps are float32 (float64 for float64 inputs), gradients have the inputs' dtypes, and the two
#: backends round their float32 sums differently (one ulp of a bfloat16 gradient is 0.4-0.8 %).
SELFCHECK_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (4e-3, 2e-3),
    torch.bfloat16: (3e-2, 1.5e-2),
}
_FALSE = ("0", "false", "no", "off")
_TRUE = ("", "1", "true", "yes", "on")


class TritonSelfCheckWarning(RuntimeWarning):
    """The Triton kernels failed their first-use check: that configuration uses the ``'torch'`` backend."""


class SelfCheckKey(NamedTuple):
    """What a verdict holds for: the inputs' device, ``'sr/hr'`` dtypes and layouts, mode, region, channels."""

    device: str
    dtypes: str
    mode: str
    region: int
    channels: int
    layouts: str


class SelfCheckVerdict(NamedTuple):
    """``uses_triton``: the configuration runs the kernels; ``detail``: what the check found."""

    uses_triton: bool
    detail: str


_VERDICTS: dict[SelfCheckKey, SelfCheckVerdict] = {}


def triton_selfcheck_verdicts() -> dict[SelfCheckKey, SelfCheckVerdict]:
    """A copy of this process's verdicts, one per configuration checked so far."""
    return dict(_VERDICTS)


def clear_triton_selfcheck() -> None:
    """Forget every verdict: the next ``'auto'`` call of each configuration checks again."""
    _VERDICTS.clear()


def selfcheck_enabled() -> bool:
    """Whether ``'auto'`` checks the kernels before using them (:data:`SELFCHECK_ENV`, read on every call)."""
    value = os.environ.get(SELFCHECK_ENV, "1").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{SELFCHECK_ENV} must be 1 (check the Triton kernels on first use) or 0 (skip it), got {value!r}")


def _layout(x: Tensor) -> str:
    if x.is_contiguous():
        return "contiguous"
    if x.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "strided"


def selfcheck_key(sr: Tensor, hr: Tensor, region: int, mode: str) -> SelfCheckKey:
    """The configuration a verdict is cached for (no device sync).

    Example:
        >>> key = selfcheck_key(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), 4, "grid")
        >>> key.device, key.dtypes, key.mode, key.region, key.channels, key.layouts
        ('cpu', 'float32/float32', 'grid', 4, 3, 'contiguous/contiguous')
    """
    dtypes = "/".join(str(t.dtype).removeprefix("torch.") for t in (sr, hr))
    return SelfCheckKey(str(sr.device), dtypes, mode, region, sr.shape[1], f"{_layout(sr)}/{_layout(hr)}")


def _triton() -> ModuleType:  # imported when used: the package imports this module also without triton
    from . import pixel_contrastive_triton

    return pixel_contrastive_triton


# ----------------------------------------------------------------------------------------------
# the check
# ----------------------------------------------------------------------------------------------
def _describe(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def mismatch(name: str, got: Tensor, expected: Tensor, against: str = "the torch backend") -> str | None:
    """Why ``got`` is not ``expected`` within :data:`SELFCHECK_TOLERANCES` (by ``expected``'s dtype), or None.

    Example:
        >>> print(mismatch("loss", torch.ones(3), torch.ones(3)))
        None
        >>> mismatch("loss", torch.tensor([1.0, 1.1]), torch.ones(2))
        'loss differs from the torch backend by up to 0.1 (largest value 1) in 1 of 2 elements'
    """
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return f"{name} is {got.dtype} {tuple(got.shape)}, expected {expected.dtype} {tuple(expected.shape)}"
    rtol, atol = SELFCHECK_TOLERANCES[expected.dtype]
    a, b = got.double(), expected.double()
    scale = float(b.abs().max()) if b.numel() else 0.0
    error = (a - b).abs()
    bad = ~(error <= rtol * b.abs() + atol * scale)  # NaN counts as a mismatch
    if not bool(bad.any()):
        return None
    worst = float(error[bad].nan_to_num(float("inf")).max())
    return (
        f"{name} differs from {against} by up to {worst:.3g} (largest value {scale:.3g}) in "
        f"{int(bad.sum())} of {bad.numel()} elements"
    )


def run_triton_selfcheck(sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str) -> SelfCheckVerdict | None:
    """Compare the Triton kernels with the ``'torch'`` backend on a piece of ``(sr, hr)``.

    The piece is at most 2 images of ``2 region x 2 region`` pixels from the top-left corner (views of
    the inputs, so with their strides); its loss map and both gradients of ``sum(w * loss map)`` for
    a non-uniform ``w`` are compared. Synchronises the device. Returns the verdict, or None when the
    piece holds non-finite values (nothing to learn about the kernels from it). Inputs are assumed
    validated; an exception of the ``'torch'`` backend is raised, one of the kernels is the verdict.

    Example:
        >>> sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
        >>> sr[0, 0, 0, 0] = float("nan")
        >>> print(run_triton_selfcheck(sr, hr, 4, 1.0, "grid"))  # a NaN in the piece: no verdict
        None
    """
    sliding = mode == "sliding"
    n, _, h, w = sr.shape
    index = (slice(0, min(n, 2)), slice(None), slice(0, min(h, 2 * region)), slice(0, min(w, 2 * region)))
    a, b = sr.detach()[index], hr.detach()[index]
    m, _, ph, pw = a.shape
    grad = torch.linspace(0.5, 1.5, m * ph * pw, dtype=compute_dtype(a, b), device=a.device).view(m, 1, ph, pw)
    loss, lse = torch_forward(a, b, region, temperature, sliding)
    expected = {"loss": loss, **dict(zip(("grad sr", "grad hr"), torch_backward(
        grad, a, b, lse, region, temperature, sliding, None, True, True)))}  # fmt: skip
    if not all(bool(torch.isfinite(t).all()) for t in expected.values()):
        return None
    tk = _triton()
    try:
        loss, lse = tk.pixel_contrastive_triton_forward(a, b, region, temperature, sliding)
        grads = tk.pixel_contrastive_triton_backward(grad, a, b, lse, region, temperature, sliding, True, True)
        got = {"loss": loss, "grad sr": grads[0], "grad hr": grads[1]}
        for name, value in expected.items():
            why = mismatch(name, got[name], value)
            if why is not None:
                return SelfCheckVerdict(False, why)
    except Exception as error:  # compilation, resources, launch, driver: all mean "do not use it here"
        return SelfCheckVerdict(False, f"the kernels raised {_describe(error)}")
    return SelfCheckVerdict(True, f"matches the torch backend on {m}x{ph}x{pw} pixels")


def _record(key: SelfCheckKey, verdict: SelfCheckVerdict) -> None:
    _VERDICTS[key] = verdict
    if not verdict.uses_triton:
        warnings.warn(
            f"contrastive_sr_losses: the Triton kernels failed their first-use self-check for {key.device} "
            f"({key.dtypes}, {key.mode}, region {key.region}, {key.channels} channels, {key.layouts}): "
            f"{verdict.detail}. backend='auto' now uses the 'torch' backend for this configuration in this "
            f"process (the same loss, slower). Please report it at {REPORT_URL} with the output of "
            f"`python -m contrastive_sr_losses.check`; backend='triton' raises the error instead, "
            f"{SELFCHECK_ENV}=0 skips the check.",
            TritonSelfCheckWarning,
            stacklevel=2,
        )


def use_triton(sr: Tensor, hr: Tensor, region: int, temperature: float, mode: str) -> tuple[bool, SelfCheckKey | None]:
    """Whether ``'auto'`` runs the kernels on these (validated) inputs, checking them on first use per
    configuration, and the key a later launch failure is recorded under (None: the check is off, a
    failure raises). Synchronises the device only when it runs the check.
    """
    if not selfcheck_enabled():
        return True, None
    key = selfcheck_key(sr, hr, region, mode)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        if sr.is_cuda and torch.cuda.is_current_stream_capturing():
            return False, key  # a check would synchronise: 'torch' for this capture, checked on an eager call
        verdict = run_triton_selfcheck(sr, hr, region, temperature, mode)
        if verdict is None:
            return False, key  # non-finite input: 'torch' this time, checked again on the next call
        _record(key, verdict)
    return verdict.uses_triton, key


def record_launch_failure(key: SelfCheckKey, error: Exception) -> None:
    """A launch of the kernels raised after the check: ``key`` uses ``'torch'`` from now on, with one
    warning; an out-of-memory error is the input's size, not the kernels', and is raised again."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        raise error  # the torch backend would not do better
    _record(key, SelfCheckVerdict(False, f"a launch after the check raised {_describe(error)}"))


def __getattr__(name: str) -> object:
    # The 'auto' op moved to .auto (which imports this module); its old name here still works.
    if name == "pixel_contrastive_auto_map":
        from .auto import auto_map

        return auto_map
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
