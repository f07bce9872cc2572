"""Tests of the one-level 2-D DWT (contrastive_sr_losses.functional.wavelets) against PyWavelets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pywt
import torch

from contrastive_sr_losses.functional.wavelets import (
    DWT2,
    DWT_MODES,
    analysis_filter_bank,
    dwt2,
    haar_dwt,
    haar_idwt,
    high_frequency_bands,
    idwt2,
)

WAVELETS = ["haar", "db2", "sym4", "bior2.2", "coif1"]
SIZES = [(8, 8), (7, 10), (3, 2), (1, 5)]


def _x(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _pywt_bands(x: torch.Tensor, wavelet: str, mode: str):
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), wavelet, mode=mode, axes=(-2, -1))
    return ca, ch, cv, cd


# ------------------------------------------------------------------------------------------------
# against PyWavelets
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("mode", DWT_MODES)
@pytest.mark.parametrize("size", SIZES)
def test_dwt2_matches_pywt(wavelet, mode, size):
    if mode == "reflect" and min(size) < 2:
        pytest.skip("PyWavelets (and we) refuse reflect on a side of 1")
    x = _x((2, 3, *size))
    ours = dwt2(x, wavelet, mode)
    for got, expected in zip(ours, _pywt_bands(x, wavelet, mode)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("size", SIZES)
def test_idwt2_matches_pywt_and_reconstructs(wavelet, size):
    x = _x((2, 2, *size), seed=1)
    for mode in DWT_MODES:
        if mode == "reflect" and min(size) < 2:
            continue
        bands = dwt2(x, wavelet, mode)
        ca, ch, cv, cd = _pywt_bands(x, wavelet, mode)
        expected = pywt.idwt2((ca, (ch, cv, cd)), wavelet, mode=mode, axes=(-2, -1))
        full = idwt2(*bands, wavelet)
        assert full.shape == expected.shape
        np.testing.assert_allclose(full.numpy(), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(idwt2(*bands, wavelet, size=size), x, rtol=0, atol=1e-10)


def test_haar_by_hand():
    # one 2x2 block [[a, b], [c, d]]; Haar filters are (1, 1)/sqrt2 and (1, -1)/sqrt2
    a, b, c, d = 1.0, 2.0, 4.0, 8.0
    x = torch.tensor([[[[a, b], [c, d]]]], dtype=torch.float64)
    ll, lh, hl, hh = haar_dwt(x)
    assert ll.item() == pytest.approx((a + b + c + d) / 2)
    assert lh.item() == pytest.approx((a + b - c - d) / 2)  # high-pass along H: horizontal edges
    assert hl.item() == pytest.approx((a - b + c - d) / 2)  # high-pass along W: vertical edges
    assert hh.item() == pytest.approx((a - b - c + d) / 2)
    torch.testing.assert_close(haar_idwt(ll, lh, hl, hh), x)


def test_band_orientation():
    ramp = torch.arange(8, dtype=torch.float64)
    varies_along_h = ramp.view(1, 1, 8, 1).expand(1, 1, 8, 8).contiguous()
    _, lh, hl, hh = haar_dwt(varies_along_h)
    assert lh.abs().min() > 0.5 and hl.abs().max() < 1e-12 and hh.abs().max() < 1e-12
    _, lh, hl, hh = haar_dwt(varies_along_h.transpose(-1, -2))
    assert hl.abs().min() > 0.5 and lh.abs().max() < 1e-12 and hh.abs().max() < 1e-12


def test_haar_is_orthonormal_energy_preserved():
    x = _x((3, 2, 16, 12))
    bands = haar_dwt(x)
    assert sum(float(b.pow(2).sum()) for b in bands) == pytest.approx(float(x.pow(2).sum()), rel=1e-12)


def test_haar_even_sizes_do_not_read_the_border():
    x = _x((1, 1, 6, 8))
    results = [dwt2(x, "haar", mode) for mode in DWT_MODES]
    for other in results[1:]:
        for u, v in zip(results[0], other):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_high_frequency_bands_order():
    x = _x((2, 3, 8, 8))
    _, lh, hl, hh = dwt2(x)
    hf = high_frequency_bands(x)
    assert hf.shape == (2, 9, 4, 4)
    torch.testing.assert_close(hf, torch.cat([lh, hl, hh], 1))


def test_constant_image_has_no_detail_in_every_mode():
    x = torch.full((1, 2, 7, 9), 0.25, dtype=torch.float64)
    for mode in ("symmetric", "reflect", "constant", "periodic"):
        for band in dwt2(x, "db2", mode)[1:]:
            assert band.abs().max() < 1e-12


# ------------------------------------------------------------------------------------------------
# module, dtypes, layouts, autograd, compile
# ------------------------------------------------------------------------------------------------
def test_module_matches_function_and_keeps_no_state():
    x = _x((2, 3, 9, 8), dtype=torch.float32)
    module = DWT2("db2", "symmetric")
    for u, v in zip(module(x), dwt2(x, "db2", "symmetric")):
        torch.testing.assert_close(u, v)
    torch.testing.assert_close(DWT2(high_only=True)(x), high_frequency_bands(x))
    assert module.state_dict() == {}
    assert "filter_bank" in dict(module.named_buffers())
    assert module.to(torch.float64).filter_bank.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_dtypes(dtype):
    x = _x((2, 3, 8, 8), dtype=torch.float32)
    expected = dwt2(x)
    got = dwt2(x.to(dtype))
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 1e-6}[dtype]
    for u, v in zip(got, expected):
        assert u.dtype == dtype
        torch.testing.assert_close(u.float(), v, rtol=tol, atol=tol)


def test_autocast_bfloat16():
    x = _x((1, 3, 8, 8), dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = DWT2(high_only=True)(x)
    torch.testing.assert_close(out.float(), high_frequency_bands(x), rtol=5e-2, atol=5e-2)


def test_channels_last_and_views():
    x = _x((2, 3, 10, 9))
    expected = dwt2(x, "db2")
    for variant in (x.to(memory_format=torch.channels_last), x.transpose(-1, -2).contiguous().transpose(-1, -2)):
        for u, v in zip(dwt2(variant, "db2"), expected):
            torch.testing.assert_close(u, v)


def test_gradcheck_float64():
    x = _x((1, 2, 5, 4)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: tuple(dwt2(t, "db2", "symmetric")), (x,))
    bands = tuple(b.detach().requires_grad_(True) for b in dwt2(x.detach(), "haar"))
    assert torch.autograd.gradcheck(lambda *b: idwt2(*b, "haar"), bands)


def test_torch_compile_fullgraph():
    module = DWT2("haar", "reflect", high_only=True)
    x = _x((2, 3, 9, 8), dtype=torch.float32)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), module(x))


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: dwt2(torch.rand(3, 8, 8)), ValueError, r"4-D of shape \(N, C, H, W\)"),
        (lambda: dwt2(torch.ones(1, 1, 4, 4, dtype=torch.int64)), TypeError, "floating-point"),
        (lambda: dwt2("image"), TypeError, "torch.Tensor"),
        (lambda: dwt2(torch.rand(1, 1, 4, 4), "nope"), ValueError, "discrete wavelet of PyWavelets"),
        (lambda: dwt2(torch.rand(1, 1, 4, 4), "morl"), ValueError, "discrete wavelet"),
        (lambda: dwt2(torch.rand(1, 1, 4, 4), pywt.Wavelet("haar")), TypeError, "wavelet name"),
        (lambda: dwt2(torch.rand(1, 1, 4, 4), "haar", "smooth"), ValueError, "mode must be one of"),
        (lambda: dwt2(torch.rand(1, 1, 1, 4), "haar", "reflect"), ValueError, "H and W >= 2"),
        (lambda: DWT2(mode="wrap"), ValueError, "mode must be one of"),
        (lambda: idwt2(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 3), torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2)), ValueError, "lh is"),
        (lambda: idwt2(*[torch.rand(1, 1, 2, 2)] * 4, size=(5, 4)), ValueError, "at most the full reconstruction"),
    ],
)
def test_bad_input_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_filter_bank_is_pywt_reversed():
    w = pywt.Wavelet("db2")
    bank = analysis_filter_bank("db2", dtype=torch.float64)
    np.testing.assert_allclose(bank[0].numpy(), np.outer(w.dec_lo[::-1], w.dec_lo[::-1]))
    np.testing.assert_allclose(bank[1].numpy(), np.outer(w.dec_hi[::-1], w.dec_lo[::-1]))
    assert bank.shape == (4, 4, 4)
    assert math.isclose(float(analysis_filter_bank("haar")[3].abs().sum()), 2.0, rel_tol=1e-6)
