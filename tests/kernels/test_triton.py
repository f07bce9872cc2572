"""Tests of the fused Triton kernels of the pixel contrastive loss (grid and sliding mode).

Without CUDA, ``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` before the package is imported, so
the kernels run in Triton's interpreter on CPU tensors (slow: the shapes here are small); with CUDA
the same tests run the compiled kernels on the GPU. Every result is compared with the plain
reference implementations (autograd through the equation) on the CPU in float64. The whole file
is skipped when triton cannot be imported.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses import kernels
from contrastive_sr_losses.losses.pixel_contrastive import PixelContrastiveLoss, pixel_contrastive_loss
from tests._pairs import make_pair, triton_kernels_and_device

tk, DEVICE = triton_kernels_and_device()

MODES = ["grid", "sliding"]


def _pair(shape, dtype=torch.float64, levels: int | None = None, seed: int = 0):
    """Drawn in float64 whatever ``dtype``: every dtype case sees the same values."""
    return make_pair(shape, dtype, levels, seed, draw_dtype=torch.float64)


def _run(fn, sr, hr, grad_sr=True, grad_hr=True):
    """Value, sr grad and hr grad of ``sum(weight * fn(sr, hr))``, on the CPU."""
    sr = sr.detach().clone().requires_grad_(grad_sr)
    hr = hr.detach().clone().requires_grad_(grad_hr)
    loss = fn(sr, hr)
    weight = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype, device=loss.device).view_as(loss)
    (loss * weight).sum().backward()
    grads = [t.grad.cpu() if t.grad is not None else None for t in (sr, hr)]
    return [loss.detach().cpu(), *grads]


def _loss(backend, **kwargs):
    return lambda a, b: pixel_contrastive_loss(a, b, backend=backend, **kwargs)


def _triton_vs_reference(sr, hr, rtol=1e-9, atol=1e-11, grad_sr=True, grad_hr=True, **kwargs):
    got = _run(_loss("triton", **kwargs), sr.to(DEVICE), hr.to(DEVICE), grad_sr, grad_hr)
    expected = _run(_loss("reference", **kwargs), sr, hr, grad_sr, grad_hr)
    for name, a, b in zip(("value", "grad sr", "grad hr"), got, expected):
        if b is None:
            assert a is None, name
            continue
        assert a.dtype == b.dtype, name
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")
    return got


# ------------------------------------------------------------------------------------------------
# float64 against the references: values, sr and hr gradients
# ------------------------------------------------------------------------------------------------
CASES = [
    # shape, region, levels (None: all distinct; k: k grey levels, many positives)
    ((1, 3, 9, 11), 4, None),  # partial blocks / clipped windows on both sides
    ((2, 1, 8, 8), 8, 3),  # C = 1, one block per image
    ((1, 5, 7, 6), 3, 3),  # C = 5: two channel groups; odd region
    ((1, 3, 5, 7), 1, None),  # region 1: loss 0
    ((1, 2, 5, 7), 2, 2),  # even region, many duplicates
    ((1, 1, 16, 17), 16, 4),  # S = 256: several anchor and partner tiles
    ((2, 4, 10, 9), 5, None),  # several packed blocks per program in grid mode
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,region,levels", CASES)
def test_matches_reference(mode, shape, region, levels):
    sr, hr = _pair(shape, levels=levels, seed=region)
    _triton_vs_reference(sr, hr, region=region, mode=mode, temperature=0.7, reduction="none")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "region,block_sizes",
    [
        (5, (8, 16, 2)),  # grid: one block in 4 anchor tiles, 2 partner steps; 2 channel groups (2 + 1)
        (4, (32, 8, 1)),  # grid: 2 packed blocks per program, partners in 2 steps; 1 channel per group
    ],
)
def test_tiling_does_not_change_the_result(mode, region, block_sizes):
    sr, hr = _pair((1, 3, 5, 9), levels=3, seed=11)

    def fn(a, b):
        return tk.pixel_contrastive_map_triton(a, b, region, 0.5, mode, block_sizes=block_sizes)

    got = _run(fn, sr.to(DEVICE), hr.to(DEVICE))
    expected = _run(_loss("reference", region=region, mode=mode, temperature=0.5, reduction="none"), sr, hr)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode):
    sr, hr = _pair((1, 2, 3, 4), seed=3)
    sr, hr = sr.to(DEVICE).requires_grad_(), hr.to(DEVICE).requires_grad_()

    def fn(a, b):
        return pixel_contrastive_loss(a, b, 2, mode=mode, temperature=0.5, reduction="none", backend="triton")

    assert torch.autograd.gradcheck(fn, (sr, hr), eps=1e-6, atol=1e-6, fast_mode=True)


# ------------------------------------------------------------------------------------------------
# reductions, hr-only gradients, sharp softmax
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reductions(mode, reduction):
    # 'mean' sends an expanded (stride 0) gradient into the backward kernels
    sr, hr = _pair((2, 3, 8, 6), levels=4, seed=5)
    _triton_vs_reference(sr, hr, region=4, mode=mode, reduction=reduction, grad_hr=False)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_for_hr_only(mode):
    sr, hr = _pair((1, 3, 6, 7), levels=3, seed=6)
    _triton_vs_reference(sr, hr, region=3, mode=mode, reduction="none", grad_sr=False)


@pytest.mark.parametrize("mode", MODES)
def test_sharp_softmax_on_0_255_range_float32(mode):
    # T = 1 on [0, 255]: distances up to 765, exp underflows without the running max
    sr, hr = _pair((1, 3, 8, 8), levels=256, seed=7)
    sr, hr = (sr * 255).float(), (hr * 255).float()
    got = _run(_loss("triton", region=8, mode=mode), sr.to(DEVICE), hr.to(DEVICE), grad_hr=False)
    expected = _run(_loss("reference", region=8, mode=mode), sr.double(), hr.double(), grad_hr=False)
    assert torch.isfinite(got[0]) and torch.isfinite(got[1]).all()
    torch.testing.assert_close(got[0].double(), expected[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[1].double(), expected[1], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# dtypes and memory layouts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs_accumulate_in_float32(mode, dtype):
    sr, hr = _pair((2, 3, 8, 8), dtype=dtype, levels=16, seed=8)
    got = _run(_loss("triton", region=4, mode=mode), sr.to(DEVICE), hr.to(DEVICE), grad_hr=False)
    # the same (rounded) values in float32 through the reference
    expected = _run(_loss("reference", region=4, mode=mode), sr.float(), hr.float(), grad_hr=False)
    assert got[0].dtype == torch.float32 and got[1].dtype == dtype
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], expected[1].to(dtype))


@pytest.mark.parametrize("mode", MODES)
def test_mixed_dtypes_as_under_autocast(mode):
    sr, hr = _pair((1, 3, 8, 8), dtype=torch.float32, seed=9)
    sr = sr.bfloat16()
    got = _run(_loss("triton", region=4, mode=mode), sr.to(DEVICE), hr.to(DEVICE), grad_hr=False)
    expected = _run(_loss("reference", region=4, mode=mode), sr.float(), hr, grad_hr=False)
    assert got[1].dtype == torch.bfloat16
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], expected[1].bfloat16())


@pytest.mark.parametrize("mode", MODES)
def test_channels_last_views_and_mixed_layouts(mode):
    sr, hr = _pair((2, 3, 10, 11), levels=5, seed=10)
    kwargs = dict(region=4, mode=mode, reduction="none")
    expected = _run(_loss("reference", **kwargs), sr[..., 1:9, 2:10], hr[..., 1:9, 2:10])
    sr_d, hr_d = sr.to(DEVICE), hr.to(DEVICE)
    layouts = {
        "channels_last": (
            sr_d[..., 1:9, 2:10].contiguous(memory_format=torch.channels_last),
            hr_d[..., 1:9, 2:10].contiguous(memory_format=torch.channels_last),
        ),
        "views": (sr_d[..., 1:9, 2:10], hr_d[..., 1:9, 2:10]),
        "mixed": (sr_d[..., 1:9, 2:10].contiguous(memory_format=torch.channels_last), hr_d[..., 1:9, 2:10]),
    }
    for name, (a, b) in layouts.items():
        for x, y in zip(_run(_loss("triton", **kwargs), a, b), expected):
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11, msg=lambda m, name=name: f"{name}: {m}")


def test_gradient_keeps_the_input_layout():
    sr, hr = _pair((1, 3, 8, 8), dtype=torch.float32)
    sr = sr.to(DEVICE).contiguous(memory_format=torch.channels_last).requires_grad_()
    pixel_contrastive_loss(sr, hr.to(DEVICE), 4, backend="triton").backward()
    assert sr.grad.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------------------
# compile, determinism, errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_torch_compile_fullgraph(mode):
    torch._dynamo.reset()
    criterion = PixelContrastiveLoss(region=4, mode=mode, backend="triton")

    def step(a, b):
        return F.l1_loss(a, b) + 0.1 * criterion(a, b)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")  # fails on any graph break
    sr, hr = _pair((1, 3, 8, 8), dtype=torch.float32, seed=12)
    sr, hr = sr.to(DEVICE), hr.to(DEVICE)
    for a, b in zip(_run(compiled, sr, hr, grad_hr=False), _run(step, sr, hr, grad_hr=False)):
        if b is not None:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", MODES)
def test_deterministic(mode):
    sr, hr = _pair((1, 3, 8, 8), dtype=torch.float32, levels=6, seed=13)
    first = _run(_loss("triton", region=4, mode=mode), sr.to(DEVICE), hr.to(DEVICE))
    second = _run(_loss("triton", region=4, mode=mode), sr.to(DEVICE), hr.to(DEVICE))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_cpu_tensors_without_the_interpreter_are_refused(monkeypatch):
    monkeypatch.setattr(tk, "INTERPRETED", False)
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"backend='triton' needs CUDA tensors, got tensors on cpu.*TRITON_INTERPRET=1"):
        pixel_contrastive_loss(sr, hr, 4, backend="triton")


def test_default_block_sizes():
    assert tk.triton_block_sizes(8, 3) == (64, 64, 4)
    assert tk.triton_block_sizes(4, 3) == (64, 16, 4)  # grid: four 4x4 blocks per program
    assert tk.triton_block_sizes(16, 1) == (64, 64, 1)  # 256 partners in 4 steps
    assert tk.triton_block_sizes(3, 5) == (64, 16, 4)  # 9 partners padded to 16; channels in 2 groups


# ------------------------------------------------------------------------------------------------
# GPU only: benchmark-like sizes against the torch path, and 'auto' picking the kernels
# ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or tk.INTERPRETED, reason="needs CUDA and compiled kernels")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("region", [4, 8, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_torch_path(mode, region, dtype):
    sr, hr = _pair((4, 3, 64, 72), dtype=dtype, levels=64, seed=region)
    sr, hr = sr.cuda(), hr.cuda()
    kwargs = dict(region=region, mode=mode, reduction="mean")
    got = _run(_loss("triton", **kwargs), sr, hr)
    expected = _run(_loss("torch", **kwargs), sr, hr)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or tk.INTERPRETED, reason="needs CUDA and compiled kernels")
def test_auto_uses_the_kernels_on_cuda(monkeypatch):
    kernels.clear_triton_selfcheck()
    monkeypatch.delenv(kernels.SELFCHECK_ENV, raising=False)
    calls = []
    original = tk.pixel_contrastive_triton_forward
    monkeypatch.setattr(tk, "pixel_contrastive_triton_forward", lambda *a: calls.append(1) or original(*a))
    sr, hr = _pair((1, 3, 16, 16), dtype=torch.float32)
    pixel_contrastive_loss(sr.cuda(), hr.cuda(), 8)
    (verdict,) = kernels.triton_selfcheck_verdicts().values()
    assert verdict.uses_triton, verdict.detail  # the self-check passed on this GPU
    assert len(calls) == 2  # the check's launch, then the call's


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or tk.INTERPRETED, reason="needs CUDA and compiled kernels")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_auto_syncs_only_on_the_first_call(monkeypatch, mode, dtype):
    kernels.clear_triton_selfcheck()
    monkeypatch.delenv(kernels.SELFCHECK_ENV, raising=False)
    sr, hr = _pair((2, 3, 32, 32), dtype=dtype, levels=64)
    sr, hr = sr.cuda().requires_grad_(), hr.cuda()
    pixel_contrastive_loss(sr, hr, 8, mode=mode).backward()  # the self-check: synchronises
    (verdict,) = kernels.triton_selfcheck_verdicts().values()
    assert verdict.uses_triton, verdict.detail
    torch.cuda.set_sync_debug_mode("error")
    try:
        pixel_contrastive_loss(sr, hr, 8, mode=mode).backward()  # the verdict is cached: no sync
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ------------------------------------------------------------------------------------------------
# compiled code generation, without a GPU: the interpreter does not run Triton's compiler
# ------------------------------------------------------------------------------------------------
_COMPILE_SCRIPT = r"""
import sys, torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from contrastive_sr_losses.kernels import pixel_contrastive_triton as tk

assert not tk.INTERPRETED
x = torch.empty(16, 3, 192, 192, device="meta")
cases = [  # (kernel, region, mode, input dtype, extra constants): every layout branch at least once
    (tk._forward_kernel, 4, "grid", "fp32", dict(WRITE_LOSS=True, WRITE_COUNT=False)),  # packed blocks
    (tk._forward_kernel, 8, "sliding", "bf16", dict(WRITE_LOSS=False, WRITE_COUNT=True)),
    (tk._grad_sr_kernel, 8, "grid", "bf16", dict(GROUP_C=3)),  # one block per program
    (tk._grad_hr_kernel, 16, "sliding", "fp32", dict(GROUP_C=3)),  # several partner steps
]
for kernel, region, mode, dtype, extra in cases:
    own, partner, channels = tk.triton_block_sizes(region, 3)
    meta = dict(tk._layout(x, x, region, mode == "sliding", own, partner).meta, BLOCK_C=channels, **extra)
    options = {"num_warps": meta.pop("num_warps"), "enable_fp_fusion": meta.pop("enable_fp_fusion")}
    names = [p.name for p in kernel.params]
    constants = {k: v for k, v in meta.items() if k in names}
    pointers = {"sr_ptr": dtype, "hr_ptr": dtype, "gsr_ptr": dtype, "ghr_ptr": dtype, "count_ptr": "i32"}
    signature = {
        n: "constexpr" if n in constants else ("*" + pointers.get(n, "fp32")) if n.endswith("_ptr")
        else "fp32" if n.startswith("inv_t") else "i32"
        for n in names
    }
    src = ASTSource(kernel, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    assert compiled.asm["cubin"], kernel
    print(kernel.__name__, region, mode, "ok")
"""


@pytest.mark.skipif(not tk.INTERPRETED, reason="with CUDA the other tests run the compiled kernels")
def test_kernels_compile_for_sm90_without_a_gpu(tmp_path):
    # Triton's front end, LLVM and the bundled ptxas, in a process where the kernels are not interpreted
    import os
    import subprocess
    import sys

    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == 4
    assert "FP_FUSION" not in result.stderr  # the launch options say it, so Triton has nothing to warn about
