"""How large is each loss term's gradient next to the others'? (Before a GPU-week is spent on it.)

A contrastive term whose gradient is 100x L1's does not "add a little sharpness": it decides where the
network goes. :func:`gradient_balance` measures, for terms that share one graph, each term's gradient
norm on the tensors you name (a model's parameters, or the SR output), its ratio to a reference term
(L1, by default the first term) and the cosine between the two gradients (1: the term pulls the same
way as L1; 0: unrelated; -1: against it). :func:`suggest_weight` turns a ratio into the weight that
puts the term at a chosen fraction of the reference.

Example:
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from contrastive_sr_losses import PixelContrastiveLoss, gradient_balance, suggest_weight
    >>> model = torch.nn.Conv2d(3, 3, 3, padding=1)
    >>> lr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    >>> sr = model(lr)
    >>> terms = {"l1": F.l1_loss(sr, hr), "pixel_contrastive": 0.1 * PixelContrastiveLoss(region=8)(sr, hr)}
    >>> balance = gradient_balance(terms, model.parameters())
    >>> print(balance)  # doctest: +SKIP
    term                 grad norm   ratio to l1   cosine with l1
    l1                   ...
    >>> w = suggest_weight(balance, "pixel_contrastive", fraction=0.1, current_weight=0.1)
    >>> sum(terms.values()).backward()  # the graph is still usable, and no .grad was touched before
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TermBalance", "GradientBalance", "gradient_balance", "suggest_weight"]


@dataclass(frozen=True)
class TermBalance:
    """One term's gradient next to the reference term's.

    Attributes:
        name: the term's name (its key in ``terms``).
        norm: the Euclidean norm of its gradient over all ``inputs`` together.
        ratio: ``norm / reference norm``; ``None`` when the reference's gradient is zero (not divided by).
        cosine: cosine similarity of its gradient with the reference's, in [-1, 1]; ``None`` when either
            gradient is zero.
        reference: the name of the reference term.
    """

    name: str
    norm: float
    ratio: float | None
    cosine: float | None
    reference: str


class GradientBalance(Mapping[str, TermBalance]):
    """The result of :func:`gradient_balance`: a read-only mapping ``name -> TermBalance`` in the order
    of ``terms``, whose ``str()`` is a small table."""

    def __init__(self, entries: list[TermBalance], reference: str) -> None:
        self._entries = {e.name: e for e in entries}
        self.reference = reference

    def __getitem__(self, name: str) -> TermBalance:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def ratios(self) -> dict[str, float | None]:
        """``{name: ratio}`` of every term but the reference (for logs and JSON)."""
        return {n: e.ratio for n, e in self._entries.items() if n != self.reference}

    def __repr__(self) -> str:
        return f"GradientBalance(reference={self.reference!r}, terms={list(self._entries.values())!r})"

    def __str__(self) -> str:
        ref = self.reference
        rows = [("term", "grad norm", f"ratio to {ref}", f"cosine with {ref}")]
        for e in self._entries.values():
            rows.append((
                e.name, f"{e.norm:.4g}",
                "-" if e.ratio is None else f"{e.ratio:.4g}",
                "-" if e.cosine is None else f"{e.cosine:+.3f}",
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["   ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        return "\n".join(line.rstrip() for line in lines)


def _as_inputs(inputs: Tensor | Iterable[Tensor]) -> list[Tensor]:
    items = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not items:
        raise ValueError("inputs must hold at least one tensor (a model's parameters, or the SR output), got none")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if not t.requires_grad:
            raise ValueError(
                f"inputs[{i}] (shape {tuple(t.shape)}) does not require grad: nothing can be differentiated with respect to it"
            )
    return items


def gradient_balance(
    terms: Mapping[str, Tensor], inputs: Tensor | Iterable[Tensor], reference: str | None = None
) -> GradientBalance:
    """Each term's gradient norm, its ratio to the reference term's and their cosine.

    The gradients are taken with :func:`torch.autograd.grad` (``retain_graph=True``): no ``.grad`` is
    changed and the graph stays usable for the training step's ``backward()``. Norms and dot products
    are accumulated in float64. The result is a host value, so the call syncs with the device once:
    call it at log points, not every step.

    Args:
        terms: ``name -> scalar loss tensor``, already weighted as in the objective, sharing one graph.
            A term that does not depend on ``inputs`` (or does not require grad) has gradient 0.
        inputs: the tensors to differentiate with respect to: a model's ``parameters()`` (what the
            optimizer sees) or the SR output (cheaper; what the loss sees).
        reference: the term the others are compared with (default: the first of ``terms``).

    Returns:
        A :class:`GradientBalance` (mapping ``name -> TermBalance``; ``str()`` gives a table). The
        reference's own row has ratio 1 and cosine 1 (or ``None`` when its gradient is zero).

    Raises:
        ValueError / TypeError: ``terms`` empty, a term not a real floating scalar tensor, ``inputs``
            empty or not requiring grad, ``reference`` not a key of ``terms``.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> b = gradient_balance({"l1": x.sum(), "twice": 2 * x.sum(), "against": -x.sum()}, x)
        >>> b["twice"].ratio, b["twice"].cosine, b["against"].cosine
        (2.0, 1.0, -1.0)
    """
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError("terms must be a non-empty mapping name -> scalar loss tensor")
    for name, value in terms.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"terms[{name!r}] must be a torch.Tensor, got {type(value).__name__}")
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(
                f"terms[{name!r}] must be a floating scalar loss (one element), got shape {tuple(value.shape)} and "
                f"dtype {value.dtype} (use reduction='mean' or 'sum')"
            )
    ref = next(iter(terms)) if reference is None else reference
    if ref not in terms:
        raise ValueError(f"reference must be one of the terms ({', '.join(map(repr, terms))}), got {reference!r}")
    xs = _as_inputs(inputs)

    def grads(value: Tensor) -> list[Tensor]:
        if not value.requires_grad:
            return [torch.zeros_like(x) for x in xs]
        got = torch.autograd.grad(value.sum(), xs, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, got)]

    ref_grads = [g.double() for g in grads(terms[ref])]
    ref_sq = sum((g * g).sum() for g in ref_grads)
    rows = []
    for name, value in terms.items():
        gs = ref_grads if name == ref else [g.double() for g in grads(value)]
        sq = ref_sq if name == ref else sum((g * g).sum() for g in gs)
        dot = ref_sq if name == ref else sum((g * r).sum() for g, r in zip(gs, ref_grads))
        rows.append(torch.stack([torch.as_tensor(sq).reshape(()), torch.as_tensor(dot).reshape(())]).cpu())
    stats = torch.stack(rows).tolist()  # the one host sync
    ref_norm = math.sqrt(stats[list(terms).index(ref)][0])
    entries = []
    for name, (sq, dot) in zip(terms, stats):
        norm = math.sqrt(sq)
        ratio = None if ref_norm == 0.0 else norm / ref_norm
        cosine = None if (norm == 0.0 or ref_norm == 0.0) else max(-1.0, min(1.0, dot / (norm * ref_norm)))
        entries.append(TermBalance(name, norm, ratio, cosine, ref))
    return GradientBalance(entries, ref)


def suggest_weight(balance: GradientBalance, name: str, fraction: float = 0.1, current_weight: float = 1.0) -> float:
    """The weight that puts term ``name``'s gradient norm at ``fraction`` of the reference's.

    The gradient is linear in the weight, so the answer is ``current_weight * fraction / ratio``.

    Args:
        balance: the result of :func:`gradient_balance`.
        name: the term to re-weight (not the reference).
        fraction: the wanted ratio to the reference (0.1: a tenth of L1's gradient), > 0.
        current_weight: the weight the term carried in ``terms`` when it was measured (1 if it was given
            unweighted), > 0.

    Raises:
        ValueError: ``name`` unknown or the reference, a non-positive ``fraction`` / ``current_weight``,
            or a term (or reference) whose gradient was zero (no weight can scale it).

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> b = gradient_balance({"l1": x.sum(), "heavy": 40 * x.sum()}, x)
        >>> round(suggest_weight(b, "heavy", fraction=0.1, current_weight=40.0), 6)
        0.1
    """
    if name not in balance:
        raise ValueError(f"name must be one of the measured terms ({', '.join(map(repr, balance))}), got {name!r}")
    if name == balance.reference:
        raise ValueError(f"name {name!r} is the reference term: its ratio is 1 by definition")
    for arg, value in (("fraction", fraction), ("current_weight", current_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{arg} must be a finite number > 0, got {value!r}")
    ratio = balance[name].ratio
    if ratio is None:
        raise ValueError(f"the reference term {balance.reference!r} has a zero gradient: no ratio to scale")
    if ratio == 0.0:
        raise ValueError(f"term {name!r} has a zero gradient on these inputs: no weight changes that")
    return float(current_weight) * float(fraction) / ratio
