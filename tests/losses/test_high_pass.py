"""Gaussian filters and the Gaussian high-pass loss (G-IDRN: Wang, Zhao, Liu and Tao 2024, eq 12)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses.functional.filters import (
    default_kernel_size,
    gaussian_blur2d,
    gaussian_cutoff_frequency,
    gaussian_high_pass,
    gaussian_kernel1d,
)
from contrastive_sr_losses.losses.high_pass import (
    DEFAULT_HIGH_PASS_SIGMA,
    GaussianHighPassLoss,
    gaussian_high_pass_loss,
)

MODES = ("spatial", "fft")


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------- filters


def test_kernel1d_matches_formula():
    k = gaussian_kernel1d(1.5, 7, dtype=torch.float64)
    t = torch.arange(-3, 4, dtype=torch.float64)
    expected = torch.exp(-(t**2) / (2 * 1.5**2))
    torch.testing.assert_close(k, expected / expected.sum())
    assert default_kernel_size(1.0) == 7 and default_kernel_size(0.5) == 5 and default_kernel_size(2.0) == 13
    assert gaussian_kernel1d(2.0).numel() == 13


def test_kernel1d_batched_sigmas():
    sig = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    k = gaussian_kernel1d(sig, 9)
    assert k.shape == (3, 9)
    torch.testing.assert_close(k.sum(1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(k[1], gaussian_kernel1d(1.0, 9, dtype=torch.float64))


def test_blur_equals_naive_2d_convolution_with_reflect_padding():
    x = _rand(2, 3, 11, 9, dtype=torch.float64)
    k = gaussian_kernel1d(1.0, 5, dtype=torch.float64)
    k2 = torch.outer(k, k)
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    expected = torch.zeros_like(x)
    for dy in range(5):
        for dx in range(5):
            expected += k2[dy, dx] * padded[..., dy : dy + 11, dx : dx + 9]
    torch.testing.assert_close(gaussian_blur2d(x, 1.0, 5), expected)


def test_blur_keeps_layout_and_constants():
    x = torch.full((1, 3, 8, 8), 0.7)
    torch.testing.assert_close(gaussian_blur2d(x, 1.0), x)
    cl = _rand(1, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    out = gaussian_blur2d(cl, 1.0)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, gaussian_blur2d(cl.contiguous(), 1.0))


def test_high_pass_of_delta_by_hand(device):
    # 3x3 delta, kernel_size 3: reflect padding repeats the centre row/column at both borders, so the
    # blur is outer([2a, b, 2a], [2a, b, 2a]) with the taps a, b, a of the normalised kernel.
    e = math.exp(-0.5)
    a, b = e / (1 + 2 * e), 1 / (1 + 2 * e)
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64, device=device)
    x[..., 1, 1] = 1.0
    row = torch.tensor([2 * a, b, 2 * a], dtype=torch.float64, device=device)
    expected = x - torch.outer(row, row)
    torch.testing.assert_close(gaussian_high_pass(x, 1.0, kernel_size=3), expected)
    loss = gaussian_high_pass_loss(x, torch.zeros_like(x), 1.0, kernel_size=3)
    by_hand = ((1 - b * b) + 4 * (2 * a) ** 2 + 4 * (2 * a * b)) / 9
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)


def test_fft_high_pass_of_a_cosine_by_hand(device):
    # A cosine of 4/16 cycles per pixel is an eigenfunction of the periodic filter:
    # its amplitude is multiplied by 1 - exp(-f^2 / (2 D0^2)), D0 = 1 / (2 pi sigma).
    w, f, sigma = 16, 4 / 16, 1.0
    x = torch.cos(2 * math.pi * f * torch.arange(w, dtype=torch.float64, device=device)).expand(1, 2, 8, w).clone()
    gain = 1 - math.exp(-(f**2) / (2 * gaussian_cutoff_frequency(sigma) ** 2))
    torch.testing.assert_close(gaussian_high_pass(x, sigma, mode="fft"), gain * x)
    assert gaussian_cutoff_frequency(sigma) == pytest.approx(1 / (2 * math.pi))


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_spatial_and_fft_agree_away_from_the_borders(sigma):
    # A smooth-ish image (blurred noise): the two filters differ only by the borders (reflect vs
    # periodic) and by the truncation / sampling of the spatial kernel.
    x = gaussian_blur2d(_rand(2, 3, 96, 80, dtype=torch.float64), 0.7)
    a = gaussian_high_pass(x, sigma)
    b = gaussian_high_pass(x, sigma, mode="fft")
    m = default_kernel_size(sigma) + 4
    interior = (slice(None), slice(None), slice(m, -m), slice(m, -m))
    err = (a - b)[interior].abs().max()
    assert err <= 0.01 * a[interior].abs().max()


# ---------------------------------------------------------------------------------------- loss


@pytest.mark.parametrize("mode", MODES)
def test_zero_for_identical_and_for_constant_offset(mode, device):
    hr = _rand(2, 3, 24, 20).to(device)
    assert gaussian_high_pass_loss(hr, hr, mode=mode).item() == 0.0
    # The filter removes DC: a brightness offset costs nothing (exact up to float rounding).
    assert gaussian_high_pass_loss(hr + 0.3, hr, mode=mode).item() < 1e-6
    assert gaussian_high_pass_loss(hr * 1.5, hr, mode=mode).item() > 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_reductions_and_module_equals_functional(mode, device):
    sr, hr = _rand(2, 3, 16, 18, seed=1).to(device), _rand(2, 3, 16, 18, seed=2).to(device)
    full = gaussian_high_pass_loss(sr, hr, 1.5, mode=mode, reduction="none")
    assert full.shape == sr.shape and (full >= 0).all()
    torch.testing.assert_close(gaussian_high_pass_loss(sr, hr, 1.5, mode=mode), full.mean())
    torch.testing.assert_close(gaussian_high_pass_loss(sr, hr, 1.5, mode=mode, reduction="sum"), full.sum())
    # linear filter: |H(sr) - H(hr)| == |H(sr - hr)|
    torch.testing.assert_close(full, (gaussian_high_pass(sr, 1.5, mode=mode) - gaussian_high_pass(hr, 1.5, mode=mode)).abs())
    module = GaussianHighPassLoss(1.5, mode=mode)
    torch.testing.assert_close(module(sr, hr), gaussian_high_pass_loss(sr, hr, 1.5, mode=mode))
    assert "sigma=1.5" in repr(module)


def test_default_sigma_and_kernel_size_argument():
    assert GaussianHighPassLoss().sigma == DEFAULT_HIGH_PASS_SIGMA == 1.0
    sr, hr = _rand(1, 3, 16, 16, seed=3), _rand(1, 3, 16, 16, seed=4)
    a = GaussianHighPassLoss(1.0, kernel_size=3)(sr, hr)
    b = GaussianHighPassLoss(1.0, kernel_size=7)(sr, hr)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode):
    sr = _rand(1, 2, 7, 9, seed=5, dtype=torch.float64).requires_grad_()
    hr = _rand(1, 2, 7, 9, seed=6, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: gaussian_high_pass_loss(a, b, 1.0, mode=mode), (sr, hr))
    assert torch.autograd.gradcheck(
        lambda a, b: gaussian_high_pass_loss(a, b, 1.0, mode=mode, reduction="none"), (sr, hr)
    )


@pytest.mark.parametrize("mode", MODES)
def test_gradient_flows_to_sr_only(mode):
    sr = _rand(2, 3, 16, 16, seed=7).requires_grad_()
    hr = _rand(2, 3, 16, 16, seed=8)
    GaussianHighPassLoss(mode=mode)(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0 and hr.grad is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_compute_in_float32(mode, dtype, device):
    sr, hr = _rand(2, 3, 16, 16, seed=9).to(device), _rand(2, 3, 16, 16, seed=10).to(device)
    ref = gaussian_high_pass_loss(sr.to(dtype).float(), hr.to(dtype).float(), mode=mode)
    srh = sr.to(dtype).requires_grad_()
    out = gaussian_high_pass_loss(srh, hr.to(dtype), mode=mode)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    out.backward()
    assert srh.grad.dtype == dtype


@pytest.mark.parametrize("mode", MODES)
def test_autocast_cpu_bfloat16(mode):
    sr, hr = _rand(2, 3, 16, 16, seed=11).requires_grad_(), _rand(2, 3, 16, 16, seed=12)
    ref = gaussian_high_pass_loss(sr, hr, mode=mode)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gaussian_high_pass_loss(sr, hr, mode=mode)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)  # the filter runs in float32 inside autocast
    out.backward()
    assert sr.grad is not None


@pytest.mark.parametrize("mode", MODES)
def test_channels_last_and_non_contiguous(mode, device):
    sr, hr = _rand(2, 3, 16, 20, seed=13).to(device), _rand(2, 3, 16, 20, seed=14).to(device)
    ref = gaussian_high_pass_loss(sr, hr, mode=mode)
    cl = gaussian_high_pass_loss(
        sr.contiguous(memory_format=torch.channels_last), hr.contiguous(memory_format=torch.channels_last), mode=mode
    )
    torch.testing.assert_close(cl, ref)
    big_sr, big_hr = _rand(2, 3, 16, 40, seed=13), _rand(2, 3, 16, 40, seed=14)
    view = gaussian_high_pass_loss(big_sr[..., ::2], big_hr[..., ::2], mode=mode)
    torch.testing.assert_close(view, gaussian_high_pass_loss(big_sr[..., ::2].contiguous(), big_hr[..., ::2].contiguous(), mode=mode))


def test_torch_compile_fullgraph():
    module = GaussianHighPassLoss()
    sr, hr = _rand(1, 3, 16, 16, seed=15), _rand(1, 3, 16, 16, seed=16)
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(sr, hr), module(sr, hr))


def test_deterministic():
    sr, hr = _rand(2, 3, 32, 32, seed=17), _rand(2, 3, 32, 32, seed=18)
    assert torch.equal(GaussianHighPassLoss()(sr, hr), GaussianHighPassLoss()(sr, hr))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0.0}, ValueError, "sigma must be a finite number > 0"),
        ({"sigma": "1"}, TypeError, "sigma must be a positive float"),
        ({"kernel_size": 4}, ValueError, "kernel_size must be odd"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"kernel_size": 5, "mode": "fft"}, ValueError, "kernel_size applies to mode='spatial' only"),
        ({"mode": "dct"}, ValueError, "mode must be one of 'spatial', 'fft'"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of 'mean', 'sum', 'none'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        GaussianHighPassLoss(**kwargs)
    sr = torch.rand(1, 3, 16, 16)
    with pytest.raises(error, match=match):
        gaussian_high_pass_loss(sr, sr, **kwargs)


def test_bad_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"sr and hr must have the same shape"):
        gaussian_high_pass_loss(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match=r"sr must be 4-D"):
        gaussian_high_pass_loss(x[0], x[0])
    with pytest.raises(TypeError, match=r"hr must be a floating-point tensor"):
        gaussian_high_pass_loss(x, (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"reflect padding of 9 pixels .* needs H and W > 9, got an image of 8x16"):
        gaussian_high_pass_loss(torch.rand(1, 3, 8, 16), torch.rand(1, 3, 8, 16), 3.0)
    with pytest.raises(ValueError, match="kernel_size must be given when sigma is a tensor"):
        gaussian_kernel1d(torch.tensor([1.0]))
