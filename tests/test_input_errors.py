"""The bad inputs of issue 22's campaign that gave a silent wrong result or a raw error: each is now a
one-line ``TypeError`` / ``ValueError`` naming the argument (or, for psnr_y / ssim_y on one channel,
a documented behaviour tested in ``test_metrics.py``)."""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses import (
    FrequencyContrastiveLoss,
    PCLTrainer,
    RandomConvContrastiveLoss,
    RandomConvFeatures,
    WaveletDiscriminator,
    create_model,
    dwt2,
    gaussian_blur2d,
    idwt2,
)
from contrastive_sr_losses.embeddings import VGG19Features
from contrastive_sr_losses.metrics import LPIPS_MIN_SIZE, LPIPS

SMALL = {"channels": [8, 8, 16, 16], "strides": [1, 2, 1, 2]}


# ------------------------------------------------------------------------ silent wrong results


def test_random_conv_normalize_must_be_a_bool():
    for value in ("yes", "false", 1, None):
        with pytest.raises(TypeError, match="normalize must be a bool"):
            RandomConvContrastiveLoss(normalize=value)
        with pytest.raises(TypeError, match="normalize must be a bool"):
            RandomConvFeatures(normalize=value)


@pytest.mark.parametrize("ratio", [0, 0.001, -1, float("nan"), float("inf")])
def test_swinir_mlp_ratio_must_give_an_mlp(ratio):
    with pytest.raises(ValueError, match="mlp_ratio must"):
        create_model("swinir_light", 2, mlp_ratio=ratio, embed_dim=12, depths=(1,), heads=(2,))


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


# ------------------------------------------------------------------------ raw errors


def test_gaussian_blur_circular_padding_larger_than_the_image():
    with pytest.raises(ValueError, match=r"circular padding of \d+ pixels .* needs H and W >= \d+, got an image of 2x2"):
        gaussian_blur2d(torch.rand(1, 1, 2, 2), 1.5, padding_mode="circular")
    assert gaussian_blur2d(torch.rand(1, 1, 2, 2), 0.5, padding_mode="circular").shape == (1, 1, 2, 2)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_random_conv_seed_out_of_range(seed):
    with pytest.raises(ValueError, match=r"seed must be an int in \[-2\*\*63, 2\*\*64 - 1\]"):
        RandomConvContrastiveLoss(seed=seed)
    RandomConvContrastiveLoss(seed=2**64 - 1)


@pytest.mark.parametrize("betas, error", [((2.0, 0.999), ValueError), ("ab", TypeError), ((0.9,), ValueError),
                                          ((0.9, float("nan")), ValueError), ((True, 0.9), TypeError)])
def test_pcl_trainer_betas(betas, error):
    with pytest.raises(error, match="betas must be"):
        PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator(**SMALL), layers=[0, 2]), betas=betas)


def test_pcl_trainer_refuses_another_discriminators_state_and_changes_nothing():
    small = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator(**SMALL), layers=[0, 2]))
    before = {k: v.clone() for k, v in small.discriminator.state_dict().items()}
    other = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator())).state_dict()
    with pytest.raises(ValueError, match=r"state\['discriminator'\] is another discriminator's: blocks.0.0.weight is \(64, 9, 3, 3\) there, \(8, 9, 3, 3\) here"):
        small.load_state_dict(other)
    with pytest.raises(TypeError, match="state must be a dict"):
        small.load_state_dict(None)
    assert all(torch.equal(before[k], v) for k, v in small.discriminator.state_dict().items())


def test_pcl_trainer_refuses_an_optimizer_state_that_does_not_fit_and_keeps_its_discriminator():
    a = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator(**SMALL), layers=[0, 2]))
    state = a.state_dict()
    state["optimizer"] = {"state": {}, "param_groups": []}  # no group: does not fit
    before = {k: v.clone() for k, v in a.discriminator.state_dict().items()}
    torch.manual_seed(1)
    state["discriminator"] = WaveletDiscriminator(**SMALL).state_dict()
    with pytest.raises(ValueError, match=r"state\['optimizer'\] does not fit"):
        a.load_state_dict(state)
    assert all(torch.equal(before[k], v) for k, v in a.discriminator.state_dict().items())


@pytest.mark.parametrize("slope, error", [("x", TypeError), (None, TypeError), (float("nan"), ValueError)])
def test_wavelet_discriminator_negative_slope(slope, error):
    with pytest.raises(error, match="negative_slope must be"):
        WaveletDiscriminator(negative_slope=slope)


@pytest.mark.parametrize("size, error", [(("a", "b"), TypeError), (5, TypeError), ((4,), ValueError), ((0, 4), ValueError)])
def test_idwt2_size(size, error):
    bands = dwt2(torch.rand(1, 3, 8, 8))
    with pytest.raises(error, match="size must be a pair of ints"):
        idwt2(*bands, size=size)


def test_create_model_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"name must be a model name \(str\), one of edsr_baseline"):
        create_model(["edsr"])


@pytest.mark.parametrize("mean, error", [("abc", TypeError), ((0.4, 0.4), ValueError), (5, TypeError), ((0.4, "a", 0.4), TypeError)])
def test_edsr_rgb_mean(mean, error):
    with pytest.raises(error, match="rgb_mean must"):
        create_model("edsr", 2, rgb_mean=mean, n_resblocks=1, n_feats=8)


@pytest.mark.parametrize("size", [16, 8])
def test_pcl_on_one_small_image_says_what_batchnorm_needs(size):
    trainer = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator()))
    before = [b.clone() for b in trainer.discriminator.buffers()]
    with pytest.raises(ValueError, match=rf"input of shape \(1, 3, {size}, {size}\): block \d of the discriminator would see 1 value per channel"):
        trainer(torch.rand(1, 3, size, size, requires_grad=True), torch.rand(1, 3, size, size))
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.buffers()))  # no statistics touched
    trainer(torch.rand(2, 3, size, size, requires_grad=True), torch.rand(2, 3, size, size))  # a batch of two works


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


def test_vgg_weights_file_truncated(tmp_path):
    full = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, full)
    (tmp_path / "cut.pth").write_bytes(full.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cannot read the VGG19 weights from .*cut.pth") as err:
        VGG19Features(weights=tmp_path / "cut.pth")
    assert "\n" not in str(err.value)
