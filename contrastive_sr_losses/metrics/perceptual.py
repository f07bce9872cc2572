"""LPIPS v0.1 (Zhang et al., CVPR 2018), offline and without torchvision: :class:`LPIPS` and
its functional form :func:`lpips` (see :mod:`contrastive_sr_losses.metrics`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_choice, check_image_pair
from ..serialization import load_tensors_file

__all__ = ["LPIPS", "lpips", "LPIPS_NETS", "LPIPS_MIN_SIZE"]


LPIPS_NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
#: Smallest height and width each LPIPS backbone's convolutions and poolings accept.
LPIPS_MIN_SIZE: dict[str, int] = {"alex": 31, "vgg": 16, "squeeze": 17}

# torchvision's file names for the ImageNet weights the lpips package builds on (what
# torch.hub would have downloaded into <torch.hub.get_dir()>/checkpoints/).
_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
# lpips' ScalingLayer: its inputs in [-1, 1] are mapped with (x - shift) / scale.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


class _Fire(nn.Module):
    """SqueezeNet's Fire module (torchvision's attribute names, so its state dict loads as is)."""

    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], dim=1)


def _features(net: str) -> tuple[nn.Sequential, tuple[int, ...], tuple[int, ...]]:
    """torchvision's ``features`` stack of ``net``, the indices after which lpips taps it, channels."""
    relu, pool = nn.ReLU, nn.MaxPool2d
    if net == "squeeze":  # squeezenet1_1
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=2), relu(), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(64, 16, 64, 64), _Fire(128, 16, 64, 64), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(128, 32, 128, 128), _Fire(256, 32, 128, 128), pool(3, 2, ceil_mode=True)]
        layers += [_Fire(256, 48, 192, 192), _Fire(384, 48, 192, 192)]
        layers += [_Fire(384, 64, 256, 256), _Fire(512, 64, 256, 256)]
        return nn.Sequential(*layers), (2, 5, 8, 10, 11, 12, 13), (64, 128, 256, 384, 384, 512, 512)
    if net == "alex":
        layers = [nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(), pool(3, 2)]
        layers += [nn.Conv2d(64, 192, 5, padding=2), relu(), pool(3, 2)]
        layers += [nn.Conv2d(192, 384, 3, padding=1), relu(), nn.Conv2d(384, 256, 3, padding=1), relu()]
        layers += [nn.Conv2d(256, 256, 3, padding=1), relu()]
        return nn.Sequential(*layers), (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)
    layers, channels = [], 3  # vgg16 (configuration D), up to relu5_3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if width == "M":
            layers.append(pool(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), relu()]
            channels = int(width)
    return nn.Sequential(*layers), (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)


def _default_head_path(net: str) -> Path | None:
    """``<lpips package>/weights/v0.1/<net>.pth`` of an installed lpips, found without importing it."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / f"{net}.pth"


def _load_state(path: Path, what: str) -> dict[str, Tensor]:
    state = load_tensors_file(path, what, error=RuntimeError)  # weights_only; truncated / foreign: one line
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RuntimeError(f"the {what} file {path} does not hold a state dict")
    return state


class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al., *The Unreasonable Effectiveness of Deep Features as a Perceptual
    Metric*, CVPR 2018), the ``lpips`` package's metric, offline and without torchvision.

    Inputs in [0, 1] are mapped to [-1, 1], normalised with lpips' ScalingLayer, passed through the
    ImageNet backbone; at each tapped layer the features are unit-normalised along channels, their
    squared difference is weighted per channel by lpips' calibrated linear head, averaged over space,
    and the layers are summed. The result equals ``lpips.LPIPS(net=net)(sr, hr, normalize=True)``.

    Weights are read from disk, never downloaded:

    * the backbone: torchvision's ImageNet checkpoint (``alexnet-owt-7be5be79.pth``,
      ``vgg16-397923af.pth`` or ``squeezenet1_1-b8a52dc0.pth``) in ``<torch.hub.get_dir()>/checkpoints/``
      (``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``), or
      ``backbone_path``. Only its ``features.*`` entries are used.
    * the linear heads: ``lpips/weights/v0.1/<net>.pth`` of an installed ``lpips`` package (found
      without importing it, so ``pip install --no-deps lpips`` is enough and torchvision is not
      needed), or ``head_path``.

    A missing file raises ``FileNotFoundError`` naming the file and the folder to put it in.
    The module is frozen (no trainable parameters) and stays in eval mode; gradients flow to the
    inputs, so it can also serve as a perceptual loss.

    Args:
        net: backbone, ``'alex'`` (the package's default and the usual one in papers), ``'vgg'`` or
            ``'squeeze'``.
        backbone_path: torchvision checkpoint of the backbone (default: the torch hub cache).
        head_path: lpips linear-head weights (default: from the installed lpips package).

    Shape:
        ``sr``, ``hr``: ``(N, 3, H, W)`` RGB in [0, 1], H and W at least :data:`LPIPS_MIN_SIZE`
        (alex 31, vgg 16, squeeze 17; smaller is a ``ValueError``; H, W >= 32 is sensible); output ``(N,)``,
        in float32 (float64 for float64 inputs). 0 for identical images, larger is more different.

    Example:
        >>> metric = LPIPS("squeeze")  # doctest: +SKIP
        >>> metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2])
    """

    def __init__(
        self, net: str = "alex", *, backbone_path: str | Path | None = None, head_path: str | Path | None = None
    ) -> None:
        super().__init__()
        check_choice(net, "net", LPIPS_NETS)
        self.net = net
        backbone_file = (
            Path(backbone_path)
            if backbone_path is not None
            else Path(torch.hub.get_dir()) / "checkpoints" / _BACKBONE_FILES[net]
        )
        if not backbone_file.is_file():
            raise FileNotFoundError(
                f"LPIPS(net={net!r}) needs torchvision's ImageNet backbone weights '{_BACKBONE_FILES[net]}': "
                f"put that file in {backbone_file.parent}/ (torch.hub.get_dir()/checkpoints; set TORCH_HOME to "
                f"move it) or pass backbone_path=; nothing is downloaded (missing: {backbone_file})"
            )
        head_file = Path(head_path) if head_path is not None else _default_head_path(net)
        if head_file is None or not head_file.is_file():
            where = f"missing: {head_file}" if head_file is not None else "the lpips package is not installed"
            raise FileNotFoundError(
                f"LPIPS(net={net!r}) needs the lpips v0.1 linear-head weights 'weights/v0.1/{net}.pth' of the "
                f"lpips package: `pip install --no-deps lpips==0.1.4` (the file is read, the package is not "
                f"imported, torchvision is not needed) or pass head_path= ({where})"
            )
        self.features, taps, channels = _features(net)
        self._taps = taps
        backbone = _load_state(backbone_file, f"{net} backbone")
        features = {k[len("features.") :]: v for k, v in backbone.items() if k.startswith("features.")}
        try:
            self.features.load_state_dict(features)
        except RuntimeError as err:
            raise RuntimeError(f"{backbone_file} is not torchvision's {_BACKBONE_FILES[net]}: {err}") from err
        head = _load_state(head_file, f"lpips {net} head")
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        for k, conv in enumerate(self.heads):
            key = f"lin{k}.model.1.weight"
            if key not in head or head[key].shape != conv.weight.shape:
                raise RuntimeError(f"{head_file} is not lpips' v0.1 {net}.pth head (no {key} of shape (1, {channels[k]}, 1, 1))")
            conv.weight.data.copy_(head[key])
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps_of(self, x: Tensor) -> list[Tensor]:
        out, start = [], 0
        for stop in self._taps:
            for layer in self.features[start:stop]:
                x = layer(x)
            out.append(x)
            start = stop
        return out

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_image_pair(sr, hr)
        if sr.shape[1] != 3:
            raise ValueError(f"sr and hr must be RGB of shape (N, 3, H, W), got {tuple(sr.shape)}")
        least = LPIPS_MIN_SIZE[self.net]
        if min(sr.shape[-2:]) < least:
            raise ValueError(
                f"sr and hr must be at least {least}x{least} for LPIPS(net={self.net!r}) (its backbone pools the "
                f"image down), got {tuple(sr.shape[-2:])}"
            )
        dtype = self.shift.dtype  # float32, or float64 after .double()
        n = sr.shape[0]
        x = torch.cat([sr.to(dtype), hr.to(dtype)]) * 2.0 - 1.0
        x = (x - self.shift) / self.scale
        total = x.new_zeros(n)
        for feat, head in zip(self._taps_of(x), self.heads):
            feat = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            diff = (feat[:n] - feat[n:]).pow(2)
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total


def lpips(
    sr: Tensor,
    hr: Tensor,
    net: str = "alex",
    *,
    backbone_path: str | Path | None = None,
    head_path: str | Path | None = None,
) -> Tensor:
    """Per-image LPIPS of ``(N, 3, H, W)`` images in [0, 1], functional form of :class:`LPIPS`.

    Loads the weights on every call: build one :class:`LPIPS` (on the images' device) for a loop.
    Returns ``(N,)``.
    """
    metric = LPIPS(net, backbone_path=backbone_path, head_path=head_path).to(sr.device)
    return metric(sr, hr)
