"""The value-range guard: one look at the images on a loss's first call, one warning naming value_range."""

from __future__ import annotations

import warnings

import pytest
import torch

import contrastive_sr_losses as csl
from contrastive_sr_losses import (
    CombinedLoss,
    FrequencyContrastiveLoss,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
    ValueRangeWarning,
    WaveletDiscriminator,
)


def _images(scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.rand(2, 3, 16, 16, generator=gen), scale * torch.rand(2, 3, 16, 16, generator=gen)


def _range_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, ValueRangeWarning)]


def _losses():
    disc = WaveletDiscriminator(channels=(4, 4), strides=(1, 2))
    return [
        (PixelContrastiveLoss, lambda v: PixelContrastiveLoss(value_range=v), False),
        (RandomConvContrastiveLoss, lambda v: RandomConvContrastiveLoss(value_range=v), True),
        (FrequencyContrastiveLoss,
         lambda v: FrequencyContrastiveLoss(disc, layers=(0,), num_positives=2, num_negatives=2, value_range=v), False),
    ]


@pytest.mark.parametrize("index", range(3))
def test_fires_for_255_hr_with_the_default_once_and_not_for_unit_images(index):
    _, make, needs_lr = _losses()[index]
    lr = {"lr": torch.rand(2, 3, 8, 8)} if needs_lr else {}
    sr, hr = _images(255.0)
    loss = make(1.0)
    found = _range_warnings(lambda: loss(sr, hr, **lr))
    assert len(found) == 1 and "value_range=1" in found[0] and "[0, 255]" in found[0]
    assert _range_warnings(lambda: loss(sr, hr, **{k: 255 * v for k, v in lr.items()})) == []  # once per instance
    sr, hr = _images(1.0)
    assert _range_warnings(lambda: make(1.0)(sr, hr, **lr)) == []
    lr255 = {k: 255 * v for k, v in lr.items()}
    assert _range_warnings(lambda: make(255.0)(255 * sr, 255 * hr, **lr255)) == []


def test_fires_for_unit_hr_with_value_range_255_and_for_mixed_ranges():
    sr, hr = _images(1.0)
    found = _range_warnings(lambda: PixelContrastiveLoss(value_range=255.0)(sr, hr))
    assert len(found) == 1 and "hr looks like [0, 1]" in found[0] and "value_range=255" in found[0]
    found = _range_warnings(lambda: PixelContrastiveLoss()(sr, 255 * hr))
    assert len(found) == 1 and "sr and hr look like different ranges" in found[0] and "value_range" in found[0]


def test_the_switch_turns_it_off_and_combined_loss_terms_are_checked():
    sr, hr = _images(255.0)
    csl.set_value_range_check(False)
    try:
        assert _range_warnings(lambda: PixelContrastiveLoss()(sr, hr)) == []
    finally:
        csl.set_value_range_check(True)
    found = _range_warnings(lambda: CombinedLoss({"l1": 1.0, "pixel_contrastive": 0.1})(sr, hr))
    assert len(found) == 1 and found[0].startswith("PixelContrastiveLoss:")
    with pytest.raises(TypeError, match="enabled must be a bool"):
        csl.set_value_range_check("no")  # type: ignore[arg-type]


def test_only_the_first_call_reads_values():
    loss = PixelContrastiveLoss()
    sr, hr = _images()
    loss(sr, hr)
    assert loss._value_range_checked
    calls = []
    real = torch.Tensor.tolist

    def spy(self):
        calls.append(1)
        return real(self)

    torch.Tensor.tolist = spy  # type: ignore[method-assign]
    try:
        loss(sr, hr)
    finally:
        torch.Tensor.tolist = real  # type: ignore[method-assign]
    assert calls == []


def test_compiled_loss_skips_the_guard_while_tracing():
    loss = PixelContrastiveLoss(backend="torch")
    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    sr, hr = _images(255.0)
    assert _range_warnings(lambda: compiled(sr, hr)) == []


def test_a_channels_last_shaped_tensor_gets_a_message_naming_the_layout():
    sr, hr = _images()
    nhwc_sr, nhwc_hr = sr.permute(0, 2, 3, 1), hr.permute(0, 2, 3, 1)
    for loss in (PixelContrastiveLoss(), RandomConvContrastiveLoss()):
        with pytest.raises(ValueError, match=r"looks like the channels-last layout \(N, H, W, C\).*permute\(0, 3, 1, 2\)"):
            loss(nhwc_sr, nhwc_hr, **({"lr": nhwc_sr[:, :8, :8]} if isinstance(loss, RandomConvContrastiveLoss) else {}))


def test_meta_tensors_skip_the_guard():
    sr = torch.empty(2, 3, 16, 16, device="meta")
    loss = PixelContrastiveLoss(backend="torch")
    assert loss(sr, sr).device.type == "meta"
    assert not getattr(loss, "_value_range_checked", False)  # checked on the first call with data


def test_non_finite_maxima_are_not_read_as_a_range():
    sr, hr = _images()
    sr[0, 0, 0, 0] = float("inf")
    assert _range_warnings(lambda: PixelContrastiveLoss()(sr, hr)) == []
