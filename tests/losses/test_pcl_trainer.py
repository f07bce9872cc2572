"""Tests of PCLTrainer: the alternating discriminator step (Wu, Jiang, Liu and Ma), its state, schedule,
autocast and arguments.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from contrastive_sr_losses.losses.pcl import (
    FrequencyContrastiveLoss,
    contrastive_discriminator_loss,
)
from contrastive_sr_losses.losses.pcl_trainer import PCLTrainer
from tests._pcl import _criterion, _gen, _pair, _tiny_disc


def test_trainer_step_updates_only_the_discriminator():
    crit = _criterion()
    pcl = PCLTrainer(crit, lr=1e-3)
    disc = crit.discriminator
    model = nn.Conv2d(3, 3, 3, padding=1)
    _, hr = _pair()
    before = [p.detach().clone() for p in disc.parameters()]
    running = disc.blocks[0][1].running_mean.clone()
    sr = model(hr)
    loss = F.l1_loss(sr, hr) + pcl(sr, hr)
    grads_after_disc_step = [p.grad.clone() for p in disc.parameters()]
    assert model.weight.grad is None  # the discriminator step used sr.detach()
    loss.backward()
    assert model.weight.grad is not None and float(model.weight.grad.abs().sum()) > 0
    for p, g in zip(disc.parameters(), grads_after_disc_step):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)  # the generator-side loss added nothing
    assert any(not torch.equal(p, b) for p, b in zip(disc.parameters(), before))
    assert not torch.equal(disc.blocks[0][1].running_mean, running)  # training-mode BN in its own step
    assert not disc.training and pcl.steps == 1 and pcl.last_discriminator_loss.requires_grad is False


def test_toy_alternation_20_steps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    pcl = PCLTrainer(FrequencyContrastiveLoss(_tiny_disc(), layers=(0, 2)), lr=2e-3)
    g = _gen(0)
    hr = torch.rand(2, 3, 12, 12, generator=g)
    lr_img = F.interpolate(F.avg_pool2d(hr, 2), scale_factor=2, mode="bilinear", align_corners=False)
    d_losses, g_losses, l1 = [], [], []
    for _ in range(20):
        sr = model(lr_img)
        contrastive = pcl(sr, hr, generator=g)
        loss = F.l1_loss(sr, hr) + contrastive
        opt.zero_grad()
        loss.backward()
        opt.step()
        d_losses.append(pcl.last_discriminator_loss.item())
        g_losses.append(contrastive.item())
        l1.append(F.l1_loss(sr, hr).item())
    assert pcl.steps == 20
    assert len(set(d_losses)) > 15 and len(set(g_losses)) > 15
    assert all(math.isfinite(v) for v in d_losses + g_losses)
    assert min(d_losses[-5:]) < d_losses[0]  # the discriminator learns to tell SR from HR
    assert l1[-1] < l1[0]


def test_discriminator_learns_a_fixed_pair():
    pcl = PCLTrainer(_criterion(), lr=1e-2)
    _, hr = _pair(n=4)
    sr = F.avg_pool2d(hr, 3, 1, 1)  # a smooth "SR" vs sharp HR
    losses = [pcl.discriminator_step(sr, hr).item() for _ in range(10)]
    assert losses[-1] < 0.85 * losses[0]


def test_state_dict_round_trip():
    pcl = PCLTrainer(_criterion(seed=0), lr=1e-3)
    sr, hr = _pair()
    for _ in range(3):
        pcl.discriminator_step(sr, hr)
    state = pcl.state_dict()
    assert set(state) == {"discriminator", "optimizer", "steps", "skipped_steps"}
    other = PCLTrainer(_criterion(seed=5), lr=1e-3)
    other.load_state_dict(state)
    assert other.steps == 3
    a, b = pcl.discriminator_step(sr, hr), other.discriminator_step(sr, hr)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(pcl.discriminator.parameters(), other.discriminator.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(KeyError, match="not a PCLTrainer.state_dict"):
        other.load_state_dict({"discriminator": {}})


def test_trainer_under_cpu_autocast_bfloat16():
    pcl = PCLTrainer(_criterion())
    model = nn.Conv2d(3, 3, 3, padding=1)
    _, hr = _pair()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sr = model(hr)
        loss = F.l1_loss(sr.float(), hr) + pcl(sr, hr)
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    loss.backward()
    assert float(model.weight.grad.abs().sum()) > 0
    assert all(p.dtype == torch.float32 for p in pcl.discriminator.parameters())


def test_trainer_inside_no_grad_still_steps_the_discriminator():
    pcl = PCLTrainer(_criterion())
    sr, hr = _pair()
    with torch.no_grad():
        pcl.discriminator_step(sr, hr)
    assert pcl.steps == 1


def test_trainer_bad_arguments():
    with pytest.raises(TypeError, match="criterion must be a FrequencyContrastiveLoss"):
        PCLTrainer(_tiny_disc())
    with pytest.raises(ValueError, match="no trainable parameters"):
        PCLTrainer(FrequencyContrastiveLoss(_tiny_disc().requires_grad_(False), layers=(0,)))
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        PCLTrainer(_criterion(), optimizer="adam")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        PCLTrainer(_criterion(), lr=0.0)
    custom = torch.optim.SGD(_criterion().discriminator.parameters(), lr=0.1)
    assert PCLTrainer(_criterion(), optimizer=custom).optimizer is custom


def test_trainer_follows_a_schedule_and_saves_it():
    step_lr = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)  # noqa: E731
    pcl = PCLTrainer(_criterion(), lr=1e-3, scheduler=step_lr)
    sr, hr = _pair()
    lrs = []
    for _ in range(4):
        pcl.discriminator_step(sr, hr)
        lrs.append(pcl.optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4])
    other = PCLTrainer(_criterion(), lr=1e-3, scheduler=step_lr)
    other.load_state_dict(pcl.state_dict())
    assert other.scheduler.last_epoch == 4 and other.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4)
    with pytest.raises(TypeError, match="scheduler must be a function"):
        PCLTrainer(_criterion(), scheduler=3)


@pytest.mark.parametrize("form", ["per_position", "flattened"])
def test_augmented_discriminator_step_feeds_sharpened_reals_and_blurred_fakes(form):
    crit = _criterion()
    reference = _criterion()
    reference.discriminator.load_state_dict(crit.discriminator.state_dict())
    pcl = PCLTrainer(crit, lr=1e-3, augment_discriminator=True, discriminator_form=form)
    sr, hr = _pair()
    got = pcl.discriminator_step(sr, hr, generator=_gen(5))
    g = _gen(5)  # the same draws, in the same order: sharpened copies first, then blurred ones
    reals = torch.cat([hr, crit.sharpen(hr, generator=g).flatten(0, 1)])
    fakes = torch.cat([sr.detach(), crit.blur(hr, generator=g).flatten(0, 1)])
    disc = reference.discriminator.train()
    with torch.no_grad():
        expected = contrastive_discriminator_loss(disc(reals), disc(fakes), form=form)
    assert reals.shape[0] == 2 * crit.num_positives and fakes.shape[0] == 2 * (1 + crit.num_negatives)
    torch.testing.assert_close(got, expected)


def test_value_range_contract_discriminator_step_is_range_free():
    sr, hr = _pair(n=4, dtype=torch.float64)  # float64: Adam's first step amplifies round-off of tiny gradients
    trainers = []
    for v in (1.0, 255.0):
        trainer = PCLTrainer(FrequencyContrastiveLoss(_tiny_disc(seed=3).double(), layers=(0, 2), value_range=v), lr=1e-2)
        d_loss = trainer.discriminator_step(sr.detach() * v, hr * v)
        trainers.append((trainer, d_loss))
    (a, la), (b, lb) = trainers
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-6)  # eq 7 on logits: no range in it
    for pa, pb in zip(a.discriminator.parameters(), b.discriminator.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-7, atol=1e-9)


def test_generator_gradient_false_still_trains_the_discriminator():
    sr, hr = _pair()
    crit = _criterion(generator_gradient=False)
    trainer = PCLTrainer(crit, lr=1e-2)
    before = [p.detach().clone() for p in crit.discriminator.parameters()]
    value = trainer(sr, hr, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(value) and not value.requires_grad
    assert any(not torch.equal(b, p) for b, p in zip(before, crit.discriminator.parameters()))
