"""Bad inputs that once gave a silent wrong result or a raw error, now a one-line ``TypeError`` /
``ValueError`` naming the argument: the embeddings (random-conv features, VGG19, the wavelet
discriminator).
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses import (
    RandomConvContrastiveLoss,
    RandomConvFeatures,
    WaveletDiscriminator,
)
from contrastive_sr_losses.embeddings import VGG19Features


def test_random_conv_normalize_must_be_a_bool():
    for value in ("yes", "false", 1, None):
        with pytest.raises(TypeError, match="normalize must be a bool"):
            RandomConvContrastiveLoss(normalize=value)
        with pytest.raises(TypeError, match="normalize must be a bool"):
            RandomConvFeatures(normalize=value)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_random_conv_features_of_a_nonfinite_pixel_are_nan_there(value):
    x = torch.rand(1, 3, 12, 12)
    x[0, 1, 5, 6] = value
    f1, f2 = RandomConvFeatures()(x)
    for f, reach in ((f1, 1), (f2, 2)):  # NaN within the 3x3 (then 5x5) neighbourhood, finite far away
        assert torch.isnan(f[0, :, 5, 6]).all()
        assert torch.isfinite(f[0, :, 5 + reach + 1 :, :]).all() and torch.isfinite(f[0, :, : 5 - reach, :]).all()
    loss = RandomConvContrastiveLoss()(x, torch.rand(1, 3, 12, 12), lr=torch.rand(1, 3, 6, 6))
    assert torch.isnan(loss)


def test_random_conv_features_keep_their_values_and_gradient_on_finite_input():
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64, requires_grad=True)
    phi = RandomConvFeatures().double()
    f1 = phi(x)[0]
    pre = torch.nn.functional.conv2d((x - phi.mean) / phi.std, phi.weight1, phi.bias1, padding=1)
    assert torch.equal(f1, torch.tanh(pre))
    assert torch.autograd.gradcheck(lambda t: phi(t)[1].sum(), (x,))


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_random_conv_seed_out_of_range(seed):
    with pytest.raises(ValueError, match=r"seed must be an int in \[-2\*\*63, 2\*\*64 - 1\]"):
        RandomConvContrastiveLoss(seed=seed)
    RandomConvContrastiveLoss(seed=2**64 - 1)


@pytest.mark.parametrize("slope, error", [("x", TypeError), (None, TypeError), (float("nan"), ValueError)])
def test_wavelet_discriminator_negative_slope(slope, error):
    with pytest.raises(error, match="negative_slope must be"):
        WaveletDiscriminator(negative_slope=slope)


def test_vgg_weights_file_truncated(tmp_path):
    full = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, full)
    (tmp_path / "cut.pth").write_bytes(full.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cannot read the VGG19 weights from .*cut.pth") as err:
        VGG19Features(weights=tmp_path / "cut.pth")
    assert "\n" not in str(err.value)
