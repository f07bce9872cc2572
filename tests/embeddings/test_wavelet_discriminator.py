"""Tests of PCL's wavelet discriminator (Wu, Jiang, Liu and Ma): layout, high-frequency input, features,
odd sizes, arguments.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from contrastive_sr_losses.embeddings import WaveletDiscriminator
from contrastive_sr_losses.functional.wavelets import high_frequency_bands
from tests._pcl import _criterion, _pair, _tiny_disc


def test_default_discriminator_layout():
    disc = WaveletDiscriminator()
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs[:-1]] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs[:-1]] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert convs[0].in_channels == 9 and all(c.bias is None for c in convs[:-1])
    assert all(m.negative_slope == 0.2 and not m.inplace for m in disc.modules() if isinstance(m, nn.LeakyReLU))
    assert len([m for m in disc.modules() if isinstance(m, nn.BatchNorm2d)]) == 8
    x = torch.rand(2, 3, 32, 32)
    logits, features = disc(x, layers=(0, 2, 4, 6))
    assert logits.shape == (2, 1, 4, 4)
    assert [tuple(f.shape) for f in features] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]


def test_discriminator_sees_only_high_frequencies():
    disc = _tiny_disc().eval()
    x = torch.rand(2, 3, 16, 16)
    # adding a constant per 2x2 Haar block changes only LL, not LH / HL / HH
    blocks = torch.rand(2, 3, 8, 8).repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(disc(x + blocks), disc(x), rtol=1e-4, atol=1e-5)
    first_conv = disc.blocks[0][0]
    torch.testing.assert_close(disc.dwt(x), high_frequency_bands(x))
    assert first_conv.in_channels == 9


def test_discriminator_features_and_early_stop():
    disc = _tiny_disc().eval()
    x = torch.rand(2, 3, 16, 16)
    logits, features = disc(x, layers=(2, 0))
    only = disc(x, layers=(2, 0), return_logits=False)
    assert [f.shape[1] for f in features] == [16, 8]  # in the requested order
    for a, b in zip(features, only):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(logits, disc(x))
    calls = []
    handle = disc.blocks[3].register_forward_hook(lambda *a: calls.append(1))
    disc(x, layers=(0,), return_logits=False)
    handle.remove()
    assert calls == []  # blocks after the last requested layer are not run
    assert (features[1] < 0).any()  # LeakyReLU outputs, not overwritten in place


def test_discriminator_odd_sizes_and_grayscale():
    disc = _tiny_disc(in_channels=1, pool_size=2)
    assert disc(torch.rand(3, 1, 15, 17)).shape == (3, 1, 2, 2)


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: WaveletDiscriminator(channels=(8, 8), strides=(1,)), ValueError, "stride of 1 or 2 for each of the 2 blocks"),
        (lambda: WaveletDiscriminator(channels=(8,), strides=(3,)), ValueError, "stride of 1 or 2"),
        (lambda: WaveletDiscriminator(channels=()), ValueError, "channels must not be empty"),
        (lambda: WaveletDiscriminator(in_channels=0), ValueError, "in_channels must be >= 1"),
        (lambda: WaveletDiscriminator(wavelet="nope"), ValueError, "discrete wavelet"),
        (lambda: _tiny_disc()(torch.rand(1, 1, 8, 8)), ValueError, r"input must be \(N, 3, H, W\)"),
        (lambda: _tiny_disc()(torch.rand(1, 3, 8, 8), layers=(4,)), ValueError, r"block indices in \[0, 4\)"),
        (lambda: _tiny_disc()(torch.rand(1, 3, 8, 8), layers=(1, 1)), ValueError, "distinct"),
        (lambda: _tiny_disc()(torch.rand(1, 3, 8, 8), return_logits=False), ValueError, "needs layers"),
    ],
)
def test_discriminator_bad_arguments(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_float64_discriminator():
    crit = _criterion()
    crit.double()
    sr, hr = _pair(dtype=torch.float64)
    loss = crit(sr, hr)
    assert loss.dtype == torch.float64
    loss.backward()
    assert sr.grad.dtype == torch.float64
