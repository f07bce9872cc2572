"""Tests of LPIPS (offline, without torchvision) against the lpips package, and its file errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastive_sr_losses.metrics import LPIPS, lpips
from tests._paths import SHARED_DATA

SHARED_WEIGHTS = SHARED_DATA / "weights"


def _astronaut() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].double() / 255  # 512x512


def _lpips_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Astronaut crop vs a 3x3 box blur and vs additive noise (seeded): what the pins were made on."""
    crop = _astronaut()[..., 100:196, 180:276].float()
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(crop, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noise = (crop + 0.08 * torch.randn(crop.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return torch.cat([crop, crop]), torch.cat([blur, noise])


def _lpips_head(net: str) -> Path:
    from contrastive_sr_losses.metrics.perceptual import _default_head_path

    path = _default_head_path(net)
    if path is None or not path.is_file():
        pytest.skip("the lpips package's head weights are not installed (pip install --no-deps lpips==0.1.4)")
    return path


def test_lpips_squeeze_matches_the_lpips_package():
    # Pinned from lpips 0.1.4 itself (lpips.LPIPS(net='squeeze')(a, b, normalize=True)), run with a
    # torchvision that imports beside torch, on the same inputs and the same backbone file.
    backbone = SHARED_WEIGHTS / "squeezenet1_1-b8a52dc0.pth"
    if not backbone.is_file():
        pytest.skip(f"{backbone} is absent")
    metric = LPIPS("squeeze", backbone_path=backbone, head_path=_lpips_head("squeeze"))
    a, b = _lpips_inputs()
    got = metric(a, b)
    assert got.shape == (2,) and got.dtype == torch.float32
    assert got.tolist() == pytest.approx([0.11367059499025345, 0.36469465494155884], abs=2e-6)
    assert metric(a, a).abs().max().item() < 1e-6
    assert not any(p.requires_grad for p in metric.parameters()) and not metric.training
    # gradients reach the input (usable as a perceptual loss); the functional form agrees
    x = b.clone().requires_grad_(True)
    metric(x, a).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(lpips(a, b, "squeeze", backbone_path=backbone, head_path=_lpips_head("squeeze")), got)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_alex_vgg_definitions_load_torchvision_keys(net, tmp_path):
    # Without ImageNet weights offline, check the architecture: a random state dict with
    # torchvision's key names and shapes loads strictly, and the layer taps have lpips' widths.
    from contrastive_sr_losses.metrics.perceptual import _features

    features, taps, channels = _features(net)
    state = {f"features.{k}": torch.randn_like(v) * 0.05 for k, v in features.state_dict().items()}
    expected_keys = {"alex": 10, "vgg": 26}[net]
    assert len(state) == expected_keys
    torch.save(state, tmp_path / "backbone.pth")
    metric = LPIPS(net, backbone_path=tmp_path / "backbone.pth", head_path=_lpips_head(net))
    a, b = _lpips_inputs()
    d = metric(a, b)
    assert d.shape == (2,) and bool((d > 0).all())
    x = a[:1]
    outs = metric._taps_of(x)
    assert [o.shape[1] for o in outs] == list(channels)


def test_lpips_missing_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match=r"alexnet-owt-7be5be79\.pth': put that file in .*torch_home/hub/checkpoints/"):
        LPIPS("alex")
    backbone = tmp_path / "b.pth"
    torch.save({}, backbone)
    with pytest.raises(FileNotFoundError, match=r"weights/v0\.1/vgg\.pth.*pip install --no-deps lpips"):
        LPIPS("vgg", backbone_path=backbone, head_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="net must be one of 'alex', 'vgg', 'squeeze'"):
        LPIPS("resnet")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot read the squeeze backbone"):
        LPIPS("squeeze", backbone_path=tmp_path / "bad.pth", head_path=tmp_path / "bad.pth")


def test_lpips_wrong_backbone_file_is_reported(tmp_path):
    torch.save({"features.0.weight": torch.zeros(2, 2)}, tmp_path / "wrong.pth")
    with pytest.raises(RuntimeError, match=r"is not torchvision's squeezenet1_1-b8a52dc0\.pth"):
        LPIPS("squeeze", backbone_path=tmp_path / "wrong.pth", head_path=tmp_path / "wrong.pth")
