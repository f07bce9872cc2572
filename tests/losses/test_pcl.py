"""Tests of PCL's losses (Wu, Jiang, Liu and Ma, eqs 7-11): the discriminator loss and the contrastive
loss, module and functional twin.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses.losses.pcl import (
    FrequencyContrastiveLoss,
    contrastive_discriminator_loss,
    frequency_contrastive_loss,
)
from contrastive_sr_losses.losses.pcl_trainer import PCLTrainer
from tests._pcl import _criterion, _gen, _pair, _tiny_disc, _warm_bn


def _vec(*values: float) -> torch.Tensor:
    """A (C,) vector as a 1x1 feature map (C, 1, 1)."""
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


def _naive_loss(anchors, positives, negatives, tau):
    """eqs 8-10 with Python loops over images, layers, samples and pixels."""
    n_img = anchors[0].shape[0]
    total = 0.0
    for i in range(n_img):
        for f, ps, ns in zip(anchors, positives, negatives):

            def s(x, y):
                c, h, w = x.shape
                acc = 0.0
                for yy in range(h):
                    for xx in range(w):
                        u, v = x[:, yy, xx], y[:, yy, xx]
                        acc += float(u @ v) / (float(u.norm()) * float(v.norm()))
                return acc / (h * w)

            neg = sum(math.exp(s(f[i], nk) / tau) for nk in ns[i])
            terms = [-math.log(math.exp(s(f[i], pj) / tau) / (math.exp(s(f[i], pj) / tau) + neg)) for pj in ps[i]]
            total += sum(terms) / len(terms)
    return total / (n_img * len(anchors))


def _authors_patch_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The released code's 'patchD' loss re-implemented: every logit flattened into one set, then
    cross-entropy of [r_i, all fakes] with target 0, plus the same with the roles and signs swapped."""
    r, f = real.reshape(-1), fake.reshape(-1)

    def half(t1, t2):
        logits = torch.cat([t1[:, None], t2[None, :].expand(t1.shape[0], -1)], dim=1)
        return F.cross_entropy(logits, torch.zeros(t1.shape[0], dtype=torch.long))

    return half(r, f) + half(-f, -r)


def test_discriminator_loss_single_pair_by_hand():
    a, b = 1.5, -0.5
    got = contrastive_discriminator_loss(torch.tensor([a]), torch.tensor([b]))
    assert got.item() == pytest.approx(2 * math.log(1 + math.exp(b - a)))


def test_discriminator_loss_batch_by_hand():
    r, f = [2.0, 0.0], [1.0, -1.0, 0.5]

    def ce(anchor, others):  # -log(e^anchor / (e^anchor + sum e^others))
        return -anchor + math.log(math.exp(anchor) + sum(math.exp(o) for o in others))

    expected = sum(ce(ri, f) for ri in r) / 2 + sum(ce(-fj, [-ri for ri in r]) for fj in f) / 3
    got = contrastive_discriminator_loss(torch.tensor(r).view(2, 1), torch.tensor(f).view(3, 1))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_discriminator_loss_patches_are_contrasted_per_position():
    real, fake = torch.randn(3, 1, 2, 2, dtype=torch.float64), torch.randn(3, 1, 2, 2, dtype=torch.float64)
    per_position = [
        contrastive_discriminator_loss(real[:, 0, i, j], fake[:, 0, i, j]) for i in range(2) for j in range(2)
    ]
    torch.testing.assert_close(contrastive_discriminator_loss(real, fake), torch.stack(per_position).mean())


def test_discriminator_loss_rewards_separation():
    fake = torch.zeros(4)
    losses = [contrastive_discriminator_loss(torch.full((4,), m), fake).item() for m in (-2.0, 0.0, 2.0, 8.0)]
    assert losses == sorted(losses, reverse=True)
    assert losses[1] == pytest.approx(2 * math.log(5))  # all equal: -log(1 / 5) twice


def test_discriminator_loss_gradcheck_and_dtype():
    r = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    f = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(contrastive_discriminator_loss, (r, f))
    assert contrastive_discriminator_loss(r.bfloat16(), f.bfloat16()).dtype == torch.float32


@pytest.mark.parametrize(
    "args,exc,match",
    [
        ((torch.randn(2, 3), torch.randn(2, 4)), ValueError, "share the shape after the batch dimension"),
        ((torch.tensor(1.0), torch.randn(2)), ValueError, "non-empty batch dimension"),
        ((torch.ones(2, dtype=torch.int64), torch.randn(2)), TypeError, "real_logits must be a floating-point"),
        (([1.0], torch.randn(1)), TypeError, "real_logits must be a floating-point torch.Tensor"),
    ],
)
def test_discriminator_loss_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        contrastive_discriminator_loss(*args)


def test_eq8_by_hand_one_pixel():
    f = _vec(1.0, 0.0)[None]  # (1, 2, 1, 1)
    p = torch.stack([_vec(3.0, 0.0), _vec(0.0, 2.0)])[None]  # cosines 1, 0
    n = torch.stack([_vec(-1.0, 0.0)])[None]  # cosine -1
    expected = 0.5 * (math.log(1 + math.exp(-1 - 1)) + math.log(1 + math.exp(-1 - 0)))
    assert frequency_contrastive_loss(f, p, n).item() == pytest.approx(expected)
    tau = 0.5  # each term is log(1 + sum_k exp((s_n - s_p) / tau))
    expected_tau = 0.5 * (math.log(1 + math.exp(-2 / tau)) + math.log(1 + math.exp(-1 / tau)))
    assert frequency_contrastive_loss(f, p, n, temperature=tau).item() == pytest.approx(expected_tau)


def test_eq9_is_the_mean_over_pixels_of_the_cosine():
    # two pixels: the anchor agrees with the positive at one (cos 1) and is orthogonal at the other (cos 0)
    f = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]], dtype=torch.float64)  # (1, C=2, 1, 2)
    p = torch.tensor([[[[2.0, 0.0]], [[0.0, 5.0]]]], dtype=torch.float64)[:, None]  # s = (1 + 0) / 2
    n = torch.tensor([[[[0.0, -1.0]], [[1.0, 0.0]]]], dtype=torch.float64)[:, None]  # s = (0 - 1) / 2
    expected = math.log(1 + math.exp(-0.5 - 0.5))
    assert frequency_contrastive_loss(f, p, n).item() == pytest.approx(expected)


def test_eq10_averages_layers_and_images():
    g = _gen(0)
    feats = [(torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 2, 4, 2, 2, generator=g), torch.randn(3, 5, 4, 2, 2, generator=g)) for _ in range(2)]
    per_layer = [frequency_contrastive_loss(a, p, n, reduction="none") for a, p, n in feats]
    both = frequency_contrastive_loss([a for a, _, _ in feats], [p for _, p, _ in feats], [n for _, _, n in feats], reduction="none")
    torch.testing.assert_close(both, (per_layer[0] + per_layer[1]) / 2)
    assert frequency_contrastive_loss(*zip(*feats)).item() == pytest.approx(both.mean().item())


@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_matches_naive_loops(tau):
    g = _gen(1)
    shapes = [(4, 3, 3), (6, 2, 1)]
    anchors = [torch.randn(2, *s, generator=g, dtype=torch.float64) for s in shapes]
    positives = [torch.randn(2, 3, *s, generator=g, dtype=torch.float64) for s in shapes]
    negatives = [torch.randn(2, 2, *s, generator=g, dtype=torch.float64) for s in shapes]
    got = frequency_contrastive_loss(anchors, positives, negatives, temperature=tau)
    assert got.item() == pytest.approx(_naive_loss(anchors, positives, negatives, tau), rel=1e-10)


def test_loss_bounds_and_minimum():
    f = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    best = frequency_contrastive_loss(f, 2 * f[:, None].expand(2, 3, 4, 3, 3), -f[:, None].expand(2, 2, 4, 3, 3))
    assert best.item() == pytest.approx(math.log(1 + 2 * math.exp(-2)))
    worst = frequency_contrastive_loss(f, -f[:, None], f[:, None].expand(2, 2, 4, 3, 3))
    assert worst.item() == pytest.approx(math.log(1 + 2 * math.exp(2)))


def test_functional_gradcheck_float64():
    g = _gen(2)
    a = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(2, 2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    n = torch.randn(2, 3, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, p, n: frequency_contrastive_loss(a, p, n, temperature=0.5), (a, p, n))


def test_functional_half_precision_and_autocast():
    g = _gen(3)
    a, p, n = torch.randn(2, 8, 4, 4, generator=g), torch.randn(2, 2, 8, 4, 4, generator=g), torch.randn(2, 2, 8, 4, 4, generator=g)
    expected = frequency_contrastive_loss(a, p, n)
    half = frequency_contrastive_loss(a.bfloat16(), p.bfloat16(), n.bfloat16())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(expected.item(), rel=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = frequency_contrastive_loss(a, p, n)
    assert under.dtype == torch.float32 and under.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 1, 3, 2, 2), [torch.randn(2, 1, 3, 2, 2)] * 2), {}, ValueError, "one entry per layer"),
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {}, ValueError, r"positives\[0\] must be \(N, K, C, H, W\)"),
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 1, 3, 2, 2), torch.randn(1, 1, 3, 2, 2)), {}, ValueError, r"negatives\[0\] must be"),
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 0, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {}, ValueError, "K>=1"),
        ((torch.randn(3, 2, 2), torch.randn(2, 1, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {}, ValueError, r"anchor\[0\] must be a floating \(N, C, H, W\)"),
        (("f", torch.randn(2, 1, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {}, TypeError, "anchor must be a tensor or a non-empty list"),
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 1, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {"temperature": 0}, ValueError, "temperature must be a finite number > 0"),
        ((torch.randn(2, 3, 2, 2), torch.randn(2, 1, 3, 2, 2), torch.randn(2, 1, 3, 2, 2)), {"reduction": "sum"}, ValueError, "reduction must be one of 'mean', 'none'"),
    ],
)
def test_functional_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        frequency_contrastive_loss(*args, **kwargs)


def test_samples_layout():
    crit = _criterion(num_positives=3, num_negatives=4, lr_negative=True)
    _, hr = _pair()
    lr = F.avg_pool2d(hr, 2)
    pos, neg = crit.make_samples(hr, lr, _gen(0))
    assert pos.shape == (2, 3, 3, 16, 16) and neg.shape == (2, 4, 3, 16, 16)
    torch.testing.assert_close(pos[:, 0], hr)
    torch.testing.assert_close(neg[:, 0], F.interpolate(lr, size=(16, 16), mode="bicubic", align_corners=False))
    assert crit.sharpen.k == 2 and crit.blur.k == 3
    only_hr = _criterion(num_positives=1, num_negatives=1, lr_negative=True)
    pos, neg = only_hr.make_samples(hr, lr)
    assert pos.shape[1] == 1 and neg.shape[1] == 1 and only_hr.sharpen is None and only_hr.blur is None


def test_forward_equals_functional_on_embedded_samples():
    crit = _criterion()
    sr, hr = _pair()
    got = crit(sr, hr, generator=_gen(5))
    pos, neg = crit.make_samples(hr, generator=_gen(5))
    disc = crit.discriminator
    with torch.no_grad():
        f = disc(sr, layers=(0, 2), return_logits=False)
        fp = [t.unflatten(0, (2, 4)) for t in disc(pos.flatten(0, 1), layers=(0, 2), return_logits=False)]
        fn = [t.unflatten(0, (2, 4)) for t in disc(neg.flatten(0, 1), layers=(0, 2), return_logits=False)]
    torch.testing.assert_close(got, frequency_contrastive_loss(f, fp, fn))


def test_gradient_reaches_sr_but_not_the_discriminator():
    crit = _criterion()
    disc = crit.discriminator
    assert all(p.requires_grad for p in disc.parameters())  # trainable, not frozen
    sr, hr = _pair()
    loss = F.l1_loss(sr, hr) + crit(sr, hr, generator=_gen(0))
    loss.backward()
    assert all(p.grad is None for p in disc.parameters())
    assert sr.grad is not None
    pure = sr.detach().clone().requires_grad_(True)
    crit(pure, hr, generator=_gen(0)).backward()
    assert float(pure.grad.abs().sum()) > 0  # the contrastive term alone moves sr


def test_bn_running_statistics_untouched_and_modes_restored():
    crit = _criterion()
    disc = crit.discriminator
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    sr, hr = _pair()
    crit(sr, hr).backward()
    disc.train()  # a user may flip it; the loss still reads eval-mode features and restores the flag
    crit(sr.detach(), hr)
    assert disc.training and all(m.training for m in disc.modules())
    for k, v in disc.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    crit.train()
    assert not disc.training  # the loss keeps its embedding in eval mode


def test_features_do_not_depend_on_the_rest_of_the_batch():
    crit = _criterion()
    sr, hr = _pair(n=3)
    together = crit.embed(sr)
    alone = crit.embed(sr[1:2])
    for a, b in zip(together, alone):
        torch.testing.assert_close(a[1:2], b, rtol=1e-5, atol=1e-6)  # eval-mode BatchNorm
    full = crit(sr, hr, generator=_gen(1)).detach()
    crit.reduction = "none"
    per_image = crit(sr, hr, generator=_gen(1)).detach()
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image.mean(), full)


def test_frozen_pretrained_embedding():
    disc = _tiny_disc()
    crit = FrequencyContrastiveLoss(disc.requires_grad_(False), layers=(0, 1, 2, 3))
    sr, hr = _pair()
    crit(sr, hr).backward()
    assert float(sr.grad.abs().sum()) > 0 and all(p.grad is None for p in disc.parameters())


def test_deterministic_given_generator_and_sensitive_to_it():
    crit = _criterion()
    sr, hr = _pair()
    a, b = crit(sr, hr, generator=_gen(3)), crit(sr, hr, generator=_gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, crit(sr, hr, generator=_gen(4)))


def test_loss_prefers_sharp_over_blurred_outputs():
    crit = _criterion(seed=1)
    _, hr = _pair(n=2, size=32)
    blurred = crit.blur(hr, generator=_gen(0))[:, 0]
    losses = [crit(x, hr, generator=_gen(9)).item() for x in (hr, blurred)]
    assert losses[0] < losses[1]


def test_lr_negative_requirements():
    sr, hr = _pair()
    lr = F.avg_pool2d(hr, 2)
    with pytest.raises(ValueError, match=r"lr_negative=True uses the bicubic-upsampled LR input.*criterion\(sr, hr, lr\)"):
        _criterion(lr_negative=True)(sr, hr)
    with pytest.raises(ValueError, match="lr was given but lr_negative=False"):
        _criterion()(sr, hr, lr)
    with pytest.raises(ValueError, match="lr must not be larger than sr"):
        _criterion(lr_negative=True)(sr, hr, torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="batch size and channels"):
        _criterion(lr_negative=True)(sr, hr, torch.rand(1, 3, 8, 8))
    _criterion(lr_negative=True)(sr, hr, lr).backward()


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"num_positives": 0}, ValueError, "num_positives must be >= 1, got 0"),
        ({"num_negatives": 0}, ValueError, "num_negatives must be >= 1, got 0"),
        ({"layers": (5,)}, ValueError, r"block indices in \[0, 4\)"),
        ({"temperature": -1.0}, ValueError, "temperature must be a finite number > 0"),
        ({"lr_negative": 1}, TypeError, "lr_negative must be a bool"),
        ({"value_range": 0.0}, ValueError, "value_range must be a finite number > 0"),
        ({"blur_kernel_sizes": (4,)}, ValueError, "odd ints"),
        ({"reduction": "sum"}, ValueError, "reduction must be one of"),
    ],
)
def test_constructor_fails_fast(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FrequencyContrastiveLoss(_tiny_disc(), **{"layers": (0, 2), **kwargs})


def test_bad_forward_input():
    crit = _criterion()
    sr, hr = _pair()
    with pytest.raises(ValueError, match="same shape"):
        crit(sr, hr[:, :, :8])
    with pytest.raises(TypeError, match="must be an nn.Module"):
        FrequencyContrastiveLoss(lambda x: x)
    with pytest.raises(ValueError, match=r"needs H and W > 5"):
        crit(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_with_float32_discriminator(dtype):
    crit = _criterion()
    sr, hr = _pair()
    expected = crit(sr, hr, generator=_gen(0))
    s16 = sr.detach().to(dtype).requires_grad_(True)
    got = crit(s16, hr.to(dtype), generator=_gen(0))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), abs=2e-2)
    got.backward()
    assert s16.grad.dtype == dtype


def test_autocast_bfloat16_generator_side():
    crit = _criterion()
    sr, hr = _pair()
    expected = crit(sr, hr, generator=_gen(0)).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = crit(sr, hr, generator=_gen(0))
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(expected, abs=3e-2)
    loss.backward()
    assert float(sr.grad.abs().sum()) > 0


def test_channels_last():
    crit = _criterion()
    sr, hr = _pair()
    a = crit(sr, hr, generator=_gen(0))
    b = crit(sr.to(memory_format=torch.channels_last), hr.to(memory_format=torch.channels_last), generator=_gen(0))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_torch_compile_fullgraph():
    crit = FrequencyContrastiveLoss(_tiny_disc(channels=(4, 4), strides=(1, 2)).eval(), 2, 2, layers=(0, 1))
    sr, hr = _pair(n=1, size=8)

    def step(sr, hr):
        return crit(sr, hr)

    torch.manual_seed(0)
    expected = step(sr, hr)
    (g_expected,) = torch.autograd.grad(expected, sr)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    torch.manual_seed(0)
    got = compiled(sr, hr)
    (g,) = torch.autograd.grad(got, sr)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(g, g_expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_a_cpu_generator():
    crit = _criterion()
    sr, hr = _pair()
    expected = crit(sr, hr, generator=_gen(0))
    gpu = _criterion().cuda()
    got = gpu(sr.detach().cuda().requires_grad_(True), hr.cuda(), generator=_gen(0))
    assert got.device.type == "cuda"
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)
    pcl = PCLTrainer(gpu)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = pcl(sr.detach().cuda().requires_grad_(True), hr.cuda())
    loss.backward()


def test_flattened_discriminator_loss_is_the_authors_patch_d():
    real, fake = torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.randn(2, 1, 4, 4, dtype=torch.float64)
    got = contrastive_discriminator_loss(real, fake, form="flattened")
    torch.testing.assert_close(got, _authors_patch_d(real, fake))
    assert not torch.allclose(got, contrastive_discriminator_loss(real, fake))
    # equal logits: -log(1 / (1 + B P)) per half flattened, -log(1 / (1 + B)) per position
    same = torch.zeros(4, 1, 4, 4)
    assert contrastive_discriminator_loss(same, same, form="flattened").item() == pytest.approx(2 * math.log(65))
    assert contrastive_discriminator_loss(same, same).item() == pytest.approx(2 * math.log(5))
    with pytest.raises(ValueError, match="form must be one of 'per_position', 'flattened'"):
        contrastive_discriminator_loss(same, same, form="flat")


def test_authors_sample_form_matches_the_released_code():
    crit = FrequencyContrastiveLoss(_tiny_disc(), layers=(0, 2), lr_negative=True, sample_form="authors")
    hr = torch.rand(1, 3, 16, 16).mul(255).round().div(255).expand(3, 3, 16, 16).contiguous()  # equal 8-bit images
    lr = F.avg_pool2d(hr, 2)
    positives, negatives = crit.make_samples(hr, lr, _gen(0))
    # the LR negative: bicubic with align_corners=True, clamped to the value range
    expected_lr = F.interpolate(lr, size=(16, 16), mode="bicubic", align_corners=True).clamp(0, 1)
    torch.testing.assert_close(negatives[:, 0], expected_lr)
    blurred, sharpened = negatives[:, 1:], positives[:, 1:]
    torch.testing.assert_close(blurred[1], blurred[0])  # one blur per copy for the whole batch
    assert not torch.equal(sharpened[1], sharpened[0])  # one sharpening factor per image
    for t in (blurred, sharpened):
        torch.testing.assert_close(t * 255, (t * 255).round())  # 8-bit levels
    border = torch.ones(16, 16, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    torch.testing.assert_close(sharpened[..., border], hr.unsqueeze(1).expand_as(sharpened)[..., border])
    with pytest.raises(ValueError, match="sample_form must be one of 'library', 'authors'"):
        FrequencyContrastiveLoss(_tiny_disc(), layers=(0, 2), sample_form="paper")


@pytest.mark.parametrize("sample_form", ["library", "authors"])
def test_value_range_contract_loss_scales_like_l1(sample_form):
    disc = _tiny_disc().double()
    _warm_bn(disc.float())
    disc.double()
    sr, hr = _pair(dtype=torch.float64)
    hr = hr.mul(255).round().div(255)  # 8-bit levels, so the authors' rounding of the samples is exact in both ranges
    lr = F.avg_pool2d(hr, 2)
    sr_b = (sr.detach() * 255).requires_grad_()
    unit = FrequencyContrastiveLoss(disc, layers=(0, 2), lr_negative=True, sample_form=sample_form)(sr, hr, lr, generator=_gen(7))
    crit = FrequencyContrastiveLoss(disc, layers=(0, 2), lr_negative=True, sample_form=sample_form, value_range=255.0)
    byte = crit(sr_b, hr * 255, lr * 255, generator=_gen(7))
    torch.testing.assert_close(byte, 255 * unit, rtol=1e-6, atol=1e-9)
    unit.backward()
    byte.backward()
    torch.testing.assert_close(sr_b.grad, sr.grad, rtol=1e-6, atol=1e-9)  # as L1's gradient, range-free


def test_generator_gradient_false_is_the_authors_no_grad_form():
    # the released code embeds sr under torch.no_grad(): the same value, no gradient to sr
    sr, hr = _pair()
    sr = sr.detach().clone().requires_grad_(True)
    live, frozen = _criterion(), _criterion(generator_gradient=False)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    value_live, value_frozen = live(sr, hr, generator=g1), frozen(sr, hr, generator=g2)
    assert torch.equal(value_live.detach(), value_frozen)
    assert value_live.requires_grad and not value_frozen.requires_grad
    total = torch.nn.functional.l1_loss(sr, hr) + value_frozen  # eq 11 of the released code
    total.backward()
    l1_only = sr.detach().clone().requires_grad_(True)
    torch.nn.functional.l1_loss(l1_only, hr).backward()
    assert torch.equal(sr.grad, l1_only.grad)  # the network learns from L1 alone
    assert "generator_gradient=False" in repr(frozen)


def test_generator_gradient_must_be_a_bool():
    with pytest.raises(TypeError, match="generator_gradient must be a bool"):
        _criterion(generator_gradient="false")
