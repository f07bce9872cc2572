"""Bad inputs that once gave a silent wrong result or a raw error, now a one-line ``TypeError`` /
``ValueError`` naming the argument: PCL's loss and trainer.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses import (
    FrequencyContrastiveLoss,
    PCLTrainer,
    WaveletDiscriminator,
)

SMALL = {"channels": [8, 8, 16, 16], "strides": [1, 2, 1, 2]}


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


@pytest.mark.parametrize("size", [16, 8])
def test_pcl_on_one_small_image_says_what_batchnorm_needs(size):
    trainer = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator()))
    before = [b.clone() for b in trainer.discriminator.buffers()]
    with pytest.raises(ValueError, match=rf"input of shape \(1, 3, {size}, {size}\): block \d of the discriminator would see 1 value per channel"):
        trainer(torch.rand(1, 3, size, size, requires_grad=True), torch.rand(1, 3, size, size))
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.buffers()))  # no statistics touched
    trainer(torch.rand(2, 3, size, size, requires_grad=True), torch.rand(2, 3, size, size))  # a batch of two works
