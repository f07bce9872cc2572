"""VGG19 feature extractor for the CSD / AECR-Net ratio contrastive loss, without torchvision.

The layer layout (and so the ``state_dict`` keys ``features.<index>.weight``) is torchvision's
``vgg19().features``, so torchvision's ImageNet file ``vgg19-dcbb9e9d.pth`` loads directly. Nothing is
ever downloaded: ``weights=None`` gives a randomly initialised network (for timing, or for users who
load their own weights), ``weights="imagenet"`` reads the file from torch hub's checkpoint folder and
raises a clear error when it is missing, and a path reads that file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from .._validation import check_image, check_value_range
from ..functional.color import IMAGENET_MEAN, IMAGENET_STD
from ..serialization import load_tensors_file

__all__ = ["VGG19Features", "VGG19_LAYERS", "VGG19_IMAGENET_FILE", "CSD_LAYERS", "CSD_WEIGHTS"]

VGG19_IMAGENET_FILE = "vgg19-dcbb9e9d.pth"
# Layers of the CSD / AECR-Net contrastive regularisation and their weights (1/32 .. 1).
CSD_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CSD_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

_CONFIG = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (channels, convs) per stage


def _layer_names() -> list[str]:
    names = []
    for stage, (_, convs) in enumerate(_CONFIG, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{stage}_{i}", f"relu{stage}_{i}"]
        names.append(f"pool{stage}")
    return names


VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names())  # index in torchvision's vgg19().features


class VGG19Features(nn.Module):
    """Frozen VGG19 returning the feature maps of the named layers.

    Args:
        layers: layer names in network order, from ``VGG19_LAYERS`` (``'relu1_1'``, ``'conv3_2'``,
            ``'pool4'``...); default the five CSD layers relu1_1..relu5_1.
        weights: ``None`` (random initialisation, torchvision's scheme), ``'imagenet'`` (torchvision's
            ``vgg19-dcbb9e9d.pth`` from ``torch.hub.get_dir()/checkpoints``, never downloaded), or a
            path to a state dict with torchvision's keys.
        normalize: apply ImageNet mean / std to the input first (what the ImageNet weights expect).
        value_range: what white is in the input (1.0 for [0, 1], 255.0 for [0, 255]).

    Shape:
        - input: ``(N, 3, H, W)``
        - output: a list with one map per requested layer.

    Example:
        >>> vgg = VGG19Features(("relu1_1", "relu2_1"))
        >>> [tuple(f.shape) for f in vgg(torch.rand(1, 3, 32, 32))]
        [(1, 64, 32, 32), (1, 128, 16, 16)]
    """

    def __init__(
        self,
        layers: Sequence[str] = CSD_LAYERS,
        weights: str | os.PathLike | None = None,
        *,
        normalize: bool = True,
        value_range: float = 1.0,
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if not layers or unknown:
            raise ValueError(f"layers must be names from {VGG19_LAYERS}, got {layers!r}")
        indices = [VGG19_LAYERS.index(name) for name in layers]
        if indices != sorted(set(indices)):
            raise ValueError(f"layers must be distinct and in network order, got {layers!r}")
        self.layers, self._indices = layers, indices
        self.normalize, self.value_range = bool(normalize), check_value_range(value_range)
        modules: list[nn.Module] = []
        in_ch = 3
        for out_ch, convs in _CONFIG:
            for _ in range(convs):
                modules += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = out_ch
            modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules[: indices[-1] + 1])
        for m in self.features:
            if isinstance(m, nn.Conv2d):  # torchvision's initialisation of VGG
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * self.value_range)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * self.value_range)
        if weights is not None:
            self._load(weights)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights: str | os.PathLike) -> None:
        if weights == "imagenet":
            path = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_IMAGENET_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"VGG19 ImageNet weights not found at {path}. This package never downloads: put "
                    f"torchvision's {VGG19_IMAGENET_FILE} there (from "
                    f"https://download.pytorch.org/models/{VGG19_IMAGENET_FILE}, or copy it from a machine "
                    "where torchvision downloaded it; TORCH_HOME moves the folder), or pass its path as weights="
                )
        else:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"weights file {path} does not exist")
        state = load_tensors_file(path, "VGG19 weights")  # weights_only=True; truncated: one-line ValueError
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__}); torchvision's VGG19 file expected")
        ours = {k: v for k, v in state.items() if k.startswith("features.") and k in self.state_dict()}
        missing = [k for k in self.state_dict() if k.startswith("features.") and k not in ours]
        if missing:
            raise ValueError(f"{path} lacks VGG19 features weights {missing[:4]}... (torchvision's key layout expected)")
        self.load_state_dict(ours, strict=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x, "input", channels=3)
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: list[Tensor] = []
        wanted = set(self._indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out.append(x)
        return out

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # a frozen embedding

    def extra_repr(self) -> str:
        return f"layers={self.layers}, normalize={self.normalize}, value_range={self.value_range:g}"
