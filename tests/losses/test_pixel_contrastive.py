"""Tests of the local-region pixel contrastive loss (Zhou, Liu and Liu, eqs 9-10)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastive_sr_losses import PixelContrastiveLoss, pixel_contrastive_loss
from tests._pairs import make_pair

BACKENDS = ["reference", "torch"]


# ------------------------------------------------------------------------------------------------
# an independent oracle: eq 9 with Python loops over blocks and pixel pairs
# ------------------------------------------------------------------------------------------------
def naive_loss_map(sr: torch.Tensor, hr: torch.Tensor, region: int, temperature: float = 1.0) -> torch.Tensor:
    n, c, h, w = sr.shape
    out = torch.zeros(n, 1, h, w, dtype=torch.float64)
    s, t = sr.double(), hr.double()
    for b in range(n):
        for by in range(0, h, region):
            for bx in range(0, w, region):
                pix = [(y, x) for y in range(by, min(by + region, h)) for x in range(bx, min(bx + region, w))]
                for yi, xi in pix:
                    num = den = 0.0
                    for yj, xj in pix:
                        d = (s[b, :, yi, xi] - t[b, :, yj, xj]).abs().sum().item()
                        e = math.exp(-d / temperature)
                        den += e
                        if torch.equal(t[b, :, yj, xj], t[b, :, yi, xi]):
                            num += e
                    out[b, 0, yi, xi] = -math.log(num / den)
    return out


def naive_sum(loss_map: torch.Tensor, region: int) -> float:
    n, _, h, w = loss_map.shape
    return sum(
        loss_map[b, 0, by : by + region, bx : bx + region].mean().item()
        for b in range(n)
        for by in range(0, h, region)
        for bx in range(0, w, region)
    )


_pair = make_pair  # (sr, hr) from a seed; levels -> duplicate HR values, |P_i| > 1


# ------------------------------------------------------------------------------------------------
# hand-computed values
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_distinct_values(backend, device):
    # one 2x2 block, C=1, sr == hr with values 0,1,2,3: d(i, j) = |v_i - v_j|, P_i = {i}
    hr = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64, device=device)
    e = math.exp(-1.0)
    end = math.log(1 + e + e**2 + e**3)  # pixels 0 and 3
    mid = math.log(1 + 2 * e + e**2)  # pixels 1 and 2
    expected = torch.tensor([[[[end, mid], [mid, end]]]], dtype=torch.float64, device=device)
    got = pixel_contrastive_loss(hr.clone(), hr, region=2, reduction="none", backend=backend)
    torch.testing.assert_close(got, expected)
    assert pixel_contrastive_loss(hr.clone(), hr, region=2, backend=backend).item() == pytest.approx((end + mid) / 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_repeated_hr_values(backend, device):
    # HR row values 0, 0 / 1, 1: each P_i has two members at distance 0, two negatives at distance 1
    # l_i = -log(2 / (2 + 2/e)) = log(1 + 1/e)
    hr = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]], dtype=torch.float64, device=device)
    got = pixel_contrastive_loss(hr.clone(), hr, region=2, reduction="none", backend=backend)
    torch.testing.assert_close(got, torch.full_like(got, math.log(1 + math.exp(-1))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_multichannel_l1_distance(backend, device):
    # C=2, sr = 0, hr pixels (0,0) (1,0) / (0,1) (1,1): d(i, j) = ||hr_j||_1 = 0, 1, 1, 2 for every i,
    # so l_i = d_ii + log(sum_j exp(-d_j)) = d_ii + 2 log(1 + 1/e)
    hr = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]]]], dtype=torch.float64, device=device)
    sr = torch.zeros_like(hr)
    expected = torch.tensor([[[[0.0, 1.0], [1.0, 2.0]]]], dtype=torch.float64, device=device) + 2 * math.log(1 + math.exp(-1))
    got = pixel_contrastive_loss(sr, hr, region=2, reduction="none", backend=backend)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_hr_gives_zero_loss_and_gradient(backend, device):
    # every HR pixel equal: all pixels are positives, numerator == denominator
    sr = torch.rand(2, 3, 8, 8, dtype=torch.float64, device=device, requires_grad=True)
    hr = torch.full((2, 3, 8, 8), 0.25, dtype=torch.float64, device=device)
    loss = pixel_contrastive_loss(sr, hr, region=4, backend=backend)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(sr.grad, torch.zeros_like(sr))


@pytest.mark.parametrize("backend", BACKENDS)
def test_region_one_is_zero(backend):
    sr, hr = _pair((1, 3, 5, 4))
    sr.requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, region=1, backend=backend)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(sr.grad) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_reduction_is_eq10_with_partial_blocks(backend):
    # 1x1x3x3, region 2: blocks of 4, 2, 2 and 1 pixels, eq 10 sums each block's mean
    sr, hr = _pair((1, 1, 3, 3), levels=3)
    loss_map = naive_loss_map(sr, hr, 2)
    got = pixel_contrastive_loss(sr, hr, region=2, reduction="sum", backend=backend)
    assert got.item() == pytest.approx(naive_sum(loss_map, 2), rel=1e-10)
    got_mean = pixel_contrastive_loss(sr, hr, region=2, reduction="mean", backend=backend)
    assert got_mean.item() == pytest.approx(loss_map.mean().item(), rel=1e-10)


# ------------------------------------------------------------------------------------------------
# against the naive oracle, many shapes
# ------------------------------------------------------------------------------------------------
NAIVE_CASES = [
    ((1, 1, 4, 4), 2, 1.0, None),
    ((2, 3, 8, 8), 4, 1.0, 4),
    ((1, 3, 7, 5), 3, 0.5, 3),
    ((2, 2, 6, 9), 4, 2.0, None),
    ((1, 4, 5, 5), 5, 1.0, 2),
    ((1, 3, 9, 6), 2, 0.1, 5),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,region,temperature,levels", NAIVE_CASES)
def test_matches_naive_loops(backend, shape, region, temperature, levels, device):
    sr, hr = _pair(shape, levels=levels, seed=sum(shape))
    expected = naive_loss_map(sr, hr, region, temperature)
    got = pixel_contrastive_loss(sr.to(device), hr.to(device), region, temperature=temperature, reduction="none", backend=backend)
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# fast path == reference: values and gradients (sr and hr)
# ------------------------------------------------------------------------------------------------
def _value_and_grads(backend, sr, hr, **kwargs):
    sr = sr.detach().clone().requires_grad_()
    hr = hr.detach().clone().requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, backend=backend, **kwargs)
    weight = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype, device=loss.device).view_as(loss)
    (loss * weight).sum().backward()
    return loss.detach(), sr.grad, hr.grad


def _assert_backends_agree(sr, hr, rtol=1e-9, atol=1e-11, **kwargs):
    ref = _value_and_grads("reference", sr, hr, **kwargs)
    fast = _value_and_grads("torch", sr, hr, **kwargs)
    for name, a, b in zip(("value", "grad sr", "grad hr"), fast, ref):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize(
    "shape,region",
    [
        ((2, 3, 16, 16), 8),
        ((2, 3, 16, 16), 4),
        ((1, 3, 32, 32), 16),
        ((3, 3, 13, 11), 4),
        ((1, 1, 17, 9), 8),
        ((2, 5, 10, 12), 3),
        ((1, 3, 24, 8), 8),
        ((4, 2, 7, 7), 7),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("levels", [None, 4])
def test_torch_backend_matches_reference(shape, region, reduction, levels, device):
    sr, hr = (t.to(device) for t in _pair(shape, levels=levels, seed=region))
    _assert_backends_agree(sr, hr, region=region, temperature=0.7, reduction=reduction)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(1, 14),
    w=st.integers(1, 14),
    region=st.integers(1, 9),
    temperature=st.sampled_from([0.05, 0.3, 1.0, 3.0]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    levels=st.sampled_from([None, 2, 5]),
    chunk_size=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 10_000),
)
def test_torch_backend_matches_reference_random(n, c, h, w, region, temperature, reduction, levels, chunk_size, seed):
    region = min(region, h, w)
    sr, hr = _pair((n, c, h, w), levels=levels, seed=seed)
    _assert_backends_agree(
        sr, hr, region=region, temperature=temperature, reduction=reduction, chunk_size=chunk_size
    )


def test_backends_agree_on_0_255_range_with_sharp_softmax():
    # [0, 255] at T = 1: distances up to 765, exp underflows without max-subtraction
    sr, hr = _pair((2, 3, 16, 16), levels=256, seed=3)
    _assert_backends_agree(sr * 255, hr * 255, rtol=1e-9, atol=1e-9, region=8)
    loss = pixel_contrastive_loss(sr.float() * 255, hr.float() * 255)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1000])
def test_chunk_size_does_not_change_the_result(chunk_size):
    sr, hr = _pair((3, 3, 20, 12), levels=6, seed=1)
    default = _value_and_grads("torch", sr, hr, region=4, reduction="none")
    chunked = _value_and_grads("torch", sr, hr, region=4, reduction="none", chunk_size=chunk_size)
    for a, b in zip(chunked, default):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(backend, reduction):
    sr, hr = _pair((2, 2, 5, 6), seed=7)
    sr.requires_grad_()
    hr.requires_grad_()

    def fn(a, b):
        return pixel_contrastive_loss(a, b, 3, temperature=0.5, reduction=reduction, backend=backend)

    assert torch.autograd.gradcheck(fn, (sr, hr), eps=1e-6, atol=1e-6)


def test_gradcheck_with_duplicate_hr_values_sr_only():
    # the positive set depends on hr discretely, so only sr is perturbed here
    sr, hr = _pair((1, 3, 6, 6), levels=2, seed=2)
    sr.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: pixel_contrastive_loss(a, hr, 4, backend="torch"), (sr,))


def test_gradient_stays_inside_the_block():
    sr, hr = _pair((1, 3, 8, 8), seed=5)
    sr.requires_grad_()
    loss_map = pixel_contrastive_loss(sr, hr, 4, reduction="none")
    loss_map[..., :4, :4].sum().backward()  # only the top-left block's anchors
    assert sr.grad[..., :4, :4].abs().sum() > 0
    outside = sr.grad.clone()
    outside[..., :4, :4] = 0
    assert torch.count_nonzero(outside) == 0


def test_no_gradient_requested_for_targets():
    sr, hr = _pair((1, 3, 8, 8))
    sr.requires_grad_()
    pixel_contrastive_loss(sr, hr, 4).backward()
    assert hr.grad is None and sr.grad is not None


# ------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_temperature_matches_value_range(backend):
    sr, hr = _pair((1, 3, 8, 8), levels=256)
    unit = pixel_contrastive_loss(sr, hr, 4, backend=backend)
    bytes_range = pixel_contrastive_loss(sr * 255, hr * 255, 4, temperature=255.0, backend=backend)
    assert bytes_range.item() == pytest.approx(unit.item(), rel=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["grid", "sliding"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_value_range_contract_same_objective_as_l1_in_either_range(backend, mode, reduction):
    # the contract: PixelContrastiveLoss(value_range=255)(255 sr, 255 hr) == 255 * PixelContrastiveLoss()(sr, hr),
    # i.e. the term scales like L1, and its gradient w.r.t. the [0, 255] image equals the [0, 1] gradient
    # (as L1's does), so "L1 + 0.1 * loss" is the same training signal for both users
    sr, hr = _pair((2, 3, 12, 10), levels=256)
    sr_u, sr_b = sr.clone().requires_grad_(), (sr * 255).requires_grad_()
    unit = PixelContrastiveLoss(4, mode=mode, temperature=0.1, reduction=reduction, backend=backend)(sr_u, hr)
    crit = PixelContrastiveLoss(4, mode=mode, temperature=0.1, reduction=reduction, backend=backend, value_range=255.0)
    byte = crit(sr_b, hr * 255)
    torch.testing.assert_close(byte, 255 * unit, rtol=1e-9, atol=1e-9)
    unit.sum().backward()
    byte.sum().backward()
    torch.testing.assert_close(sr_b.grad, sr_u.grad, rtol=1e-8, atol=1e-10)
    assert "value_range=255" in repr(crit) and "value_range" not in repr(PixelContrastiveLoss())


@pytest.mark.parametrize("value_range", [0.0, -1.0, "255"])
def test_value_range_must_be_positive(value_range):
    with pytest.raises((ValueError, TypeError), match="value_range"):
        PixelContrastiveLoss(value_range=value_range)
    sr, hr = _pair((1, 3, 8, 8))
    with pytest.raises((ValueError, TypeError), match="value_range"):
        pixel_contrastive_loss(sr, hr, 4, value_range=value_range)


def test_loss_is_nonnegative_and_smaller_when_sr_is_closer():
    sr, hr = _pair((2, 3, 16, 16))
    far = pixel_contrastive_loss(sr, hr, reduction="none")
    near = pixel_contrastive_loss(hr + 0.01 * (sr - hr), hr, reduction="none")
    assert far.min() >= -1e-12
    assert near.mean() < far.mean()


def test_reductions_are_consistent():
    sr, hr = _pair((2, 3, 16, 24))
    loss_map = pixel_contrastive_loss(sr, hr, 8, reduction="none")
    assert loss_map.shape == (2, 1, 16, 24)
    mean = pixel_contrastive_loss(sr, hr, 8, reduction="mean")
    total = pixel_contrastive_loss(sr, hr, 8, reduction="sum")
    assert mean.shape == total.shape == ()
    torch.testing.assert_close(mean, loss_map.mean())
    # all blocks full: eq 10 = number of blocks * mean
    torch.testing.assert_close(total, loss_map.mean() * (2 * 2 * 3))


def test_deterministic():
    sr, hr = _pair((2, 3, 16, 16), dtype=torch.float32, levels=8)
    first = _value_and_grads("torch", sr, hr, region=8)
    second = _value_and_grads("torch", sr, hr, region=8)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_module_matches_functional_and_has_no_state():
    sr, hr = _pair((2, 3, 12, 12))
    criterion = PixelContrastiveLoss(region=4, temperature=0.5, reduction="sum")
    torch.testing.assert_close(criterion(sr, hr), pixel_contrastive_loss(sr, hr, 4, temperature=0.5, reduction="sum"))
    assert list(criterion.parameters()) == [] and criterion.state_dict() == {}
    assert "region=4" in repr(criterion) and "reduction='sum'" in repr(criterion)
    assert "mode='grid'" in repr(criterion)


def test_input_not_modified():
    sr, hr = _pair((1, 3, 8, 8))
    sr0, hr0 = sr.clone(), hr.clone()
    pixel_contrastive_loss(sr.requires_grad_(), hr, 4).backward()
    assert torch.equal(sr.detach(), sr0) and torch.equal(hr, hr0)


# ------------------------------------------------------------------------------------------------
# dtypes, memory formats, autocast, compile, DDP
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_computed_in_float32(backend, dtype, device):
    sr, hr = (t.to(device) for t in _pair((2, 3, 16, 16), dtype=torch.float32, levels=16))
    sr_h, hr_h = sr.to(dtype).requires_grad_(), hr.to(dtype)
    loss = pixel_contrastive_loss(sr_h, hr_h, 8, backend=backend)
    loss.backward()
    assert loss.dtype == torch.float32 and sr_h.grad.dtype == dtype
    # computed in float32 from the half values: equal to the float32 loss of the same values
    expected = pixel_contrastive_loss(sr_h.detach().float(), hr_h.float(), 8, backend="reference")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_mixed_dtypes_as_under_autocast():
    sr, hr = _pair((2, 3, 16, 16), dtype=torch.float32)
    a = sr.bfloat16().requires_grad_()
    loss = pixel_contrastive_loss(a, hr, 8)
    loss.backward()
    assert loss.dtype == torch.float32 and a.grad.dtype == torch.bfloat16
    expected = pixel_contrastive_loss(a.detach().float(), hr, 8, backend="reference")
    torch.testing.assert_close(loss, expected)


def test_cpu_autocast_training_step():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    sr_in, hr = _pair((2, 3, 16, 16), dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(sr_in)
        assert out.dtype == torch.bfloat16
        loss = F.l1_loss(out, hr) + 0.1 * PixelContrastiveLoss(region=8)(out, hr)
    loss.backward()
    assert torch.isfinite(loss) and net.weight.grad is not None and torch.isfinite(net.weight.grad).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last(backend, device):
    sr, hr = (t.to(device) for t in _pair((2, 3, 12, 16), levels=5))
    expected = _value_and_grads(backend, sr, hr, region=4, reduction="none")
    got = _value_and_grads(
        backend,
        sr.to(memory_format=torch.channels_last),
        hr.to(memory_format=torch.channels_last),
        region=4,
        reduction="none",
    )
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_non_contiguous_views():
    sr, hr = _pair((2, 3, 20, 20))
    expected = _value_and_grads("torch", sr[..., 2:18, 1:17].contiguous(), hr[..., 2:18, 1:17].contiguous(), region=8)
    got = _value_and_grads("torch", sr[..., 2:18, 1:17], hr[..., 2:18, 1:17], region=8)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("compile_backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_fullgraph(compile_backend):
    torch._dynamo.reset()
    criterion = PixelContrastiveLoss(region=4)

    def step(a, b):
        return F.l1_loss(a, b) + 0.1 * criterion(a, b)

    compiled = torch.compile(step, fullgraph=True, backend=compile_backend)  # fails on any graph break
    sr, hr = _pair((2, 3, 12, 10), dtype=torch.float32)
    expected = _value_and_grads_fn(step, sr, hr)
    got = _value_and_grads_fn(compiled, sr, hr)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def _value_and_grads_fn(fn, sr, hr):
    sr = sr.clone().requires_grad_()
    loss = fn(sr, hr)
    loss.backward()
    return loss.detach(), sr.grad


def test_ddp_training_step(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(3, 3, 3, padding=1))
        criterion = PixelContrastiveLoss(region=4)
        x, hr = _pair((2, 3, 8, 8), dtype=torch.float32)
        loss = F.l1_loss(model(x), hr) + 0.1 * criterion(model(x), hr)
        loss.backward()
        assert torch.isfinite(model.module.weight.grad).all()
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
_sr, _hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)

BAD_CALLS = [
    ((_sr, torch.rand(1, 3, 8, 9)), {}, ValueError, r"sr and hr must have the same shape .*\(1, 3, 8, 8\) and \(1, 3, 8, 9\)"),
    ((_sr[0], _hr[0]), {}, ValueError, r"sr must be 4-D of shape \(N, C, H, W\), got 3-D"),
    ((_sr, (_hr * 255).to(torch.uint8)), {}, TypeError, r"hr must be a floating-point tensor .* got torch.uint8"),
    ((_sr.long(), _hr), {}, TypeError, r"sr must be a floating-point tensor .* got torch.int64"),
    (([1.0], _hr), {}, TypeError, r"sr must be a torch.Tensor .* got list"),
    ((_sr[:0], _hr[:0]), {}, ValueError, r"sr must be non-empty"),
    ((_sr, _hr), {"region": 0}, ValueError, r"region must be >= 1, got 0"),
    ((_sr, _hr), {"region": 9}, ValueError, r"region must be <= the image's height and width, got region=9 .* 8x8"),
    ((_sr, _hr), {"region": 2.0}, TypeError, r"region must be an int"),
    ((_sr, _hr), {"region": True}, TypeError, r"region must be an int"),
    ((_sr, _hr), {"temperature": 0.0}, ValueError, r"temperature must be a finite number > 0, got 0.0"),
    ((_sr, _hr), {"temperature": -1}, ValueError, r"temperature must be a finite number > 0, got -1.0"),
    ((_sr, _hr), {"temperature": float("nan")}, ValueError, r"temperature must be a finite number > 0"),
    ((_sr, _hr), {"temperature": "1"}, TypeError, r"temperature must be a positive float"),
    ((_sr, _hr), {"reduction": "avg"}, ValueError, r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    ((_sr, _hr), {"backend": "cuda"}, ValueError, r"backend must be one of 'auto', 'reference', 'torch', 'triton', got 'cuda'"),
    ((_sr, _hr), {"mode": "overlap"}, ValueError, r"mode must be one of 'grid', 'sliding', got 'overlap'"),
    ((_sr, _hr), {"mode": "sliding", "region": 9}, ValueError, r"region must be <= the image's height and width"),
    ((_sr, _hr), {"chunk_size": 0}, ValueError, r"chunk_size must be >= 1, got 0"),
]


@pytest.mark.parametrize("args,kwargs,exc,match", BAD_CALLS)
def test_bad_input_messages(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pixel_contrastive_loss(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"region": 0}, ValueError, "region must be >= 1"),
        ({"temperature": 0}, ValueError, "temperature must be a finite number > 0"),
        ({"reduction": "max"}, ValueError, "reduction must be one of"),
        ({"backend": "numba"}, ValueError, "backend must be one of"),
        ({"mode": "windows"}, ValueError, "mode must be one of 'grid', 'sliding'"),
        ({"chunk_size": -3}, ValueError, "chunk_size must be >= 1"),
    ],
)
def test_module_fails_fast_in_constructor(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PixelContrastiveLoss(**kwargs)


def test_devices_that_differ():
    meta = torch.empty(1, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match=r"sr and hr must be on the same device, got cpu and meta"):
        pixel_contrastive_loss(_sr, meta)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpu(dtype):
    sr, hr = _pair((2, 3, 24, 20), dtype=torch.float32, levels=9)
    cpu = _value_and_grads("torch", sr.to(dtype), hr.to(dtype), region=8)
    gpu = _value_and_grads("auto", sr.to(dtype).cuda(), hr.to(dtype).cuda(), region=8)
    for a, b in zip(gpu, cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)


def test_all_backends_listed_are_tested():
    from contrastive_sr_losses.kernels import PIXEL_CONTRASTIVE_BACKENDS

    # 'triton' is tested against the references in test_pixel_contrastive_triton.py
    assert set(PIXEL_CONTRASTIVE_BACKENDS) == {"auto", "triton", *BACKENDS}


# ------------------------------------------------------------------------------------------------
# 'auto' dispatch and the optional triton dependency
# ------------------------------------------------------------------------------------------------
class _FakeCudaTensor:
    is_cuda = True  # all that the dispatch looks at


@pytest.mark.parametrize("triton_available,interpreted", [(True, False), (False, False), (True, True)])
def test_auto_dispatch(monkeypatch, triton_available, interpreted):
    from contrastive_sr_losses import kernels

    monkeypatch.setattr(kernels, "TRITON_AVAILABLE", triton_available)
    monkeypatch.setattr(kernels, "TRITON_INTERPRETED", interpreted)
    cuda_choice = kernels.select_pixel_contrastive_backend("auto", _FakeCudaTensor())
    # the kernels on CUDA only when compiled: never the (slow) interpreter behind the user's back;
    # 'auto' stays 'auto' when they are eligible: the self-checked choice made at run time
    assert cuda_choice == ("auto" if triton_available and not interpreted else "torch")
    assert kernels.select_pixel_contrastive_backend("auto", _sr) == "torch"  # CPU: never the interpreter
    for explicit in ("reference", "torch", "triton"):
        assert kernels.select_pixel_contrastive_backend(explicit, _sr) == explicit


def test_auto_on_cpu_is_the_torch_path():
    sr, hr = _pair((2, 3, 12, 10), levels=4)
    for mode in ("grid", "sliding"):
        auto = _value_and_grads("auto", sr, hr, region=4, mode=mode, reduction="none")
        fast = _value_and_grads("torch", sr, hr, region=4, mode=mode, reduction="none")
        for a, b in zip(auto, fast):
            assert torch.equal(a, b)


def test_triton_backend_without_triton_says_so(monkeypatch):
    from contrastive_sr_losses import kernels

    monkeypatch.setattr(kernels, "_triton_path", None)
    monkeypatch.setattr(kernels, "TRITON_UNAVAILABLE_REASON", "ImportError: No module named 'triton'")
    with pytest.raises(RuntimeError, match=r"backend='triton' needs the optional triton package .*No module named"):
        pixel_contrastive_loss(_sr, _hr, 4, backend="triton")


def test_package_imports_and_works_without_triton():
    # a fresh interpreter in which `import triton` fails: the package imports, 'auto' still works
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from contrastive_sr_losses.kernels import TRITON_AVAILABLE, TRITON_UNAVAILABLE_REASON\n"
        "from contrastive_sr_losses.losses.pixel_contrastive import pixel_contrastive_loss\n"
        "assert not TRITON_AVAILABLE and 'triton' in TRITON_UNAVAILABLE_REASON, TRITON_UNAVAILABLE_REASON\n"
        "sr = torch.rand(1, 3, 8, 8, requires_grad=True)\n"
        "pixel_contrastive_loss(sr, torch.rand(1, 3, 8, 8), 4, mode='sliding').backward()\n"
        "assert sr.grad is not None\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_many_shapes_smoke():
    # every region of a 9x11 image: finite values, right map shape
    sr, hr = _pair((1, 3, 9, 11), dtype=torch.float32)
    for region, reduction in itertools.product(range(1, 10), ["mean", "none"]):
        out = pixel_contrastive_loss(sr, hr, region, reduction=reduction)
        assert torch.isfinite(out).all()
        assert out.shape == ((1, 1, 9, 11) if reduction == "none" else ())


# ------------------------------------------------------------------------------------------------
# where things live: one dispatch site, a small kernels API, names kept where they were
# ------------------------------------------------------------------------------------------------
def test_loss_vocabulary_lives_in_the_loss_module_and_imports_from_kernels_too():
    from contrastive_sr_losses import kernels
    from contrastive_sr_losses.kernels import selfcheck
    from contrastive_sr_losses.losses import pixel_contrastive as module

    assert module.PIXEL_CONTRASTIVE_MODES == ("grid", "sliding")
    for name in ("PIXEL_CONTRASTIVE_BACKENDS", "PIXEL_CONTRASTIVE_MODES", "select_pixel_contrastive_backend",
                 "pixel_contrastive_fast_map"):  # fmt: skip
        assert getattr(kernels, name) is getattr(module, name), name
    assert selfcheck.pixel_contrastive_auto_map is kernels.auto_map
    for name in kernels.__all__:
        assert hasattr(kernels, name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        kernels.nothing  # noqa: B018  (the attribute access is what is tested)


def test_custom_op_names_are_kept():
    import contrastive_sr_losses.kernels  # noqa: F401  (registers the ops)

    ops = ["grid_fwd", "grid_bwd", "sliding_fwd", "sliding_bwd", "auto_fwd", "auto_bwd"]
    for name in ops:
        assert hasattr(torch.ops.contrastive_sr_losses, f"pixel_contrastive_{name}"), name


def test_kernels_import_no_private_name_across_modules():
    import ast
    from pathlib import Path

    import contrastive_sr_losses

    root = Path(contrastive_sr_losses.__file__).parent
    files = [*sorted((root / "kernels").glob("*.py")), root / "losses" / "pixel_contrastive.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"]
                assert not private, f"{path.name} imports {private} from {node.module}"
