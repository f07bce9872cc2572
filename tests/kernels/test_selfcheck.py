"""Tests of ``backend='auto'``'s first-use self-check of the Triton kernels, with simulated failures.

On the CPU ``'auto'`` never picks the (interpreted) kernels, so these tests make the eligibility
predicate ``kernels.triton_eligible`` answer True: ``'auto'`` then runs the self-check and the
kernels in Triton's interpreter on CPU tensors, exactly the code path a CUDA tensor takes. With CUDA
and compiled kernels the same tests run on the GPU (``python benchmarks/gpu_check.py``). Failures
are simulated by replacing the kernels' entry points (``_launch_forward``, the launch inside the
forward custom op, or the two functions the check calls) with ones that raise or return perturbed
values. Every expected value comes from the ``'reference'`` backend in float64.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses import kernels
from contrastive_sr_losses.kernels import selfcheck
from contrastive_sr_losses.losses.pixel_contrastive import pixel_contrastive_loss
from tests._pairs import make_pair, triton_kernels_and_device

tk, DEVICE = triton_kernels_and_device()

REGION = 4


@pytest.fixture(autouse=True)
def eligible(monkeypatch):
    """'auto' treats the CPU tensors as it would CUDA ones; no verdict leaks between tests."""
    monkeypatch.setattr(kernels, "triton_eligible", lambda sr: True)
    monkeypatch.delenv(selfcheck.SELFCHECK_ENV, raising=False)
    kernels.clear_triton_selfcheck()
    yield
    kernels.clear_triton_selfcheck()


def _pair(shape=(1, 3, 8, 8), dtype=torch.float64, seed=0):
    sr, hr = make_pair(shape, dtype, 5, seed, draw_dtype=torch.float64)
    return sr.to(DEVICE), hr.to(DEVICE)


def _run(backend, sr, hr, mode="grid"):
    """Loss map, sr grad and hr grad of ``sum(w * map)``."""
    sr = sr.detach().clone().requires_grad_()
    hr = hr.detach().clone().requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, REGION, mode=mode, temperature=0.5, reduction="none", backend=backend)
    weight = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype, device=loss.device).view_as(loss)
    (loss * weight).sum().backward()
    return loss.detach(), sr.grad, hr.grad


def _assert_reference(got, sr, hr, mode="grid"):
    for name, a, b in zip(("loss", "grad sr", "grad hr"), got, _run("reference", sr, hr, mode)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=lambda m, name=name: f"{name}: {m}")


def _selfcheck_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, kernels.TritonSelfCheckWarning)]


class _Calls:
    """Wraps a function of a module and counts its calls; ``change`` may alter the result."""

    def __init__(self, monkeypatch, module, name, change=None):
        self.count, self.original, self.change = 0, getattr(module, name), change
        monkeypatch.setattr(module, name, self)

    def __call__(self, *args, **kwargs):
        self.count += 1
        out = self.original(*args, **kwargs)
        return out if self.change is None else self.change(*args, out=out)


# ------------------------------------------------------------------------------------------------
# a passing check: once per configuration, then the kernels
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["grid", "sliding"])
def test_passing_check_runs_once_then_auto_uses_the_kernels(monkeypatch, mode):
    checks = _Calls(monkeypatch, selfcheck, "run_triton_selfcheck")
    forwards = _Calls(monkeypatch, tk, "pixel_contrastive_triton_forward")
    sr, hr = _pair(seed=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            _assert_reference(_run("auto", sr, hr, mode), sr, hr, mode)
    assert checks.count == 1  # cached: no second check, no second device sync
    assert forwards.count == 1 + 3  # the check's launch, then one per call
    assert not _selfcheck_warnings(record)
    (key, verdict), = kernels.triton_selfcheck_verdicts().items()
    assert key == kernels.SelfCheckKey(str(sr.device), "float64/float64", mode, REGION, 3, "contiguous/contiguous")
    assert verdict.uses_triton and "matches the torch backend on 1x8x8 pixels" in verdict.detail


def test_check_uses_a_piece_of_the_input_and_runs_under_inference_mode(monkeypatch):
    shapes = []
    _Calls(monkeypatch, tk, "pixel_contrastive_triton_forward", lambda sr, *a, out: shapes.append(sr.shape) or out)
    sr, hr = _pair((3, 3, 13, 11), seed=2)
    with torch.inference_mode():  # no autograd in the check: it calls the ops directly
        loss = pixel_contrastive_loss(sr, hr, REGION, temperature=0.5, reduction="none")
    assert shapes == [(2, 3, 8, 8), (3, 3, 13, 11)]  # 2 images of 2 x 2 blocks, then the real input
    assert kernels.triton_selfcheck_verdicts()[selfcheck.selfcheck_key(sr, hr, REGION, "grid")].uses_triton
    torch.testing.assert_close(loss, _run("reference", sr, hr)[0])


@pytest.mark.skipif(DEVICE.type == "cuda", reason="CUDA tensors are eligible")
def test_cpu_tensors_never_reach_the_check_without_the_patch(monkeypatch):
    monkeypatch.undo()  # the real predicate: CPU tensors are not eligible
    kernels.clear_triton_selfcheck()
    sr, hr = _pair()
    _assert_reference(_run("auto", sr, hr), sr, hr)
    assert kernels.triton_selfcheck_verdicts() == {}


# ------------------------------------------------------------------------------------------------
# simulated failures: fallback to 'torch', one warning, the verdict cached
# ------------------------------------------------------------------------------------------------
def _raise(*args, **kwargs):
    raise RuntimeError("simulated launch failure: out of resources: shared memory\nsecond line")


def test_failing_launch_falls_back_to_torch_with_one_warning(monkeypatch):
    monkeypatch.setattr(tk, "_launch_forward", _raise)
    sr, hr = _pair(seed=3)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            _assert_reference(_run("auto", sr, hr), sr, hr)
    (message,) = _selfcheck_warnings(record)
    assert f"failed their first-use self-check for {sr.device} (float64/float64, grid, region 4, 3 channels" in message
    assert "the kernels raised RuntimeError: simulated launch failure: out of resources: shared memory." in message
    assert "second line" not in message  # one line
    assert "uses the 'torch' backend for this configuration" in message
    assert selfcheck.REPORT_URL in message and "python -m contrastive_sr_losses.check" in message
    assert "CSR_TRITON_SELFCHECK=0" in message and "backend='triton' raises" in message
    (verdict,) = kernels.triton_selfcheck_verdicts().values()
    assert not verdict.uses_triton


def _perturb_loss(*args, out):
    loss, lse = out
    loss = loss.clone()
    loss.view(-1)[5] += 1e-3
    return loss, lse


def _flip(index):
    def change(*args, out):
        grads = list(out)
        grads[index] = -grads[index]
        return tuple(grads)

    return change


@pytest.mark.parametrize(
    "entry,change,what",
    [
        ("pixel_contrastive_triton_forward", _perturb_loss, "loss differs from the torch backend by up to 0.001"),
        ("pixel_contrastive_triton_backward", _flip(0), "grad sr differs from the torch backend"),
        ("pixel_contrastive_triton_backward", _flip(1), "grad hr differs from the torch backend"),
    ],
)
def test_wrong_result_falls_back_to_the_reference_values(monkeypatch, entry, change, what):
    wrong = _Calls(monkeypatch, tk, entry, change)
    sr, hr = _pair(seed=4)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = [_run("auto", sr, hr) for _ in range(2)]
    (message,) = _selfcheck_warnings(record)
    assert what in message
    assert wrong.count == 1  # only the check ran the (wrong) kernels
    for result in got:
        _assert_reference(result, sr, hr)


def test_verdicts_are_per_configuration(monkeypatch):
    original = tk._launch_forward

    def fails_in_float32(sr, *args, **kwargs):  # a dtype the kernels get wrong
        if sr.dtype == torch.float32:
            _raise()
        return original(sr, *args, **kwargs)

    monkeypatch.setattr(tk, "_launch_forward", fails_in_float32)
    sr, hr = _pair(seed=5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _run("auto", sr, hr)
        _run("auto", sr.float(), hr.float())
        _run("auto", sr.float(), hr.float())
        _run("auto", sr, hr, mode="sliding")
        _run("auto", sr.contiguous(memory_format=torch.channels_last), hr)
    assert len(_selfcheck_warnings(record)) == 1
    verdicts = {(k.dtypes, k.mode, k.layouts): v.uses_triton for k, v in kernels.triton_selfcheck_verdicts().items()}
    assert verdicts == {
        ("float64/float64", "grid", "contiguous/contiguous"): True,
        ("float32/float32", "grid", "contiguous/contiguous"): False,
        ("float64/float64", "sliding", "contiguous/contiguous"): True,
        ("float64/float64", "grid", "channels_last/contiguous"): True,
    }
    kernels.clear_triton_selfcheck()
    assert kernels.triton_selfcheck_verdicts() == {}


def test_launch_failing_after_a_passed_check_switches_to_torch(monkeypatch):
    original = tk._launch_forward

    def fails_on_large_inputs(sr, *args, **kwargs):  # the check's 8x8 piece passes, the 8x12 input fails
        if sr.shape[-1] > 2 * REGION:
            _raise()
        return original(sr, *args, **kwargs)

    monkeypatch.setattr(tk, "_launch_forward", fails_on_large_inputs)
    sr, hr = _pair((1, 3, 8, 12), seed=6)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):
            _assert_reference(_run("auto", sr, hr), sr, hr)
    (message,) = _selfcheck_warnings(record)
    assert "a launch after the check raised RuntimeError: simulated launch failure" in message
    (verdict,) = kernels.triton_selfcheck_verdicts().values()
    assert not verdict.uses_triton


def test_non_finite_piece_gives_no_verdict_until_a_finite_one(monkeypatch):
    checks = _Calls(monkeypatch, selfcheck, "run_triton_selfcheck")
    sr, hr = _pair(seed=7)
    bad = sr.clone()
    bad[0, 0, 0, 0] = float("nan")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loss = pixel_contrastive_loss(bad, hr, REGION, reduction="none")
        assert kernels.triton_selfcheck_verdicts() == {}  # nothing learnt about the kernels from NaN
        assert torch.isnan(loss).any()  # the torch backend's answer, NaN where the input is
        _run("auto", sr, hr)
    assert not _selfcheck_warnings(record)
    assert checks.count == 2
    assert all(v.uses_triton for v in kernels.triton_selfcheck_verdicts().values())


# ------------------------------------------------------------------------------------------------
# strict paths: backend='triton', and the check turned off
# ------------------------------------------------------------------------------------------------
def test_backend_triton_stays_strict(monkeypatch):
    monkeypatch.setattr(tk, "_launch_forward", _raise)
    sr, hr = _pair()
    with pytest.raises(RuntimeError, match="simulated launch failure"):
        pixel_contrastive_loss(sr, hr, REGION, backend="triton")
    assert kernels.triton_selfcheck_verdicts() == {}


def test_environment_variable_turns_the_check_off(monkeypatch):
    def no_check(*args):
        raise AssertionError("the self-check ran although it is turned off")

    monkeypatch.setattr(selfcheck, "run_triton_selfcheck", no_check)
    forwards = _Calls(monkeypatch, tk, "pixel_contrastive_triton_forward")
    sr, hr = _pair(seed=8)
    monkeypatch.setenv("CSR_TRITON_SELFCHECK", "0")
    _assert_reference(_run("auto", sr, hr), sr, hr)
    assert forwards.count == 1 and kernels.triton_selfcheck_verdicts() == {}
    monkeypatch.setattr(tk, "_launch_forward", _raise)
    with pytest.raises(RuntimeError, match="simulated launch failure"):  # errors raise, as with 'triton'
        pixel_contrastive_loss(sr, hr, REGION)
    monkeypatch.setenv("CSR_TRITON_SELFCHECK", "maybe")
    with pytest.raises(ValueError, match=r"CSR_TRITON_SELFCHECK must be 1 .* or 0 .*, got 'maybe'"):
        pixel_contrastive_loss(sr, hr, REGION)


# ------------------------------------------------------------------------------------------------
# torch.compile: the choice is made inside one opaque op, at run time
# ------------------------------------------------------------------------------------------------
def test_check_runs_at_run_time_under_torch_compile_fullgraph(monkeypatch):
    torch._dynamo.reset()
    monkeypatch.setattr(tk, "_launch_forward", _raise)  # the check fails: the compiled step must fall back

    def step(a, b):
        return F.l1_loss(a, b) + 0.1 * pixel_contrastive_loss(a, b, REGION)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")  # fails on any graph break
    sr, hr = _pair(dtype=torch.float32, seed=9)
    a = sr.clone().requires_grad_()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        compiled(a, hr).backward()
    assert len(_selfcheck_warnings(record)) == 1
    (verdict,) = kernels.triton_selfcheck_verdicts().values()
    assert not verdict.uses_triton
    b = sr.clone().requires_grad_()
    step(b, hr).backward()
    torch.testing.assert_close(a.grad, b.grad)
