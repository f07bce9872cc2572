"""Tests of the reference SR networks and their registry (``contrastive_sr_losses.archs``)."""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses.archs import create_model, list_models
from contrastive_sr_losses.archs.common import MeanShift

# Tiny variants (constructor overrides) used where only the wiring matters: one forward of a full-size
# RCAN or EDSR on CPU costs seconds; these keep every block type and the real upsampler.
TINY: dict[str, dict] = {
    "edsr_baseline": {"n_resblocks": 2, "n_feats": 16},
    "edsr": {"n_resblocks": 2, "n_feats": 16},
}


def n_params(model: torch.nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------
def test_list_models_names():
    assert set(TINY) <= set(list_models())


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match=r"unknown model name 'srcnn'.*'edsr_baseline'.*'edsr'"):
        create_model("srcnn")


@pytest.mark.parametrize("scale", [1, 5, 8])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match=rf"scale must be one of \(2, 3, 4\), got {scale}"):
        create_model("edsr_baseline", scale=scale)


def test_scale_type():
    with pytest.raises(TypeError, match="scale must be an int"):
        create_model("edsr_baseline", scale=2.0)


def test_unknown_kwarg():
    with pytest.raises(TypeError, match="n_blocks"):
        create_model("edsr_baseline", n_blocks=3)


# ------------------------------------------------------------------------------------------------
# parameter counts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scale, expected",
    # x4: the official EDSR-baseline figure. x2 / x3 differ only by the upsampler: one conv 64->256
    # (147,712) at x2, one conv 64->576 (332,352) at x3, two convs 64->256 at x4.
    [(2, 1_369_859), (3, 1_554_499), (4, 1_517_571)],
)
def test_edsr_baseline_parameter_count_exact(scale, expected):
    model = create_model("edsr_baseline", scale)
    assert n_params(model) == expected
    assert n_params(model, trainable_only=False) == expected  # the mean shift is not a parameter


def test_edsr_full_parameter_count():
    # 32 blocks of 2 convs 256->256 (+ body conv) etc.: 43,089,923 at x4 (the paper's "43M").
    assert n_params(create_model("edsr", 4)) == 43_089_923


# ------------------------------------------------------------------------------------------------
# forward / backward on tiny variants
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_input_untouched(name, scale):
    torch.manual_seed(0)
    model = create_model(name, scale, **TINY[name])
    x = torch.rand(2, 3, 7, 9)
    before = x.clone()
    y = model(x)
    assert y.shape == (2, 3, 7 * scale, 9 * scale)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    torch.testing.assert_close(x, before, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(TINY))
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, 2, **TINY[name])
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    model(x).abs().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    assert x.grad is not None


def test_mean_shift_is_a_fixed_buffer():
    model = create_model("edsr_baseline", 2, **TINY["edsr_baseline"])
    names = [n for n, _ in model.named_parameters()]
    assert not any("mean" in n for n in names)
    buffers = dict(model.named_buffers())
    assert "mean_shift.mean" in buffers and not buffers["mean_shift.mean"].requires_grad
    assert "mean_shift.mean" not in model.state_dict()  # a constant, not state


def test_mean_shift_round_trip_and_validation():
    shift = MeanShift(img_range=255.0)
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(shift.normalize(x), (x - shift.mean) * 255.0)
    torch.testing.assert_close(shift.restore(shift.normalize(x)), x)
    with pytest.raises(ValueError, match="rgb_mean must hold 3 values"):
        MeanShift((0.5, 0.5))
    with pytest.raises(ValueError, match="img_range must be a finite number > 0"):
        MeanShift(img_range=0.0)


def test_bad_input_shape():
    model = create_model("edsr_baseline", 2, **TINY["edsr_baseline"])
    with pytest.raises(ValueError, match=r"input must have shape \(N, 3, h, w\), got \(1, 1, 8, 8\)"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"input must have shape \(N, 3, h, w\), got \(3, 8, 8\)"):
        model(torch.rand(3, 8, 8))
