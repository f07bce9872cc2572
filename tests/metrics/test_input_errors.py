"""Bad inputs that once gave a silent wrong result or a raw error, now a one-line ``TypeError`` /
``ValueError`` naming the argument: LPIPS.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses.metrics import LPIPS, LPIPS_MIN_SIZE


@pytest.mark.parametrize("net", sorted(LPIPS_MIN_SIZE))
def test_lpips_too_small_inputs(net, tmp_path):
    from contrastive_sr_losses.metrics.perceptual import _features

    features, _, channels = _features(net)  # random weights in torchvision's layout: the shapes are what matter
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "b.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(channels)}, tmp_path / "h.pth")
    metric = LPIPS(net, backbone_path=tmp_path / "b.pth", head_path=tmp_path / "h.pth")
    least = LPIPS_MIN_SIZE[net]
    for h, w in ((1, 1), (1, 40), (8, 8), (least - 1, 40)):
        with pytest.raises(ValueError, match=rf"at least {least}x{least} for LPIPS\(net='{net}'\)"):
            metric(torch.rand(1, 3, h, w), torch.rand(1, 3, h, w))
    assert metric(torch.rand(1, 3, least, least), torch.rand(1, 3, least, least)).shape == (1,)
