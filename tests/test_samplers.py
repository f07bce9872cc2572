"""Tests of PCL's sample generators (contrastive_sr_losses.samplers): sharpened positives, blurred negatives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses.functional.filters import gaussian_blur2d
from contrastive_sr_losses.functional.wavelets import high_frequency_bands
from contrastive_sr_losses.samplers import (
    RandomGaussianBlur,
    RandomSharpen,
    gaussian_blur_copies,
    sharpen_copies,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _textured(n=3, c=3, size=32, seed=0, dtype=torch.float64):
    """Mid-grey images with moderate texture: no clamping at 0 or 1 for moderate sharpening."""
    return 0.5 + 0.08 * torch.randn(n, c, size, size, generator=_gen(seed), dtype=dtype)


def _hf_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean energy of the Haar detail sub-bands per image: (..., C, H, W) -> (...)."""
    lead = x.shape[:-3]
    return high_frequency_bands(x.reshape(-1, *x.shape[-3:])).pow(2).mean((1, 2, 3)).view(lead)


# ------------------------------------------------------------------------------------------------
# shapes, devices, reproducibility
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", [RandomGaussianBlur(k=3), RandomSharpen(k=3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype(sampler, dtype):
    x = torch.rand(2, 4, 12, 14, dtype=dtype)
    out = sampler(x, generator=_gen(0))
    assert out.shape == (2, 3, 4, 12, 14) and out.dtype == dtype and out.device == x.device


@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_reproducible_with_generator_and_global_seed(cls):
    sampler, x = cls(k=4), _textured()
    a, b = sampler(x, generator=_gen(7)), sampler(x, generator=_gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, sampler(x, generator=_gen(8)))
    torch.manual_seed(3)
    c = sampler(x)
    torch.manual_seed(3)
    assert torch.equal(c, sampler(x))


@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_copies_and_images_are_independent(cls):
    x = _textured(n=1).expand(2, -1, -1, -1)  # the same image twice
    out = cls(k=4)(x, generator=_gen(1))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(out[0, i], out[0, j])
    assert not torch.equal(out[0], out[1])


def test_parameters_in_their_ranges():
    blur = RandomGaussianBlur(k=50, sigma=(0.3, 0.7), kernel_sizes=(3, 9))
    sigma, sizes = blur.sample_parameters(20, generator=_gen(0))
    assert sigma.shape == (20, 50, 2) and sizes.shape == (20, 50)
    assert 0.3 <= float(sigma.min()) and float(sigma.max()) < 0.7
    assert set(sizes.unique().tolist()) == {3, 9}
    assert not torch.equal(sigma[..., 0], sigma[..., 1])  # one sigma per axis
    factor = RandomSharpen(k=50, factor=(1.5, 2.5)).sample_parameters(20, generator=_gen(0))
    assert factor.shape == (20, 50) and 1.5 <= float(factor.min()) and float(factor.max()) < 2.5


def test_parameters_do_not_depend_on_image_content_or_dtype():
    blur = RandomGaussianBlur(k=2)
    x = _textured(n=2)
    a = blur(x, generator=_gen(5))
    b = blur(x.float(), generator=_gen(5))
    torch.testing.assert_close(a.float(), b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# the blur
# ------------------------------------------------------------------------------------------------
def test_isotropic_copies_equal_gaussian_blur2d():
    x = torch.rand(2, 3, 19, 16, dtype=torch.float64)
    sigma = torch.tensor([[[1.0, 1.0], [0.5, 0.5]], [[2.0, 2.0], [0.3, 0.3]]], dtype=torch.float64)
    sizes = torch.tensor([[5, 3], [11, 7]])
    out = gaussian_blur_copies(x, sigma, sizes)
    for i in range(2):
        for j in range(2):
            expected = gaussian_blur2d(x[i : i + 1], float(sigma[i, j, 0]), int(sizes[i, j]))
            torch.testing.assert_close(out[i, j], expected[0])


def test_anisotropic_copy_equals_a_naive_2d_convolution():
    x = torch.rand(1, 2, 13, 12, dtype=torch.float64)
    sy, sx, size = 1.7, 0.4, 7
    out = gaussian_blur_copies(x, torch.tensor([[[sy, sx]]], dtype=torch.float64), size)
    t = torch.arange(size, dtype=torch.float64) - size // 2
    gy, gx = torch.exp(-(t**2) / (2 * sy**2)), torch.exp(-(t**2) / (2 * sx**2))
    kernel = torch.outer(gy, gx)
    kernel = kernel / kernel.sum()
    padded = F.pad(x, (3, 3, 3, 3), mode="reflect")
    expected = torch.empty_like(x)
    for c in range(2):
        for yy in range(13):
            for xx in range(12):
                expected[0, c, yy, xx] = (padded[0, c, yy : yy + size, xx : xx + size] * kernel).sum()
    torch.testing.assert_close(out[0, 0], expected[0])


def test_blur_keeps_constants_and_range():
    x = torch.full((2, 3, 16, 16), 0.7)
    torch.testing.assert_close(RandomGaussianBlur(k=3)(x, generator=_gen(0)), x.unsqueeze(1).expand(2, 3, 3, 16, 16))
    y = torch.rand(2, 3, 16, 16)
    out = RandomGaussianBlur(k=3)(y, generator=_gen(0))
    assert float(out.min()) >= float(y.min()) - 1e-6 and float(out.max()) <= float(y.max()) + 1e-6


def test_blur_lowers_high_frequency_energy():
    x = _textured(n=4)
    before = _hf_energy(x)[:, None]  # (N, 1)
    clearly = RandomGaussianBlur(k=6, sigma=(0.5, 2.0))(x, generator=_gen(0))
    assert bool((_hf_energy(clearly) < 0.9 * before).all())
    default = RandomGaussianBlur(k=6)(x, generator=_gen(1))  # sigma down to 0.1: nearly the identity
    assert bool((_hf_energy(default) <= before * (1 + 1e-9)).all())


# ------------------------------------------------------------------------------------------------
# the sharpening
# ------------------------------------------------------------------------------------------------
def test_sharpen_by_hand():
    # 3x3 image; the centre's 3x3 neighbourhood is the whole image: blurred = (sum + 4 * centre) / 13
    x = torch.arange(9, dtype=torch.float64).view(1, 1, 3, 3)
    blurred_centre = (36.0 + 4 * 4.0) / 13
    out = sharpen_copies(x, torch.tensor([[2.0, 0.5]], dtype=torch.float64), value_range=None)
    assert out[0, 0, 0, 1, 1].item() == pytest.approx(blurred_centre + 2.0 * (4.0 - blurred_centre))
    assert out[0, 1, 0, 1, 1].item() == pytest.approx(blurred_centre + 0.5 * (4.0 - blurred_centre))
    # corner (0, 0) with reflect padding: neighbours x[1,1], x[1,0], x[1,1], x[0,1], x[0,1], x[1,1], x[1,0], x[1,1]
    corner_blur = (5 * 0.0 + 2 * 1.0 + 2 * 3.0 + 4 * 4.0) / 13
    assert out[0, 0, 0, 0, 0].item() == pytest.approx(corner_blur + 2.0 * (0.0 - corner_blur))


def test_sharpen_identity_factor_and_constants():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(sharpen_copies(x, torch.ones(2, 3, dtype=torch.float64))[:, 1], x)
    c = torch.full((1, 3, 8, 8), 0.3)
    torch.testing.assert_close(RandomSharpen(k=2)(c, generator=_gen(0)), c.unsqueeze(1).expand(1, 2, 3, 8, 8))


def test_sharpen_raises_and_soft_factors_lower_high_frequency_energy():
    x = _textured(n=4)
    before = _hf_energy(x)[:, None]
    sharper = RandomSharpen(k=6, factor=(1.5, 3.0))(x, generator=_gen(0))
    assert bool((_hf_energy(sharper) > 1.5 * before).all())
    softer = RandomSharpen(k=6, factor=(0.5, 0.9))(x, generator=_gen(0))
    assert bool((_hf_energy(softer) < before).all())


@pytest.mark.parametrize("value_range", [1.0, 255.0])
def test_sharpen_clamps_to_the_value_range(value_range):
    x = torch.rand(2, 3, 16, 16, generator=_gen(0)) * value_range
    out = RandomSharpen(k=4, factor=(2.5, 3.0), value_range=value_range)(x, generator=_gen(1))
    assert float(out.min()) == 0.0 and float(out.max()) == value_range
    free = RandomSharpen(k=4, factor=(2.5, 3.0), value_range=None)(x, generator=_gen(1))
    assert float(free.min()) < 0.0 and float(free.max()) > value_range
    torch.testing.assert_close(out, free.clamp(0, value_range))


# ------------------------------------------------------------------------------------------------
# dtypes and layouts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(cls, dtype):
    x = torch.rand(2, 3, 16, 16)
    out = cls(k=2)(x.to(dtype), generator=_gen(0))
    expected = cls(k=2)(x.to(dtype).float(), generator=_gen(0))
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected.to(dtype))


@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_channels_last_input(cls):
    x = torch.rand(2, 3, 16, 12)
    a = cls(k=2)(x, generator=_gen(0))
    b = cls(k=2)(x.to(memory_format=torch.channels_last), generator=_gen(0))
    torch.testing.assert_close(a, b)


def test_gradcheck_float64():
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_blur_copies(t, torch.full((1, 1, 2), 0.8, dtype=torch.float64), 3), (x,))
    assert torch.autograd.gradcheck(lambda t: sharpen_copies(t, torch.tensor([[1.7]], dtype=torch.float64), None), (x,))


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: RandomGaussianBlur(k=0), ValueError, "k must be >= 1, got 0"),
        (lambda: RandomSharpen(k=-2), ValueError, "k must be >= 1, got -2"),
        (lambda: RandomSharpen(k=2.0), TypeError, "k must be an int"),
        (lambda: RandomGaussianBlur(sigma=(2.0, 0.1)), ValueError, "sigma must be a pair"),
        (lambda: RandomGaussianBlur(sigma=(0.0, 1.0)), ValueError, "0 < low <= high"),
        (lambda: RandomGaussianBlur(sigma=1.0), TypeError, r"sigma must be a pair \(low, high\)"),
        (lambda: RandomGaussianBlur(kernel_sizes=(3, 4)), ValueError, "odd ints"),
        (lambda: RandomGaussianBlur(kernel_sizes=()), ValueError, "non-empty"),
        (lambda: RandomSharpen(factor=(3.0, 1.0)), ValueError, "factor must be a pair"),
        (lambda: RandomSharpen(value_range=0), ValueError, "value_range must be a finite number > 0"),
    ],
)
def test_bad_constructor_arguments(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: RandomSharpen()(torch.rand(3, 8, 8)), ValueError, r"4-D of shape \(N, C, H, W\)"),
        (lambda: RandomGaussianBlur()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "floating-point"),
        (lambda: RandomGaussianBlur()(torch.rand(1, 3, 5, 32)), ValueError, r"needs H and W > 5; got an image of 5x32"),
        (lambda: RandomSharpen()(torch.rand(1, 3, 1, 8)), ValueError, "needs H and W > 1"),
        (lambda: RandomSharpen()(torch.rand(1, 3, 8, 8), generator=0), TypeError, "generator must be a torch.Generator"),
        (lambda: gaussian_blur_copies(torch.rand(2, 3, 8, 8), torch.ones(2, 4), 3), ValueError, r"sigma must be a \(N=2, k, 2\)"),
        (lambda: gaussian_blur_copies(torch.rand(2, 3, 8, 8), torch.ones(2, 4, 2), torch.ones(2, 3)), ValueError, r"kernel_size must be an int or a \(N=2, k=4\)"),
        (lambda: gaussian_blur_copies(torch.rand(2, 3, 8, 8), torch.ones(2, 4, 2), 4), ValueError, "odd"),
        (lambda: sharpen_copies(torch.rand(2, 3, 8, 8), torch.ones(3, 2)), ValueError, r"factor must be a \(N=2, k\)"),
    ],
)
def test_bad_call_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_cpu_generator_with_cuda_images(cls):
    x = torch.rand(2, 3, 16, 16)
    on_cpu = cls(k=3)(x, generator=_gen(4))
    on_gpu = cls(k=3)(x.cuda(), generator=_gen(4))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-5, atol=1e-5)
    cuda_gen = torch.Generator(device="cuda").manual_seed(4)
    assert cls(k=3)(x.cuda(), generator=cuda_gen).device.type == "cuda"


# ------------------------------------------------------------------------------------------------
# the authors' forms (released code): per-batch draws, rectangular kernels, 8-bit rounding, kept border
# ------------------------------------------------------------------------------------------------
def test_rectangular_copy_equals_a_naive_2d_convolution():
    x = torch.rand(1, 1, 11, 12, dtype=torch.float64)
    sy, sx, size_y, size_x = 0.9, 1.6, 3, 7  # a 3-tall, 7-wide kernel
    sizes = torch.tensor([[[size_y, size_x]]])
    out = gaussian_blur_copies(x, torch.tensor([[[sy, sx]]], dtype=torch.float64), sizes, max_kernel_size=7)
    gy = torch.exp(-((torch.arange(size_y) - 1.0) ** 2) / (2 * sy**2)).double()
    gx = torch.exp(-((torch.arange(size_x) - 3.0) ** 2) / (2 * sx**2)).double()
    kernel = torch.outer(gy, gx) / (gy.sum() * gx.sum())
    padded = F.pad(x, (3, 3, 1, 1), mode="reflect")
    expected = torch.empty_like(x)
    for yy in range(11):
        for xx in range(12):
            expected[0, 0, yy, xx] = (padded[0, 0, yy : yy + size_y, xx : xx + size_x] * kernel).sum()
    torch.testing.assert_close(out[0, 0], expected[0])


def test_rectangular_draws_both_sizes_independently():
    sigma, sizes = RandomGaussianBlur(k=64, rectangular=True).sample_parameters(4, generator=_gen(0))
    assert sizes.shape == (4, 64, 2) and bool((sizes[..., 0] != sizes[..., 1]).any())
    assert set(sizes.unique().tolist()) <= {3, 5, 7, 9, 11}


@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_per_batch_shares_each_copys_draw_across_the_batch(cls):
    x = torch.rand(1, 3, 16, 16).expand(3, 3, 16, 16).contiguous()  # three equal images
    per_batch = cls(k=4, per_batch=True)(x, generator=_gen(0))
    for i in (1, 2):
        torch.testing.assert_close(per_batch[i], per_batch[0])
    assert not torch.equal(per_batch[0, 0], per_batch[0, 1])  # copies still differ
    per_image = cls(k=4)(x, generator=_gen(0))
    assert not torch.equal(per_image[1], per_image[0])


@pytest.mark.parametrize("value_range", [1.0, 255.0])
@pytest.mark.parametrize("cls", [RandomGaussianBlur, RandomSharpen])
def test_quantize_rounds_to_8_bit_levels(cls, value_range):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * value_range
    plain = cls(k=3, value_range=value_range)(x, generator=_gen(3))
    rounded = cls(k=3, value_range=value_range, quantize=True)(x, generator=_gen(3))
    levels = rounded * 255 / value_range
    torch.testing.assert_close(levels, levels.round())
    torch.testing.assert_close(rounded, (plain * 255 / value_range).clamp(0, 255).round() * value_range / 255)


def test_sharpen_keep_border_equals_a_naive_kornia_style_loop():
    # kornia / torchvision / PIL: degenerate = 3x3 smoothing inside, the image itself on the border
    x = torch.rand(1, 1, 6, 7, dtype=torch.float64)
    f = 2.5
    out = sharpen_copies(x, torch.tensor([[f]], dtype=torch.float64), value_range=None, border="keep")[0, 0, 0]
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64) / 13
    expected = x[0, 0].clone()
    for yy in range(1, 5):
        for xx in range(1, 6):
            degenerate = (x[0, 0, yy - 1 : yy + 2, xx - 1 : xx + 2] * kernel).sum()
            expected[yy, xx] = degenerate + f * (x[0, 0, yy, xx] - degenerate)
    torch.testing.assert_close(out, expected)
    reflect = sharpen_copies(x, torch.tensor([[f]], dtype=torch.float64), value_range=None)[0, 0, 0]
    assert not torch.allclose(reflect[0], x[0, 0, 0])  # the default also sharpens the border


def test_authors_form_arguments_are_checked():
    with pytest.raises(TypeError, match="per_batch must be a bool"):
        RandomGaussianBlur(per_batch=1)
    with pytest.raises(ValueError, match="border must be one of 'reflect', 'keep'"):
        RandomSharpen(border="replicate")
    with pytest.raises(ValueError, match="quantize=True rounds to the 8-bit levels"):
        RandomSharpen(quantize=True, value_range=None)
