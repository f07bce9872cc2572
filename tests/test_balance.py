"""gradient_balance / suggest_weight: hand-made cases with known ratios and cosines."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses import PixelContrastiveLoss, gradient_balance, suggest_weight


def _net_and_output(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    lr, hr = torch.rand(2, 3, 16, 16, generator=gen), torch.rand(2, 3, 16, 16, generator=gen)
    return model, model(lr), hr


def test_twice_l1_has_ratio_2_cosine_1_and_minus_l1_cosine_minus_1():
    model, sr, hr = _net_and_output()
    l1 = F.l1_loss(sr, hr)
    b = gradient_balance({"l1": l1, "double": 2 * l1, "negated": -l1}, model.parameters())
    assert b.reference == "l1"
    assert b["l1"].ratio == pytest.approx(1.0) and b["l1"].cosine == pytest.approx(1.0)
    assert b["double"].ratio == pytest.approx(2.0, rel=1e-12) and b["double"].cosine == pytest.approx(1.0, abs=1e-12)
    assert b["negated"].ratio == pytest.approx(1.0, rel=1e-12) and b["negated"].cosine == pytest.approx(-1.0, abs=1e-12)
    assert b["double"].norm == pytest.approx(2 * b["l1"].norm, rel=1e-12)


def test_hand_computed_norms_on_a_vector():
    x = torch.tensor([3.0, 4.0], requires_grad=True)
    # d/dx (x . a) = a: |(3, 4)| = 5, |(0, 2)| = 2, cosine = 8 / (5 * 2) = 0.8
    b = gradient_balance({"a": (x * torch.tensor([3.0, 4.0])).sum(), "b": (x * torch.tensor([0.0, 2.0])).sum()}, x)
    assert b["a"].norm == pytest.approx(5.0) and b["b"].norm == pytest.approx(2.0)
    assert b["b"].ratio == pytest.approx(0.4) and b["b"].cosine == pytest.approx(0.8)
    # orthogonal gradients: cosine 0
    o = gradient_balance({"a": x[0] * 1.0, "b": x[1] * 7.0}, x)
    assert o["b"].cosine == pytest.approx(0.0) and o["b"].ratio == pytest.approx(7.0)


def test_a_term_independent_of_the_inputs_is_reported_with_norm_zero():
    model, sr, hr = _net_and_output()
    b = gradient_balance({"l1": F.l1_loss(sr, hr), "const": torch.tensor(3.0), "detached": F.mse_loss(sr.detach(), hr)},
                         model.parameters())
    for name in ("const", "detached"):
        assert b[name].norm == 0.0 and b[name].ratio == 0.0 and b[name].cosine is None
    # a reference with zero gradient is reported, never divided by
    z = gradient_balance({"const": torch.tensor(1.0), "l1": F.l1_loss(sr, hr)}, model.parameters())
    assert z["l1"].ratio is None and z["l1"].cosine is None and z["l1"].norm > 0
    assert "-" in str(z)


def test_a_term_unused_by_some_inputs_counts_them_as_zero():
    a = torch.ones(2, requires_grad=True)
    c = torch.ones(3, requires_grad=True)
    b = gradient_balance({"both": a.sum() + c.sum(), "only_a": a.sum()}, [a, c])
    assert b["both"].norm == pytest.approx(math.sqrt(5)) and b["only_a"].norm == pytest.approx(math.sqrt(2))
    assert b["only_a"].cosine == pytest.approx(math.sqrt(2) / math.sqrt(5))


def test_leaves_grad_untouched_and_the_graph_usable():
    model, sr, hr = _net_and_output()
    loss = F.l1_loss(sr, hr) + 0.1 * PixelContrastiveLoss(region=4)(sr, hr)
    terms = {"l1": F.l1_loss(sr, hr), "pc": 0.1 * PixelContrastiveLoss(region=4)(sr, hr)}
    gradient_balance(terms, model.parameters())
    assert all(p.grad is None for p in model.parameters())
    loss.backward(retain_graph=True)  # the graph shared with the terms is still there
    before = [p.grad.clone() for p in model.parameters()]
    gradient_balance(terms, model.parameters())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), before))


def test_reference_by_name_and_on_the_sr_output():
    model, sr, hr = _net_and_output()
    terms = {"pc": 0.1 * PixelContrastiveLoss(region=4)(sr, hr), "l1": F.l1_loss(sr, hr)}
    b = gradient_balance(terms, sr, reference="l1")
    assert b.reference == "l1" and b["l1"].ratio == pytest.approx(1.0)
    # the L1 gradient on the output is sign(sr - hr) / numel: its norm is 1 / sqrt(numel)
    assert b["l1"].norm == pytest.approx(1 / math.sqrt(sr.numel()), rel=1e-6)
    assert set(b.ratios()) == {"pc"} and b.ratios()["pc"] == b["pc"].ratio


def test_str_is_a_table_with_every_term():
    x = torch.ones(3, requires_grad=True)
    text = str(gradient_balance({"l1": x.sum(), "heavy": 40 * x.sum()}, x))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["term", "grad", "norm"] and "ratio to l1" in lines[0]
    assert lines[2].split()[0] == "heavy" and "40" in lines[2] and "+1.000" in lines[2]


def test_suggest_weight_scales_linearly():
    model, sr, hr = _net_and_output()
    pc = PixelContrastiveLoss(region=4)(sr, hr)
    b = gradient_balance({"l1": F.l1_loss(sr, hr), "pc": 0.5 * pc}, model.parameters())
    w = suggest_weight(b, "pc", fraction=0.2, current_weight=0.5)
    again = gradient_balance({"l1": F.l1_loss(sr, hr), "pc": w * pc}, model.parameters())
    assert again["pc"].ratio == pytest.approx(0.2, rel=1e-6)  # float32 gradients


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: gradient_balance({}, x), "terms must be a non-empty mapping"),
        (lambda x: gradient_balance({"a": 1.0}, x), r"terms\['a'\] must be a torch.Tensor"),
        (lambda x: gradient_balance({"a": x * 2}, x), r"terms\['a'\] must be a floating scalar"),
        (lambda x: gradient_balance({"a": x.sum()}, x, reference="b"), "reference must be one of the terms"),
        (lambda x: gradient_balance({"a": x.sum()}, []), "inputs must hold at least one tensor"),
        (lambda x: gradient_balance({"a": x.sum()}, [torch.ones(2)]), r"inputs\[0\] .* does not require grad"),
        (lambda x: gradient_balance({"a": x.sum()}, [x, 3]), r"inputs\[1\] must be a torch.Tensor"),
    ],
)
def test_errors_name_the_argument(call, match):
    x = torch.ones(3, requires_grad=True)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x)


def test_suggest_weight_errors():
    x = torch.ones(3, requires_grad=True)
    b = gradient_balance({"l1": x.sum(), "zero": torch.tensor(0.0), "t": 2 * x.sum()}, x)
    with pytest.raises(ValueError, match="name must be one of"):
        suggest_weight(b, "nope")
    with pytest.raises(ValueError, match="is the reference term"):
        suggest_weight(b, "l1")
    with pytest.raises(ValueError, match="zero gradient"):
        suggest_weight(b, "zero")
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(ValueError, match="fraction must be a finite number > 0"):
            suggest_weight(b, "t", fraction=bad)
    with pytest.raises(ValueError, match="current_weight must be"):
        suggest_weight(b, "t", current_weight=float("inf"))
