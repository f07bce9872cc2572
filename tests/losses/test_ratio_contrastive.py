"""Ratio contrastive losses: the generic form, the RLFN random-conv form and the VGG19 (CSD) extractor."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from contrastive_sr_losses.embeddings.random_conv_features import RandomConvFeatures
from contrastive_sr_losses.embeddings.vgg import (
    CSD_LAYERS,
    CSD_WEIGHTS,
    VGG19_IMAGENET_FILE,
    VGG19_LAYERS,
    VGG19Features,
)
from contrastive_sr_losses.losses.random_conv import (
    RANDOM_CONV_WEIGHTS,
    RandomConvContrastiveLoss,
    random_conv_contrastive_loss,
)
from contrastive_sr_losses.losses.ratio_contrastive import (
    RatioContrastiveLoss,
    ratio_contrastive_loss,
    upsample_negative,
)

# random images put SR as near the negative as HR: the first-batch warning is tested on its own below
pytestmark = pytest.mark.filterwarnings("ignore:RandomConvContrastiveLoss:UserWarning")


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class TwoScales(nn.Module):
    """A feature extractor whose features are x and 2x: every distance is known by hand."""

    def forward(self, x):
        return [x, 2 * x]


# ------------------------------------------------------------------------------ generic ratio


def test_ratio_by_hand():
    sr = torch.zeros(2, 1, 2, 2)
    hr = torch.ones(2, 1, 2, 2)
    neg = torch.full((2, 1, 2, 2), 3.0)
    neg[1] = 4.0
    loss = RatioContrastiveLoss(TwoScales(), (1.0, 0.5), eps=0.0 + 1e-12, reduction="none")(sr, hr, neg)
    # image 0: d_pos = 1, d_neg = 3 on layer 1, 2 and 6 on layer 2 -> 1/3 + 0.5 * 1/3
    # image 1: d_neg = 4 and 8 -> 1/4 + 0.5 * 1/4
    torch.testing.assert_close(loss, torch.tensor([0.5, 0.375]))
    mean = ratio_contrastive_loss(sr, hr, neg, TwoScales(), (1.0, 0.5), eps=1e-12)
    assert mean.item() == pytest.approx(0.4375)
    total = ratio_contrastive_loss(sr, hr, neg, TwoScales(), (1.0, 0.5), eps=1e-12, reduction="sum")
    assert total.item() == pytest.approx(0.875)


def test_eps_keeps_the_ratio_finite():
    x = _rand(1, 3, 8, 8)
    out = ratio_contrastive_loss(x, x + 1, x, TwoScales(), (1.0, 1.0), eps=1e-7)
    assert torch.isfinite(out) and out.item() > 1e6


def test_zero_layer_weight_skips_the_layer():
    sr, hr, neg = _rand(1, 1, 4, 4, seed=1), _rand(1, 1, 4, 4, seed=2), _rand(1, 1, 4, 4, seed=3)
    a = ratio_contrastive_loss(sr, hr, neg, TwoScales(), (1.0, 0.0))
    b = (sr - hr).abs().mean() / ((sr - neg).abs().mean() + 1e-7)
    torch.testing.assert_close(a, b)


def test_extractor_is_frozen_and_stays_in_eval_mode():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = conv

        def forward(self, x):
            return [self.net(x)]

    loss = RatioContrastiveLoss(Wrap(), (1.0,))
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert loss.training and not loss.feature_extractor.training
    running = conv[1].running_mean.clone()
    sr = _rand(2, 3, 8, 8).requires_grad_()
    loss(sr, _rand(2, 3, 8, 8, seed=1), _rand(2, 3, 8, 8, seed=2)).backward()
    assert torch.equal(conv[1].running_mean, running)  # eval mode: BatchNorm statistics untouched
    assert sr.grad is not None and conv[0].weight.grad is None


# ------------------------------------------------------------------------------ random conv


def _naive_conv3x3(x, w, b):
    """Zero-padded 3x3 convolution by explicit sums (no conv2d)."""
    n, c, h, wd = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros(n, w.shape[0], h, wd, dtype=x.dtype)
    for o in range(w.shape[0]):
        for i in range(c):
            for dy in range(3):
                for dx in range(3):
                    out[:, o] += w[o, i, dy, dx] * xp[:, i, dy : dy + h, dx : dx + wd]
        out[:, o] += b[o]
    return out


def test_random_conv_features_by_hand():
    phi = RandomConvFeatures(3, 4, seed=3, normalize=True).double()
    x = _rand(1, 3, 5, 6, seed=4, dtype=torch.float64)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    f1 = torch.tanh(_naive_conv3x3((x - mean) / std, phi.weight1, phi.bias1))
    f2 = _naive_conv3x3(f1, phi.weight2, phi.bias2)
    out = phi(x)
    torch.testing.assert_close(out[0], f1)
    torch.testing.assert_close(out[1], f2)


def test_random_conv_init_bounds_and_value_range():
    phi = RandomConvFeatures(3, 16, seed=0)
    assert phi.weight1.abs().max() <= 1 / 27**0.5 and phi.weight2.abs().max() <= 1 / 144**0.5
    x = _rand(1, 3, 8, 8)
    a = RandomConvFeatures(seed=0)(x)
    b = RandomConvFeatures(seed=0, value_range=255.0)(x * 255)
    torch.testing.assert_close(a[1], b[1], rtol=1e-4, atol=1e-5)


def test_random_conv_value_range_contract_scales_like_l1():
    gen = torch.Generator().manual_seed(4)
    sr, hr, lr = (torch.rand(s, generator=gen, dtype=torch.float64) for s in ((2, 3, 16, 16), (2, 3, 16, 16), (2, 3, 8, 8)))
    unit = RandomConvContrastiveLoss(seed=0).double()(sr, hr, lr=lr)
    byte = RandomConvContrastiveLoss(seed=0, value_range=255.0).double()(sr * 255, hr * 255, lr=lr * 255)
    torch.testing.assert_close(byte, 255 * unit, rtol=1e-6, atol=0)  # the buffers hold float32 mean / std * 255
    functional = random_conv_contrastive_loss(sr * 255, hr * 255, upsample_negative(lr * 255, sr), value_range=255.0)
    torch.testing.assert_close(functional.double(), byte, rtol=1e-5, atol=0)


def test_random_conv_weights_are_buffers_not_parameters():
    loss = RandomConvContrastiveLoss(seed=0)
    assert list(loss.parameters()) == []
    keys = set(loss.state_dict())
    assert {"feature_extractor.weight1", "feature_extractor.bias1", "feature_extractor.weight2", "feature_extractor.bias2"} <= keys
    moved = loss.to(torch.float64)
    assert moved.feature_extractor.weight1.dtype == torch.float64
    loss.train()
    assert not loss.feature_extractor.training


def test_same_seed_same_loss_and_state_dict_round_trip():
    sr, hr, neg = _rand(2, 3, 12, 12, seed=1), _rand(2, 3, 12, 12, seed=2), _rand(2, 3, 12, 12, seed=3)
    a, b, c = RandomConvContrastiveLoss(seed=7), RandomConvContrastiveLoss(seed=7), RandomConvContrastiveLoss(seed=8)
    assert torch.equal(a(sr, hr, neg), b(sr, hr, neg))
    assert not torch.allclose(a(sr, hr, neg), c(sr, hr, neg))
    c.load_state_dict(a.state_dict())
    assert torch.equal(c(sr, hr, neg), a(sr, hr, neg))
    # the same weights whatever global RNG state
    torch.manual_seed(123)
    d = RandomConvContrastiveLoss(seed=7)
    assert torch.equal(d.feature_extractor.weight2, a.feature_extractor.weight2)


def test_random_conv_zero_when_sr_equals_hr_and_about_one_for_bicubic():
    lr = _rand(2, 3, 16, 16, seed=1)
    hr = F.interpolate(lr, scale_factor=2, mode="bicubic") + 0.05 * _rand(2, 3, 32, 32, seed=2)
    loss = RandomConvContrastiveLoss()
    assert loss(hr, hr, lr=lr).item() == 0.0
    assert loss(upsample_negative(lr, hr), hr, lr=lr).item() > 1e4  # sr == negative: d_pos / eps
    halfway = 0.5 * (upsample_negative(lr, hr) + hr)
    assert 0.5 < loss(halfway, hr, lr=lr).item() < 1.5  # halfway between HR and the negative: ratios near 1


def test_lr_convenience_equals_explicit_negative():
    sr, hr, lr = _rand(2, 3, 24, 24, seed=4), _rand(2, 3, 24, 24, seed=5), _rand(2, 3, 8, 8, seed=6)
    loss = RandomConvContrastiveLoss()
    neg = F.interpolate(lr, size=(24, 24), mode="bicubic", align_corners=False)
    torch.testing.assert_close(loss(sr, hr, lr=lr), loss(sr, hr, neg))


def test_module_equals_functional():
    sr, hr, neg = _rand(2, 3, 12, 10, seed=1), _rand(2, 3, 12, 10, seed=2), _rand(2, 3, 12, 10, seed=3)
    for kwargs in ({}, {"channels": 8, "seed": 3, "layer_weights": (1.0, 0.25), "normalize": False}):
        module = RandomConvContrastiveLoss(**kwargs)
        torch.testing.assert_close(module(sr, hr, neg), random_conv_contrastive_loss(sr, hr, neg, **kwargs))
    assert RandomConvContrastiveLoss().layer_weights == RANDOM_CONV_WEIGHTS


def test_gradient_reaches_sr_only():
    sr = _rand(2, 3, 12, 12, seed=1).requires_grad_()
    hr = _rand(2, 3, 12, 12, seed=2).requires_grad_()
    neg = _rand(2, 3, 12, 12, seed=3).requires_grad_()
    RandomConvContrastiveLoss()(sr, hr, neg).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None and neg.grad is None


def test_gradcheck_float64():
    sr = _rand(1, 3, 5, 6, seed=1, dtype=torch.float64).requires_grad_()
    hr, neg = _rand(1, 3, 5, 6, seed=2, dtype=torch.float64), _rand(1, 3, 5, 6, seed=3, dtype=torch.float64)
    loss = RandomConvContrastiveLoss(channels=4)
    assert torch.autograd.gradcheck(lambda a: loss(a, hr, neg), (sr,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    sr, hr, neg = _rand(2, 3, 12, 12, seed=1), _rand(2, 3, 12, 12, seed=2), _rand(2, 3, 12, 12, seed=3)
    loss = RandomConvContrastiveLoss()
    srh = sr.to(dtype).requires_grad_()
    out = loss(srh, hr.to(dtype), neg.to(dtype))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, loss(srh.detach().float(), hr.to(dtype).float(), neg.to(dtype).float()))
    out.backward()
    assert srh.grad.dtype == dtype


def test_autocast_and_channels_last():
    sr, hr, neg = _rand(2, 3, 16, 16, seed=1), _rand(2, 3, 16, 16, seed=2), _rand(2, 3, 16, 16, seed=3)
    loss = RandomConvContrastiveLoss()
    ref = loss(sr, hr, neg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(sr.requires_grad_(), hr, neg)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=1e-3)
    out.backward()
    cl = [t.detach().contiguous(memory_format=torch.channels_last) for t in (sr, hr, neg)]
    torch.testing.assert_close(loss(*cl), ref)


def test_torch_compile_fullgraph():
    loss = RandomConvContrastiveLoss()
    sr, hr, neg = _rand(1, 3, 12, 12, seed=1), _rand(1, 3, 12, 12, seed=2), _rand(1, 3, 12, 12, seed=3)
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(sr, hr, neg), loss(sr, hr, neg))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layer_weights": (1.0,)}, ValueError, "layer_weights must have 2 entries"),
        ({"layer_weights": (1.0, -1.0)}, ValueError, "layer_weights must be a non-empty sequence of numbers >= 0"),
        ({"layer_weights": 3}, TypeError, "layer_weights must be a sequence of numbers"),
        ({"eps": 0.0}, ValueError, "eps must be a finite number > 0"),
        ({"channels": 0}, ValueError, "channels must be >= 1"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"in_channels": 1}, ValueError, "normalize=True uses ImageNet RGB statistics and needs in_channels=3"),
        ({"reduction": "batchmean"}, ValueError, "reduction must be one of 'mean', 'sum', 'none'"),
        ({"value_range": 0}, ValueError, "value_range must be a finite number > 0"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RandomConvContrastiveLoss(**kwargs)


def test_bad_forward_arguments():
    loss = RandomConvContrastiveLoss()
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="pass exactly one of negative"):
        loss(sr, hr)
    with pytest.raises(ValueError, match="pass exactly one of negative"):
        loss(sr, hr, hr, lr=torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"lr must have the batch size and channels of sr \(2, 3\)"):
        loss(sr, hr, lr=torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"sr and negative must have the same shape"):
        loss(sr, hr, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"sr and hr must have the same shape"):
        loss(sr, torch.rand(2, 3, 16, 15), lr=torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"layer_weights has 3 entries but the feature extractor returned 2"):
        ratio_contrastive_loss(sr, hr, hr, TwoScales(), (1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="feature_extractor must be an nn.Module"):
        RatioContrastiveLoss(lambda x: [x], (1.0,))


# ---------------------------------------------------------------------------------------- VGG19


def test_vgg19_layout_matches_torchvision_keys():
    assert VGG19_LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert [VGG19_LAYERS.index(n) for n in CSD_LAYERS] == [1, 6, 11, 20, 29]
    vgg = VGG19Features()
    convs = sorted(int(k.split(".")[1]) for k in vgg.state_dict() if k.endswith(".weight"))
    assert convs == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28]  # torchvision's conv indices up to conv5_1
    assert sum(p.numel() for p in vgg.parameters()) == 20_024_384 - 2_359_808 * 3  # vgg19.features minus conv5_2..5_4
    assert CSD_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def test_vgg19_features_shapes_and_frozen():
    vgg = VGG19Features()
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8), (1, 512, 4, 4), (1, 512, 2, 2)]
    assert all(not p.requires_grad for p in vgg.parameters()) and not vgg.train().training


def test_vgg19_never_downloads_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"{VGG19_IMAGENET_FILE}.*never downloads"):
        VGG19Features(weights="imagenet")
    assert not any(tmp_path.rglob("*.pth"))


def test_vgg19_loads_a_torchvision_style_file(tmp_path, monkeypatch):
    source = VGG19Features(("relu5_1",))
    state = {k: v.clone() for k, v in source.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # what torchvision's file also holds
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / VGG19_IMAGENET_FILE)
    loaded = VGG19Features(weights="imagenet")
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(loaded(x)[-1], source(x)[0])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VGG19Features(weights=tmp_path / "missing.pth")


def test_vgg19_bad_layers():
    with pytest.raises(ValueError, match="layers must be names from"):
        VGG19Features(("relu9_9",))
    with pytest.raises(ValueError, match="in network order"):
        VGG19Features(("relu2_1", "relu1_1"))


def test_csd_form_runs_with_gradient_to_sr_only():
    loss = RatioContrastiveLoss(VGG19Features(("relu1_1", "relu2_1")), (1 / 32, 1 / 16))
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(sr, torch.rand(1, 3, 16, 16), lr=torch.rand(1, 3, 8, 8)).backward()
    assert sr.grad is not None
    assert all(p.grad is None for p in loss.parameters())


def _random_conv_batch(near_hr: bool):
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=gen)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    neg = torch.nn.functional.interpolate(lr, size=(32, 32), mode="bicubic")
    base = hr if near_hr else neg
    sr = (base + 0.01 * torch.randn(hr.shape, generator=gen)).requires_grad_()
    return sr, hr, lr


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_random_conv_warns_once_when_the_first_ratio_is_above_1(reduction):
    import warnings

    from contrastive_sr_losses import RandomConvContrastiveLoss

    crit = RandomConvContrastiveLoss(reduction=reduction)
    sr, hr, lr = _random_conv_batch(near_hr=False)
    with pytest.warns(UserWarning, match=r"RandomConvContrastiveLoss: the first batch's ratio is .* > 1.*gradient_balance"):
        crit(sr, hr, lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crit(sr, hr, lr=lr)  # once per instance: the second call neither syncs nor warns


def test_random_conv_does_not_warn_when_the_output_is_nearer_hr():
    import warnings

    from contrastive_sr_losses import RandomConvContrastiveLoss

    sr, hr, lr = _random_conv_batch(near_hr=True)
    crit = RandomConvContrastiveLoss(value_range=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = crit(sr, hr, lr=lr)
        assert float(value.detach()) < 1.0
        # and a first batch far from HR later on does not warn either: only the first call checks
        far, _, _ = _random_conv_batch(near_hr=False)
        crit(far, hr, lr=lr)


def test_random_conv_first_batch_check_waits_for_training_mode():
    import warnings

    from contrastive_sr_losses import RandomConvContrastiveLoss

    sr, hr, lr = _random_conv_batch(near_hr=False)
    crit = RandomConvContrastiveLoss().eval()  # a dry run / validation: no check, no sync
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crit(sr, hr, lr=lr)
    with pytest.warns(UserWarning, match="RandomConvContrastiveLoss: the first batch"):
        crit.train()(sr, hr, lr=lr)
