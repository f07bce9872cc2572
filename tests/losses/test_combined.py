"""CombinedLoss: one object for a whole objective, equal to the weighted sum of its terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses import (
    CombinedLoss,
    GaussianHighPassLoss,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
)
from contrastive_sr_losses.losses.registry import LOSSES, build_loss

BEST = {"l1": 1.0, "pixel_contrastive": 0.1, "high_pass": 1.5}  # the loss study's best objective


def _pair(shape=(2, 3, 16, 16), dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=dtype), torch.rand(shape, generator=gen, dtype=dtype)


def _by_hand(sr, hr, region=8):
    return F.l1_loss(sr, hr) + 0.1 * PixelContrastiveLoss(region)(sr, hr) + 1.5 * GaussianHighPassLoss()(sr, hr)


def test_equals_the_sum_of_its_terms_value_and_gradient():
    sr0, hr = _pair()
    sr_a, sr_b = sr0.clone().requires_grad_(True), sr0.clone().requires_grad_(True)
    combined = CombinedLoss(BEST)(sr_a, hr)
    by_hand = _by_hand(sr_b, hr)
    torch.testing.assert_close(combined, by_hand)
    combined.backward()
    by_hand.backward()
    torch.testing.assert_close(sr_a.grad, sr_b.grad)


def test_a_term_takes_weight_and_options():
    sr, hr = _pair()
    crit = CombinedLoss({"l1": 1.0, "pixel_contrastive": (0.1, {"region": 4}), "high_pass": [1.5, {}]})
    assert crit.losses["pixel_contrastive"].region == 4
    torch.testing.assert_close(crit(sr, hr), _by_hand(sr, hr, region=4))
    assert "pixel_contrastive: 0.1 {'region': 4}" in repr(crit)


def test_gradcheck_float64():
    sr, hr = _pair((1, 3, 4, 4), torch.float64)
    crit = CombinedLoss({"l1": 1.0, "pixel_contrastive": (0.1, {"region": 2}), "high_pass": (1.5, {"sigma": 0.5})})
    assert torch.autograd.gradcheck(lambda x: crit(x, hr), (sr.requires_grad_(True),))
    assert crit(sr, hr).dtype == torch.float64


def test_channels_last_gives_the_same_value_and_gradient():
    sr0, hr = _pair((2, 3, 16, 16))
    crit = CombinedLoss(BEST)
    sr_a = sr0.clone().requires_grad_(True)
    sr_b = sr0.clone().to(memory_format=torch.channels_last).requires_grad_(True)
    a = crit(sr_a, hr)
    b = crit(sr_b, hr.to(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    torch.testing.assert_close(sr_a.grad, sr_b.grad)


def test_last_values_and_weighted_terms_for_logging():
    sr, hr = _pair()
    sr.requires_grad_(True)
    crit = CombinedLoss(BEST)
    terms: dict[str, torch.Tensor] = {}
    total = crit(sr, hr, terms=terms)
    assert list(crit.last_values) == list(BEST) and all(not v.requires_grad for v in crit.last_values.values())
    torch.testing.assert_close(crit.last_values["high_pass"], GaussianHighPassLoss()(sr, hr).detach())
    assert all(t.requires_grad for t in terms.values())
    torch.testing.assert_close(sum(terms.values()), total)
    torch.testing.assert_close(terms["pixel_contrastive"], 0.1 * crit.last_values["pixel_contrastive"])


def test_terms_that_need_the_lr_image():
    sr, hr = _pair()
    lr = torch.rand(2, 3, 8, 8)
    crit = CombinedLoss({"l1": 1.0, "random_conv": 0.001})
    assert crit.needs_lr and not CombinedLoss(BEST).needs_lr
    with pytest.raises(ValueError, match="'random_conv' needs the LR input batch"):
        crit(sr, hr)
    expected = F.l1_loss(sr, hr) + 0.001 * RandomConvContrastiveLoss()(sr, hr, lr=lr)
    torch.testing.assert_close(crit(sr, hr, lr), expected)


def test_pcl_term_trains_its_discriminator_in_training_mode_only():
    sr, hr = _pair()
    small = {"disc_channels": (4, 4), "disc_strides": (1, 2), "layers": (0,), "num_positives": 2, "num_negatives": 2}
    crit = CombinedLoss({"l1": 1.0, "pcl": (0.01, small)})
    crit(sr.requires_grad_(True), hr).backward()
    assert crit.trainers["pcl"].steps == 1
    crit.eval()
    crit(sr, hr)
    assert crit.trainers["pcl"].steps == 1
    assert crit.trainer_state()["pcl"]["steps"] == 1


@pytest.mark.parametrize(
    "terms, error, match",
    [
        ({}, ValueError, "non-empty mapping"),
        ({"l1": 1.0, "l2": 1.0}, KeyError, "unknown loss 'l2'; known losses: l1, mse"),
        ({"l1": -1.0}, ValueError, "term 'l1': the weight must be a finite number > 0, got -1.0"),
        ({"l1": float("nan")}, ValueError, "term 'l1': the weight must be"),
        ({"l1": True}, TypeError, "term 'l1': the weight must be a number, got bool"),
        ({"l1": "0.1"}, TypeError, "term 'l1': the weight must be a number, got str"),
        ({"l1": (1.0, {}, 3)}, ValueError, "term 'l1': expected a weight or"),
        ({"high_pass": (1.0, [1])}, TypeError, "term 'high_pass': the options must be a mapping"),
        ({"pixel_contrastive": (0.1, {"regoin": 4})}, TypeError, "term 'pixel_contrastive': .*regoin"),
        ({"high_pass": (0.1, {"sigma": -1})}, ValueError, "term 'high_pass': .*sigma"),
    ],
)
def test_validation_names_the_bad_key_or_weight(terms, error, match):
    with pytest.raises(error, match=match):
        CombinedLoss(terms)


def test_registry_builds_every_cheap_loss_and_state_dict_round_trips():
    for name in ("l1", "mse", "pixel_contrastive", "high_pass", "random_conv"):
        assert isinstance(build_loss(name), torch.nn.Module), name
    assert set(LOSSES) >= {"l1", "pixel_contrastive", "high_pass", "random_conv", "pcl", "vgg_contrastive"}
    a, b = CombinedLoss({"l1": 1.0, "random_conv": 0.001}), CombinedLoss({"l1": 1.0, "random_conv": 0.001})
    b.load_state_dict(a.state_dict())


def test_kit_composite_loss_is_a_combined_loss():
    from srkit.losses import CompositeLoss

    crit = CompositeLoss("l1+0.1*pixel_contrastive+1.5*high_pass", torch.device("cpu"))
    assert isinstance(crit, CombinedLoss)
    sr, hr = _pair()
    total, parts = crit(sr, hr, torch.rand(2, 3, 8, 8))
    torch.testing.assert_close(total, CombinedLoss(BEST)(sr, hr))
    assert set(parts) == set(BEST)


def test_compiles_with_fullgraph():
    sr, hr = _pair()
    crit = CombinedLoss(BEST)
    compiled = torch.compile(crit, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(sr, hr), CombinedLoss(BEST)(sr, hr))
    assert set(crit.last_values) == set(BEST)
