"""Public checkpoints: read EDSR, RCAN and SwinIR weights saved in BasicSR's or the original authors'
key layout into our networks, and write ours in those layouts.

The networks of this package name their modules in their own way (``head``, ``body``, ``tail``;
``blocks.i.layers.j`` for SwinIR); the files people fine-tune from do not:

======================  =====================================  =========================================
network                 BasicSR (``basicsr/archs/*_arch.py``)   original authors
======================  =====================================  =========================================
EDSR (both sizes)       ``conv_first``, ``body.i.conv1/conv2``,  EDSR-PyTorch: ours with ``head.0`` and the
                        ``conv_after_body``, ``upsample.k``,     frozen mean-shift convs ``sub_mean`` /
                        ``conv_last``                            ``add_mean`` (weight + bias each)
RCAN                    ``conv_first``,                          RCAN: as EDSR-PyTorch, channel attention
                        ``body.g.residual_group.b.rcab.k``       ``...body.3.conv_du.k``
                        (attention ``rcab.3.attention.1/3``),
                        ``body.g.conv``, then as EDSR
SwinIR                  ``patch_embed.norm``,                    SwinIR: the same file layout as BasicSR
                        ``layers.i.residual_group.blocks.j``
                        (``mlp.fc1/fc2``), ``layers.i.conv``,
                        plus the derived buffers
                        ``attn.relative_position_index`` and
                        ``attn_mask`` (shifted layers)
======================  =====================================  =========================================

The weights are the same numbers once renamed (outputs identical): only names change, and the
derived tensors (mean-shift convs, position index, attention masks) are checked against what our
network computes itself, then dropped. The mapping is written once, from our names to the foreign
ones (:func:`foreign_names`); reading inverts it.

Example:
    >>> from contrastive_sr_losses.archs import create_model
    >>> ours = create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16)
    >>> basicsr_file = export_state_dict(ours, "basicsr")      # what BasicSR's EDSR would save
    >>> sorted(basicsr_file)[:2]
    ['body.0.conv1.bias', 'body.0.conv1.weight']
    >>> again = create_model("edsr_baseline", scale=2, weights={"params": basicsr_file}, n_resblocks=2, n_feats=16)
    >>> again.weights_info.layout, again.weights_info.key
    ('basicsr', 'params')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..serialization import load_tensors_file
from .edsr import EDSR
from .rcan import RCAN
from .swinir import SwinIR, shifted_window_mask

__all__ = [
    "LAYOUTS",
    "WRAPPER_KEYS",
    "WeightsInfo",
    "read_state_dict",
    "foreign_names",
    "to_our_layout",
    "load_weights",
    "export_state_dict",
]

logger = logging.getLogger(__name__)

#: Key layouts :func:`load_weights` reads: this package's, BasicSR's, the original authors'.
LAYOUTS: tuple[str, ...] = ("ours", "basicsr", "original")

#: Keys under which checkpoints nest the state dict, tried in this order (BasicSR saves ``params``
#: and, with EMA, ``params_ema``, the weights its own test configs load).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")

Weights = str | os.PathLike | Mapping[str, object]


@dataclass(frozen=True)
class WeightsInfo:
    """What :func:`load_weights` read: ``layout`` (one of :data:`LAYOUTS`), ``key`` (the wrapper key
    the state dict was found under, None for a bare state dict) and ``source`` (the path, or
    ``'<state dict>'``)."""

    layout: str
    key: str | None
    source: str


def read_state_dict(weights: Weights) -> tuple[dict[str, Tensor], str | None]:
    """The state dict inside ``weights`` (a path or an already loaded mapping) and the wrapper key it
    was found under: unwraps :data:`WRAPPER_KEYS` (nested too) and strips DataParallel's ``module.``.

    Example:
        >>> state, key = read_state_dict({"params": {"module.head.weight": torch.zeros(1)}})
        >>> list(state), key
        (['head.weight'], 'params')
    """
    if isinstance(weights, (str, os.PathLike)):
        weights = load_tensors_file(weights, "weights")  # weights_only=True; a crafted pickle is refused
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a path or a state dict (mapping), got {type(weights).__name__}")
    key = None
    while True:
        inner = next((k for k in WRAPPER_KEYS if isinstance(weights.get(k), Mapping)), None)
        if inner is None:
            break
        key = inner if key is None else f"{key}/{inner}"
        weights = weights[inner]  # type: ignore[assignment]
    state = {}
    for name, value in weights.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"weights: entry {name!r} is a {type(value).__name__}, not a tensor: not a state dict")
        state[name[len("module.") :] if name.startswith("module.") else name] = value
    return state, key


# ------------------------------------------------------------------------------------------------
# our module names -> foreign ones (the one place the mapping is written)
# ------------------------------------------------------------------------------------------------
def _residual_prefixes(model: EDSR | RCAN, layout: str) -> dict[str, str]:
    """Module-prefix renames of EDSR and RCAN (``ResidualSRNet``: head, body blocks + conv, tail)."""
    n_blocks = len(model.body) - 1
    n_up = len(model.tail[0])
    if layout == "original":
        names = {"head": "head.0"}
        if isinstance(model, RCAN):
            for g in range(n_blocks):
                for b in range(len(model.body[g].body) - 1):
                    names[f"body.{g}.body.{b}.body.3.body"] = f"body.{g}.body.{b}.body.3.conv_du"
        return names
    names = {"head": "conv_first", f"body.{n_blocks}": "conv_after_body", "tail.1": "conv_last"}
    names.update({f"tail.0.{k}": f"upsample.{k}" for k in range(n_up)})
    for i in range(n_blocks):
        if isinstance(model, RCAN):
            group = model.body[i].body
            names[f"body.{i}.body.{len(group) - 1}"] = f"body.{i}.conv"
            for b in range(len(group) - 1):
                ours, theirs = f"body.{i}.body.{b}.body", f"body.{i}.residual_group.{b}.rcab"
                names.update({f"{ours}.0": f"{theirs}.0", f"{ours}.2": f"{theirs}.2"})
                names.update({f"{ours}.3.body.0": f"{theirs}.3.attention.1", f"{ours}.3.body.2": f"{theirs}.3.attention.3"})
        else:
            names.update({f"body.{i}.body.0": f"body.{i}.conv1", f"body.{i}.body.2": f"body.{i}.conv2"})
    return names


def _swinir_prefixes(model: SwinIR) -> dict[str, str]:
    names = {"embed_norm": "patch_embed.norm"}
    for i, block in enumerate(model.blocks):
        names[f"blocks.{i}.conv"] = f"layers.{i}.conv"
        for j in range(len(block.layers)):
            ours, theirs = f"blocks.{i}.layers.{j}", f"layers.{i}.residual_group.blocks.{j}"
            for part in ("norm1", "attn", "norm2"):
                names[f"{ours}.{part}"] = f"{theirs}.{part}"
            names.update({f"{ours}.mlp.0": f"{theirs}.mlp.fc1", f"{ours}.mlp.2": f"{theirs}.mlp.fc2"})
    return names


def _layouts_of(model: nn.Module) -> tuple[str, ...]:
    if isinstance(model, (EDSR, RCAN)):
        return LAYOUTS
    if isinstance(model, SwinIR):
        return ("ours", "basicsr")  # the original SwinIR files use BasicSR's names
    return ("ours",)


def _resolve_layout(model: nn.Module, layout: object) -> str:
    known = _layouts_of(model)
    if layout == "original" and isinstance(model, SwinIR):
        return "basicsr"
    if layout not in known:
        raise ValueError(f"layout must be one of {known} for {type(model).__name__}, got {layout!r}")
    return layout  # type: ignore[return-value]


def foreign_names(model: nn.Module, layout: str) -> dict[str, str]:
    """Our state-dict key -> its name in ``layout`` (``'ours'``, ``'basicsr'``, ``'original'``), for
    every key of ``model.state_dict()``.

    Example:
        >>> from contrastive_sr_losses.archs import create_model
        >>> names = foreign_names(create_model("rcan", 2, n_resgroups=1, n_resblocks=1, n_feats=8, reduction=4), "basicsr")
        >>> names["body.0.body.0.body.3.body.0.weight"]
        'body.0.residual_group.0.rcab.3.attention.1.weight'
    """
    layout = _resolve_layout(model, layout)
    keys = list(model.state_dict())
    if layout == "ours":
        return {k: k for k in keys}
    prefixes = _swinir_prefixes(model) if isinstance(model, SwinIR) else _residual_prefixes(model, layout)  # type: ignore[arg-type]
    renamed = {}
    for key in keys:
        module, _, leaf = key.rpartition(".")
        # the longest renamed prefix of the module path wins (``body.0.body.1`` before ``body.0``)
        head = module
        while head and head not in prefixes:
            head = head.rpartition(".")[0]
        renamed[key] = f"{prefixes[head]}{module[len(head):]}.{leaf}" if head else key
    return renamed


# ------------------------------------------------------------------------------------------------
# the derived tensors each foreign layout also stores
# ------------------------------------------------------------------------------------------------
def _mean_shift_tensors(model: EDSR | RCAN) -> dict[str, Tensor]:
    """EDSR-PyTorch's frozen 1x1 convs: ``sub_mean`` = x - rgb_range * mean, ``add_mean`` its inverse."""
    shift = model.mean_shift
    eye = torch.eye(3).view(3, 3, 1, 1)
    bias = shift.img_range * shift.mean.detach().cpu().flatten()
    return {"sub_mean.weight": eye, "sub_mean.bias": -bias, "add_mean.weight": eye.clone(), "add_mean.bias": bias}


def _swinir_buffers(model: SwinIR, img_size: int | None) -> dict[str, Tensor]:
    """``relative_position_index`` of every layer and, for ``img_size`` (the training patch the file
    was made for, which the reference code needs to build the module), the shifted layers' masks."""
    out = {}
    for i, block in enumerate(model.blocks):
        for j, layer in enumerate(block.layers):
            prefix = f"layers.{i}.residual_group.blocks.{j}"
            out[f"{prefix}.attn.relative_position_index"] = layer.attn.relative_position_index.detach().cpu()
            if img_size is not None and layer.shift:
                out[f"{prefix}.attn_mask"] = shifted_window_mask(img_size, img_size, layer.window, layer.shift)
    return out


def _derived(model: nn.Module, layout: str) -> dict[str, Tensor]:
    if layout == "original" and isinstance(model, (EDSR, RCAN)):
        return _mean_shift_tensors(model)
    if layout == "basicsr" and isinstance(model, SwinIR):
        return _swinir_buffers(model, None)
    return {}


def _check_derived(model: nn.Module, state: Mapping[str, Tensor], layout: str) -> None:
    """Raise unless each derived tensor of ``layout`` found in ``state`` is what ``model`` computes."""
    for name, expected in _derived(model, layout).items():
        found = state.get(name)
        if found is None:
            continue
        if found.shape != expected.shape or not torch.allclose(found.double(), expected.double(), rtol=1e-5, atol=1e-4):
            hint = ""
            if name.endswith("_mean.bias"):
                hint = "; build the model with the file's img_range / rgb_mean (for example img_range=1.0)"
            raise ValueError(f"weights: {name} in the file differs from what the network computes{hint}")


def _derived_names(model: nn.Module, layout: str, state: Mapping[str, Tensor]) -> set[str]:
    """Keys of ``state`` that are derived tensors in ``layout`` (not weights of our network)."""
    names = set(_derived(model, layout))
    return {k for k in state if k in names or (layout == "basicsr" and k.endswith(".attn_mask"))}


def to_our_layout(model: nn.Module, state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Rename a state dict in any layout of :data:`LAYOUTS` to ``model``'s keys; return it and the
    layout. The layout is the one whose names cover most keys of ``state`` (so a file whose shapes
    differ, e.g. another scale's upsampler, is still recognised); its derived tensors are checked
    (SwinIR's attention masks, made for the file's training patch, only dropped). Keys matching no
    name of the layout are kept as they are, for a strict load to report.

    Example:
        >>> from contrastive_sr_losses.archs import create_model
        >>> model = create_model("edsr_baseline", 2, n_resblocks=1, n_feats=8)
        >>> state, layout = to_our_layout(model, export_state_dict(model, "original"))
        >>> layout, sorted(state) == sorted(model.state_dict())
        ('original', True)
    """
    candidates = []
    for layout in _layouts_of(model):
        ours = {v: k for k, v in foreign_names(model, layout).items()}
        derived = _derived_names(model, layout, state)
        candidates.append((len(ours.keys() & state.keys()) + len(derived), layout, ours, derived))
    _, layout, ours, derived = max(candidates, key=lambda c: c[0])
    _check_derived(model, state, layout)
    return {ours.get(k, k): v for k, v in state.items() if k not in derived}, layout


def load_weights(model: nn.Module, weights: Weights) -> WeightsInfo:
    """Load ``weights`` (a path or a state dict, in our, BasicSR's or the original layout, optionally
    wrapped in ``params`` / ``params_ema`` / ``state_dict``, keys optionally prefixed ``module.``)
    into ``model``, strictly; set and return ``model.weights_info`` and log which layout was read.

    Raises:
        ValueError: where keys are missing or left over (the message names a few and the layout it
            tried), where a shape differs, or where a derived tensor is not what the network computes.

    Example:
        >>> from contrastive_sr_losses.archs import create_model
        >>> model = create_model("rcan", 2, n_resgroups=1, n_resblocks=1, n_feats=8, reduction=4)
        >>> load_weights(model, {"params": export_state_dict(model, "basicsr")})
        WeightsInfo(layout='basicsr', key='params', source='<state dict>')
    """
    state, key = read_state_dict(weights)
    renamed, layout = to_our_layout(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in renamed]
    unexpected = [k for k in renamed if k not in own]
    if missing or unexpected:
        few = lambda names: ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")  # noqa: E731
        raise ValueError(
            f"weights do not fit {type(model).__name__} in the {layout!r} layout: {len(missing)} missing "
            f"({few(missing)}), {len(unexpected)} unexpected ({few(unexpected)}); other sizes (n_resblocks, "
            "n_feats, ...) need the matching overrides"
        )
    wrong = [k for k in own if renamed[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(
            f"weights: {k} has shape {tuple(renamed[k].shape)} in the file, {tuple(own[k].shape)} in the network "
            "(another scale or size? pass the matching scale / overrides)"
        )
    model.load_state_dict(renamed, strict=True)
    source = str(weights) if isinstance(weights, (str, os.PathLike)) else "<state dict>"
    info = WeightsInfo(layout=layout, key=key, source=source)
    model.weights_info = info  # type: ignore[assignment]
    logger.info("loaded %s weights into %s from %s (key %s)", layout, type(model).__name__, source, key)
    return info


def export_state_dict(model: nn.Module, layout: str, *, img_size: int = 64) -> dict[str, Tensor]:
    """``model``'s weights under ``layout``'s names, with that layout's derived tensors, as the
    foreign code would save them (spandrel recognises RCAN in the ``'original'`` layout and SwinIR in
    ``'basicsr'``).

    Args:
        model: an EDSR, RCAN or SwinIR of this package (any network for ``'ours'``).
        layout: one of :data:`LAYOUTS` (``'original'`` is ``'basicsr'`` for SwinIR).
        img_size: SwinIR only: the training patch side the shifted layers' ``attn_mask`` tensors are
            made for (64, SwinIR-light's), which the reference code reads to build its modules.
    """
    names = foreign_names(model, layout)
    out = {names[k]: v.detach().clone() for k, v in model.state_dict().items()}
    if isinstance(model, SwinIR) and _resolve_layout(model, layout) == "basicsr":
        out.update(_swinir_buffers(model, img_size))
    else:
        out.update(_derived(model, layout))
    return out
