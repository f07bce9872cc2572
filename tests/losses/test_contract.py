"""The contract every loss of the registry keeps, on each device and dtype (``device`` / ``dtype``
fixtures, tests/conftest.py): a finite scalar on the input's device, a finite gradient that reaches
``sr``, the same value for ``channels_last`` inputs, and the same value again given the same seed.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses.losses.registry import LOSSES, build_loss

# small, fast settings of each loss (the defaults are exercised by each loss's own tests)
OPTIONS = {
    "pixel_contrastive": {"region": 4},
    "high_pass": {},
    "random_conv": {},
    "vgg_contrastive": {"weights": None},
    "pcl": {"disc_channels": (8, 8, 8, 8, 16, 16, 16, 16)},
}
NAMES = [name for name in LOSSES if name in OPTIONS]

# Gradient agreement between memory layouts, as a relative norm error. The VGG ratio loss is an L1 of
# deep features that are often both ~0 after a ReLU, so float32 rounding (which differs between the
# two layouts' convolution algorithms) flips the sign of many subgradients: measured 2.5e-2 for
# channels_last and 4.5e-4 for contiguous against float64, whereas both layouts agree to 1e-15 in
# float64, i.e. the layout itself changes nothing. Every other loss agrees to ~2e-7.
GRAD_AGREEMENT = {"vgg_contrastive": 5e-2}

# float16 / bfloat16 values against float32 (the losses compute in float32 internally where needed)
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 5e-2}


def test_every_library_loss_of_the_registry_is_covered():
    library = {name for name, entry in LOSSES.items() if entry.module.startswith("contrastive_sr_losses")}
    assert library == set(NAMES)


def _inputs(device: torch.device, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    sr = (hr + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    return [t.to(device=device, dtype=dtype) for t in (sr, hr, lr)]


def _loss(name: str, device: torch.device, sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor, seed: int = 0):
    torch.manual_seed(seed)
    criterion = build_loss(name, **OPTIONS[name]).to(device)
    if LOSSES[name].needs_lr:
        return criterion(sr, hr, lr=lr)
    return criterion(sr, hr)


@pytest.mark.parametrize("name", NAMES)
def test_a_finite_scalar_on_the_input_device_with_a_finite_gradient(name, device, dtype):
    sr, hr, lr = _inputs(device, dtype)
    sr.requires_grad_(True)
    loss = _loss(name, device, sr, hr, lr)
    assert loss.shape == () and loss.device.type == device.type
    assert torch.isfinite(loss)
    loss.backward()
    assert sr.grad is not None and sr.grad.dtype == dtype
    assert torch.isfinite(sr.grad).all() and sr.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_low_precision_agrees_with_float32(name, device, dtype):
    want = _loss(name, device, *_inputs(device, torch.float32))
    got = _loss(name, device, *_inputs(device, dtype))
    assert torch.allclose(got.float(), want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_gives_the_same_value_and_gradient(name, device):
    sr, hr, lr = _inputs(device, torch.float32)
    a = sr.clone().requires_grad_(True)
    b = sr.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    va = _loss(name, device, a, hr, lr)
    vb = _loss(name, device, b, hr.contiguous(memory_format=torch.channels_last),
               lr.contiguous(memory_format=torch.channels_last))
    va.backward()
    vb.backward()
    torch.testing.assert_close(vb, va, rtol=1e-5, atol=1e-6)
    assert (b.grad - a.grad).norm() <= GRAD_AGREEMENT.get(name, 1e-5) * a.grad.norm()


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_gives_the_same_value(name, device):
    first = _loss(name, device, *_inputs(device, torch.float32), seed=3)
    again = _loss(name, device, *_inputs(device, torch.float32), seed=3)
    assert torch.equal(first, again)
