"""Degenerate inputs and settings for every public loss: a NaN batch leaves PCL's discriminator
untouched, flat inputs give bounded finite gradients, hyper-parameters that would make a loss NaN /
Inf / zero are refused, Inf inputs of the ratio losses give NaN (never a silent number), shapes infer
on meta tensors, and a property test over every public loss.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("PIL")
pytest.importorskip("tqdm")
from contrastive_sr_losses.embeddings import RandomConvFeatures, VGG19Features, WaveletDiscriminator  # noqa: E402
from contrastive_sr_losses.functional import imresize, quantize  # noqa: E402
from contrastive_sr_losses.losses import (  # noqa: E402
    FrequencyContrastiveLoss,
    GaussianHighPassLoss,
    PCLTrainer,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
    RatioContrastiveLoss,
    contrastive_discriminator_loss,
    frequency_contrastive_loss,
    gaussian_high_pass_loss,
    pixel_contrastive_loss,
    pixel_contrastive_reference_map,
    pixel_contrastive_sliding_reference_map,
    random_conv_contrastive_loss,
    ratio_contrastive_loss,
)


def _tiny_disc(seed: int = 0) -> WaveletDiscriminator:
    torch.manual_seed(seed)
    return WaveletDiscriminator(channels=(4, 4, 8, 8), strides=(1, 2, 1, 2))


def _tiny_pcl(seed: int = 0) -> FrequencyContrastiveLoss:
    return FrequencyContrastiveLoss(_tiny_disc(seed), layers=(0, 2), num_positives=2, num_negatives=2)


_sr, _hr = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)


_f, _p = torch.randn(1, 4, 2, 2), torch.randn(1, 1, 4, 2, 2)


ARG_NAMES = ("sr", "hr", "lr", "negative", "anchor", "positives", "negatives", "temperature", "region",
             "sigma", "eps", "value_range", "layer_weights", "reduction", "input", "real_logits", "fake_logits")


_PHI = RandomConvFeatures()


_DISC = _tiny_disc()


_BAD_NUMBERS = (0.0, -1.0, math.nan, math.inf, 1e-40, 1e308, "1", None)


def _call(name: str, sr, hr, lr, hyper):
    """One public loss on the drawn inputs; ``hyper`` is the drawn value of its main hyper-parameter."""
    if name == "pixel":
        return pixel_contrastive_loss(sr, hr, 2, temperature=hyper)
    if name == "pixel_sliding_module":
        return PixelContrastiveLoss(region=2, mode="sliding", temperature=hyper)(sr, hr)
    if name == "pixel_reference_map":
        return pixel_contrastive_reference_map(sr, hr, 2, temperature=hyper)
    if name == "pixel_sliding_reference_map":
        return pixel_contrastive_sliding_reference_map(sr, hr, 3, temperature=hyper)
    if name == "high_pass":
        return gaussian_high_pass_loss(sr, hr, hyper, mode="fft")
    if name == "high_pass_module":
        return GaussianHighPassLoss(sigma=hyper, kernel_size=3)(sr, hr)
    if name == "ratio":
        return ratio_contrastive_loss(sr, hr, lr, _PHI, (0.5, 0.5), eps=hyper)
    if name == "random_conv":
        return RandomConvContrastiveLoss(eps=hyper)(sr, hr, lr=lr)
    if name == "random_conv_functional":
        return random_conv_contrastive_loss(sr, hr, lr, eps=hyper)
    if name == "ratio_module":
        return RatioContrastiveLoss(_PHI, (1.0, 0.0), eps=hyper)(sr, hr, lr)
    if name == "discriminator":
        return contrastive_discriminator_loss(sr, hr)
    if name == "pcl_trainer":
        criterion = FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), num_positives=2, num_negatives=2,
                                             temperature=hyper, blur_kernel_sizes=(3,))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the skipped step of a NaN batch
            return PCLTrainer(criterion)(sr, hr)
    if name == "frequency":
        return FrequencyContrastiveLoss(_DISC, layers=(0,), num_positives=2, num_negatives=2, temperature=hyper,
                                        blur_kernel_sizes=(3,))(sr, hr)
    if name == "frequency_functional":
        return frequency_contrastive_loss(sr, hr.unsqueeze(1) if torch.is_tensor(hr) else hr,
                                          lr.unsqueeze(1) if torch.is_tensor(lr) else lr, temperature=hyper)
    raise AssertionError(name)


VALID_HYPER = {"pixel": 1.0, "pixel_sliding_module": 0.5, "pixel_reference_map": 2.0, "pixel_sliding_reference_map": 0.3,
               "high_pass": 1.0, "high_pass_module": 0.5, "ratio": 1e-7, "ratio_module": 1e-6, "random_conv": 1e-3,
               "random_conv_functional": 1e-7, "frequency": 1.0, "frequency_functional": 0.5, "pcl_trainer": 1.0,
               "discriminator": None}


LOSS_NAMES = tuple(VALID_HYPER)  # every public loss of contrastive_sr_losses.losses


@st.composite
def _case(draw):
    name = draw(st.sampled_from(LOSS_NAMES))
    n, c = (2 if name == "pcl_trainer" else draw(st.integers(1, 2))), 3  # training BatchNorm needs 2 values
    h, w = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    sr, hr = torch.rand(n, c, h, w, generator=gen).to(dtype), torch.rand(n, c, h, w, generator=gen).to(dtype)
    lr = torch.rand(n, c, h, w, generator=gen).to(dtype)
    fault = draw(st.sampled_from(["none", "none", "nan", "inf", "hyper", "dtype", "type", "shape", "empty"]))
    hyper = VALID_HYPER[name]
    target = draw(st.sampled_from(["sr", "hr"]))
    if fault == "nan" or fault == "inf":
        t = sr if target == "sr" else hr
        t[draw(st.integers(0, n - 1)), draw(st.integers(0, c - 1)), draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = (
            math.nan if fault == "nan" else draw(st.sampled_from([math.inf, -math.inf])))
    elif fault == "hyper" and hyper is None:
        fault = "none"  # no hyper-parameter
    elif fault == "hyper":
        hyper = draw(st.sampled_from(_BAD_NUMBERS))
    elif fault == "dtype":
        sr, hr = (sr.to(torch.int64), hr) if target == "sr" else (sr, (hr * 255).to(torch.uint8))
    elif fault == "type":
        bad = draw(st.sampled_from([None, [0.5], 0.5, np.zeros((n, c, h, w), np.float32)]))
        sr, hr = (bad, hr) if target == "sr" else (sr, bad)
    elif fault == "shape":
        if target == "hr":
            hr = hr[..., : h - 1, :]
        else:
            sr = sr[0]
    elif fault == "empty":
        sr, hr, lr = sr[:0], hr[:0], lr[:0]
    if name in ("ratio", "random_conv") and draw(st.booleans()) and fault == "none":
        lr = lr[..., : max(1, h // 2), : max(1, w // 2)] if name == "random_conv" else lr
    if name in ("ratio", "ratio_module", "random_conv_functional"):  # these take the negative, at sr's size
        lr = lr if lr.shape == (n, c, h, w) else torch.rand(n, c, h, w).to(dtype)
    return name, sr, hr, lr, hyper, fault


def test_a_nan_batch_skips_the_discriminator_step_and_leaves_it_untouched():
    pcl = PCLTrainer(_tiny_pcl(), lr=1e-3)
    hr = torch.rand(2, 3, 16, 16)
    pcl(torch.rand(2, 3, 16, 16), hr)  # a first good step, so the optimizer has state
    before_disc = {k: v.clone() for k, v in pcl.discriminator.state_dict().items()}
    before_opt = {k: v.clone() for k, v in pcl.optimizer.state_dict()["state"][0].items()}
    bad = torch.rand(2, 3, 16, 16)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.warns(RuntimeWarning, match="step skipped"):
        out = pcl(bad, hr)
    assert torch.isnan(out)
    assert pcl.steps == 1 and pcl.skipped_steps == 1
    for k, v in pcl.discriminator.state_dict().items():
        assert torch.equal(v, before_disc[k]), k  # weights and BatchNorm statistics
    for k, v in pcl.optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, before_opt[k]), k
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(pcl(torch.rand(2, 3, 16, 16), hr))  # and training goes on
    assert pcl.steps == 2 and pcl.state_dict()["skipped_steps"] == 1


@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_flat_sr_has_a_bounded_finite_gradient(dtype):
    criterion = _tiny_pcl()
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for sr in (torch.full((2, 3, 32, 32), 0.5), hr.clone().index_fill_(-1, torch.arange(8), 0.25)):
        sr.requires_grad_(True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(sr, hr, generator=torch.Generator().manual_seed(1))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(sr.grad).all()
        assert sr.grad.abs().max() < 10  # 1.1e4 with eps=1e-8 (fp32), NaN under fp16 autocast


def test_zero_anchor_gradient_is_bounded():
    a = torch.zeros(2, 8, 4, 4, requires_grad=True)
    p, n = torch.randn(2, 2, 8, 4, 4), torch.randn(2, 2, 8, 4, 4)
    frequency_contrastive_loss(a, p, n).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().max() < 1e3  # was 2e6


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda t: PixelContrastiveLoss(temperature=t), "temperature"),
        (lambda t: pixel_contrastive_loss(_sr, _hr, 4, temperature=t), "temperature"),
        (lambda t: frequency_contrastive_loss(_f, _p, _p, temperature=t), "temperature"),
        (lambda t: FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), temperature=t), "temperature"),
        (lambda t: GaussianHighPassLoss(sigma=t), "sigma"),
        (lambda t: gaussian_high_pass_loss(_sr, _hr, t), "sigma"),
        (lambda t: RandomConvContrastiveLoss(value_range=t), "value_range"),
        (lambda t: FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), value_range=t), "value_range"),
        (lambda t: VGG19Features(("relu1_1",), value_range=t), "value_range"),
        (lambda t: RandomConvContrastiveLoss(eps=t), "eps"),
        (lambda t: frequency_contrastive_loss(_f, _p, _p, eps=t), "eps"),
        (lambda t: RandomConvContrastiveLoss(layer_weights=(0.5, t)), "layer_weights"),
    ],
)
@pytest.mark.parametrize("value", [1e-40, 1e-30, 1e308, math.inf, math.nan])
def test_values_that_make_a_loss_nan_inf_or_zero_are_refused(call, name, value):
    if name == "layer_weights" and math.isfinite(value):
        return  # small or large finite weights are fine
    with pytest.raises(ValueError, match=name):
        call(value)


def test_all_zero_layer_weights_are_refused():
    with pytest.raises(ValueError, match="layer_weights .* not all 0"):
        RandomConvContrastiveLoss(layer_weights=(0.0, 0.0))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: RandomConvContrastiveLoss()(_sr, _hr, lr=(torch.rand(1, 3, 8, 8) * 255).to(torch.uint8)), TypeError, "lr must be a floating"),
        (lambda: RandomConvContrastiveLoss()(_sr, _hr, lr=torch.rand(1, 3, 32, 32)), ValueError, "lr must not be larger than sr"),
        (lambda: frequency_contrastive_loss(_f, _p.long(), _p), TypeError, r"positives\[0\] must be a floating"),
        (lambda: frequency_contrastive_loss(_f[:0], _p[:0], _p[:0]), ValueError, r"anchor\[0\] must be non-empty"),
        (lambda: VGG19Features(("relu1_1",))(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "input must be a floating"),
        (lambda: quantize(torch.zeros(4, dtype=torch.uint8)), TypeError, "img must be a floating"),
        (lambda: quantize([0.5]), TypeError, "img must be a floating-point torch.Tensor"),
        (lambda: quantize(None), TypeError, "img must be a floating-point torch.Tensor"),
        (lambda: pixel_contrastive_reference_map([1.0], _hr), TypeError, "sr must be a torch.Tensor"),
        (lambda: pixel_contrastive_reference_map(_sr, _hr.long()), TypeError, "hr must be a floating"),
        (lambda: pixel_contrastive_reference_map(_sr, _hr, region=100), ValueError, "region must be <="),
        (lambda: pixel_contrastive_sliding_reference_map(_sr, _hr[..., :8]), ValueError, "same shape"),
        (lambda: pixel_contrastive_sliding_reference_map(_sr, _hr, temperature=0), ValueError, "temperature"),
        (lambda: RandomConvFeatures()([1.0]), TypeError, "input must be a torch.Tensor"),
        (lambda: RandomConvFeatures()(None), TypeError, "input must be a torch.Tensor"),
        (lambda: _tiny_disc()(None), TypeError, "input must be a torch.Tensor"),
        (lambda: _tiny_disc()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "input must be a floating"),
        (lambda: VGG19Features(("relu1_1",))([1.0]), TypeError, "input must be a torch.Tensor"),
    ],
)
def test_refused_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("where", ["sr", "hr"])
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_inf_input_of_ratio_losses_gives_nan(where, value):
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    lr = torch.rand(2, 3, 8, 8)
    (sr if where == "sr" else hr)[1, 0, 2, 2] = value
    random_conv = RandomConvContrastiveLoss(reduction="none")(sr, hr, lr=lr)
    assert torch.isfinite(random_conv[0]) and torch.isnan(random_conv[1])  # only the image with the Inf
    assert torch.isnan(random_conv_contrastive_loss(sr, hr, imresize(lr, 2)))
    ratio = RatioContrastiveLoss(RandomConvFeatures(), (1.0, 0.0))(sr, hr, lr=lr)
    assert torch.isnan(ratio)


def test_the_guard_changes_no_finite_value_or_gradient():
    sr = torch.rand(2, 3, 16, 16, requires_grad=True)
    hr, neg = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    phi = RandomConvFeatures()
    loss = ratio_contrastive_loss(sr, hr, neg, phi, (0.5, 0.5), reduction="none")
    f_sr, f_hr, f_neg = phi(sr), phi(hr), phi(neg)
    expected = sum(0.5 * (a - p).abs().flatten(1).mean(1) / ((a - n).abs().flatten(1).mean(1) + 1e-7)
                   for a, p, n in zip(f_sr, f_hr, f_neg))
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)


def test_losses_and_imresize_infer_shapes_on_meta_tensors():
    sr = torch.empty(2, 3, 16, 16, device="meta")
    assert GaussianHighPassLoss()(sr, sr).shape == ()
    assert GaussianHighPassLoss(mode="fft", reduction="none")(sr, sr).shape == (2, 3, 16, 16)
    assert pixel_contrastive_loss(sr, sr, 4, backend="torch").shape == ()
    f, p = torch.empty(2, 8, 4, 4, device="meta"), torch.empty(2, 3, 8, 4, 4, device="meta")
    assert frequency_contrastive_loss(f, p, p, reduction="none").shape == (2,)
    assert _tiny_pcl().to("meta")(sr, sr).device.type == "meta"
    assert imresize(sr, 0.5).shape == (2, 3, 8, 8)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as flops:
        GaussianHighPassLoss(mode="fft")(sr, sr)
        _tiny_pcl().to("meta")(sr, sr)
    assert flops.get_total_flops() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert frequency_contrastive_loss(f, p, p).shape == ()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=_case())
def test_property_every_public_loss_gives_only_documented_outcomes(case):
    name, sr, hr, lr, hyper, fault = case
    try:
        out = _call(name, sr, hr, lr, hyper)
    except (ValueError, TypeError) as err:
        assert fault != "none", f"{name} refused valid input: {err}"
        assert "\n" not in str(err) and any(arg in str(err) for arg in ARG_NAMES), f"{name}: {err!r} names no argument"
        return
    assert fault in ("none", "nan", "inf"), f"{name} accepted {fault} input"
    assert torch.is_tensor(out) and out.dtype in (torch.float32, torch.float64)
    if fault == "none":
        assert torch.isfinite(out).all(), f"{name} gave {out} on valid input"
    elif fault == "nan":
        assert torch.isnan(out).any(), f"{name} gave {out} for NaN input"
    else:
        assert not torch.isfinite(out).all(), f"{name} gave the finite {out} for Inf input"
