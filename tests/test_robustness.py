"""Robustness (issue 13): no poisoned state, no lost checkpoint, no silent wrong data.

One section per numbered item of the issue, then a property test over every public loss.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("PIL")
pytest.importorskip("tqdm")
from PIL import Image  # noqa: E402

import srkit.evaluate as evaluate  # noqa: E402
import srkit.train as train  # noqa: E402
from _examples import EXAMPLES  # noqa: E402

from srkit.data import read_rgb  # noqa: E402
from srkit.losses import CompositeLoss  # noqa: E402
from srkit.runtime import UsageError, run_cli  # noqa: E402

from contrastive_sr_losses.embeddings import RandomConvFeatures, VGG19Features, WaveletDiscriminator  # noqa: E402
from contrastive_sr_losses.losses import (  # noqa: E402
    FrequencyContrastiveLoss,
    GaussianHighPassLoss,
    PCLTrainer,
    PixelContrastiveLoss,
    RandomConvContrastiveLoss,
    RatioContrastiveLoss,
    contrastive_discriminator_loss,
    frequency_contrastive_loss,
    gaussian_high_pass_loss,
    pixel_contrastive_loss,
    pixel_contrastive_reference_map,
    pixel_contrastive_sliding_reference_map,
    random_conv_contrastive_loss,
    ratio_contrastive_loss,
)
from contrastive_sr_losses.functional import imresize, quantize  # noqa: E402
from contrastive_sr_losses.metrics import ssim_y  # noqa: E402


def _tiny_disc(seed: int = 0) -> WaveletDiscriminator:
    torch.manual_seed(seed)
    return WaveletDiscriminator(channels=(4, 4, 8, 8), strides=(1, 2, 1, 2))


def _tiny_pcl(seed: int = 0) -> FrequencyContrastiveLoss:
    return FrequencyContrastiveLoss(_tiny_disc(seed), layers=(0, 2), num_positives=2, num_negatives=2)


def _image(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.3 * np.sin(2 * np.pi * (3 + seed) * x + 5 * y) * np.cos(2 * np.pi * 2 * y)
    img = np.stack([base, base[::-1], 1 - base], -1) + 0.05 * rng.standard_normal((h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("robust")
    for name in ("train", "test", "small", "tiny_only", "flat"):
        (root / name).mkdir()
    for i in range(3):
        Image.fromarray(_image(i, 40, 44)).save(root / "train" / f"im{i}.png")
    Image.fromarray(_image(7, 30, 34)).save(root / "test" / "ok.png")
    Image.fromarray(_image(7, 30, 34)).save(root / "small" / "ok.png")
    Image.fromarray(_image(8, 12, 12)).save(root / "small" / "tiny.png")  # < 11 + 2 * 2 at x2
    Image.fromarray(_image(8, 12, 12)).save(root / "tiny_only" / "tiny.png")
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(root / "flat" / "gray.png")  # bicubic == HR
    return {k: root / k for k in ("train", "test", "small", "tiny_only", "flat")} | {"root": root}


def _args(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "--arch", "edsr_baseline", "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2",
        "--train", str(data["train"]), "--patch", "8", "--batch", "2", "--workers", "0", "--lr", "1e-3",
        "--val-every", "0", "--checkpoint-every", "3", "--log-every", "2", "--no-progress", "--threads", "1",
        "--out", str(out), *extra,
    ]


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


def _error(main, argv: list[str], capsys) -> str:
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------- 1. non-finite loss


def test_1_diverging_loss_never_writes_a_nonfinite_checkpoint_and_says_what_is_on_disk(data, tmp_path, capsys):
    out = tmp_path / "run"
    err = _error(train.main, _args(data, out, "--iters", "4", "--lr", "1e30", "--checkpoint-every", "2", "--log-every", "10"), capsys)
    if (out / "last.pt").exists():  # whatever is on disk is finite, and the message names its iteration
        ckpt = _ckpt(out / "last.pt")
        assert _all_finite(ckpt["model"]), "a checkpoint with non-finite weights was written"
        assert f"holds iteration {ckpt['iteration']}" in err
    else:
        assert "no checkpoint was written" in err
    assert "NaN/Inf at iteration 2" in err and "--skip-nonfinite" in err


def _nan_on_calls(monkeypatch, calls: set[int]) -> None:
    """Make CompositeLoss return NaN on the given (1-based) training calls."""
    real = CompositeLoss.forward
    seen = [0]

    def forward(self, sr, hr, lr, terms=None):
        total, parts = real(self, sr, hr, lr, terms)
        if self.training:
            seen[0] += 1
            if seen[0] in calls:
                total = total * float("nan")
        return total, parts

    monkeypatch.setattr(CompositeLoss, "forward", forward)


def test_1_skip_nonfinite_skips_the_step_and_stops_after_n_in_a_row(data, tmp_path, monkeypatch, capsys):
    _nan_on_calls(monkeypatch, {2})
    out = tmp_path / "skip"
    result = train.main(_args(data, out, "--iters", "4", "--skip-nonfinite", "1"))
    assert result["iteration"] == 4
    log = (out / "train.log").read_text()
    assert "[2/4] loss nan: NaN/Inf loss or gradient, step skipped (1 in a row" in log
    assert "1 non-finite step(s) skipped" in log
    ckpt = _ckpt(out / "last.pt")
    assert _all_finite(ckpt["model"]) and ckpt["optimizer"]["state"][0]["step"].item() == 3  # one update skipped
    history = json.loads((out / "history.json").read_text())
    assert all(math.isfinite(t["total"]) for t in history["train"])

    _nan_on_calls(monkeypatch, {4, 5})  # two in a row: more than --skip-nonfinite 1
    err = _error(train.main, _args(data, tmp_path / "stop", "--iters", "6", "--skip-nonfinite", "1"), capsys)
    assert "NaN/Inf at iteration 5 (2 step(s) in a row, --skip-nonfinite 1)" in err
    assert f"{tmp_path / 'stop' / 'last.pt'} holds iteration 3" in err
    assert _ckpt(tmp_path / "stop" / "last.pt")["iteration"] == 3


# ---------------------------------------------------------------------------- 2. too-small test image


def test_2_small_test_images_are_left_out_up_front_and_never_cost_the_weights(data, tmp_path, capsys):
    out = tmp_path / "run"
    result = train.main(_args(data, out, "--iters", "2", "--test", str(data["small"])))
    assert _ckpt(out / "last.pt")["iteration"] == 2
    assert "small/tiny.png (12x12)" in (out / "train.log").read_text()
    assert "validation" in result and 10 < result["validation"]["sets"]["small"]["psnr"] < 80
    # a set with only too-small images is refused before training
    err = _error(train.main, _args(data, tmp_path / "none", "--iters", "2", "--test", str(data["tiny_only"])), capsys)
    assert "every image is smaller than 15x15" in err and not (tmp_path / "none" / "last.pt").exists()
    # evaluate.py: the same image is left out with a line, no traceback
    table = evaluate.main(["--checkpoint", str(out / "last.pt"), "--test", str(data["small"]), "--lpips", "none", "--no-progress"])
    assert [r["image"] for r in table["results"]["bicubic"]["small"]["images"]] == ["small/ok.png"]
    assert "left out: small/tiny.png" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ssim_y needs at least 11x11 pixels"):
        ssim_y(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12), crop_border=2)


def test_2_a_failing_validation_writes_the_checkpoint_first(data, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("validation broke")

    monkeypatch.setattr(train, "evaluate", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="validation broke"):
        train.main(_args(data, out, "--iters", "2", "--checkpoint-every", "100", "--test", str(data["test"])))
    assert _ckpt(out / "last.pt")["iteration"] == 2


# ------------------------------------------------------------------------------ 3. PCL discriminator


def test_3_a_nan_batch_skips_the_discriminator_step_and_leaves_it_untouched():
    pcl = PCLTrainer(_tiny_pcl(), lr=1e-3)
    hr = torch.rand(2, 3, 16, 16)
    pcl(torch.rand(2, 3, 16, 16), hr)  # a first good step, so the optimizer has state
    before_disc = {k: v.clone() for k, v in pcl.discriminator.state_dict().items()}
    before_opt = {k: v.clone() for k, v in pcl.optimizer.state_dict()["state"][0].items()}
    bad = torch.rand(2, 3, 16, 16)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.warns(RuntimeWarning, match="step skipped"):
        out = pcl(bad, hr)
    assert torch.isnan(out)
    assert pcl.steps == 1 and pcl.skipped_steps == 1
    for k, v in pcl.discriminator.state_dict().items():
        assert torch.equal(v, before_disc[k]), k  # weights and BatchNorm statistics
    for k, v in pcl.optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, before_opt[k]), k
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(pcl(torch.rand(2, 3, 16, 16), hr))  # and training goes on
    assert pcl.steps == 2 and pcl.state_dict()["skipped_steps"] == 1


# ------------------------------------------------------------------------------ 4. 16-bit images


def _write_png16_rgb(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): signature, IHDR, IDAT, IEND."""
    h, w, _ = rgb.shape

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_4_every_png_mode_is_read_at_its_scale(tmp_path):
    g16 = (np.arange(8 * 16).reshape(8, 16) * 500).astype(np.uint16)  # 0 .. 63500
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got = read_rgb(tmp_path / "g16.png")
    assert torch.equal(got[0], torch.from_numpy(np.rint(g16.astype(np.int64) * 255 / 65535).astype(np.uint8)))
    assert torch.equal(got[0], got[2])

    rgb16 = np.stack([g16, g16 // 2, 65535 - g16], -1).astype(np.uint16)
    _write_png16_rgb(tmp_path / "rgb16.png", rgb16)
    got = read_rgb(tmp_path / "rgb16.png").permute(1, 2, 0).numpy().astype(int)
    assert np.abs(got - np.rint(rgb16.astype(np.int64) / 257)).max() <= 1  # Pillow keeps the high byte

    rgb8 = _image(0, 8, 16)
    for mode in ("L", "LA", "P", "RGB", "RGBA", "1"):
        Image.fromarray(rgb8).convert(mode).save(tmp_path / f"{mode}.png")
        expected = np.asarray(Image.fromarray(rgb8).convert(mode).convert("RGB"))
        assert np.array_equal(read_rgb(tmp_path / f"{mode}.png").permute(1, 2, 0).numpy(), expected), mode

    Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(UsageError, match=r"f.tif: 32-bit float \(mode F\) has no known white level"):
        read_rgb(tmp_path / "f.tif")


# -------------------------------------------------------------------- 5. kill during a checkpoint write

_KILL_AT_SAVE = """
import os, runpy, signal, sys, torch
real, calls = torch.save, [0]
def save(obj, f, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_SAVE"]):
        f.write(b"half a checkpoint"); f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f, *args, **kwargs)
torch.save = save
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_5_kill_during_a_checkpoint_write_then_resume_gives_the_uninterrupted_history(data, tmp_path):
    args = ["--iters", "8", "--checkpoint-every", "3", "--log-every", "2"]
    killed = tmp_path / "a" / "run"
    env = {**os.environ, "KILL_AT_SAVE": "2", "OMP_NUM_THREADS": "1"}  # the write of iteration 6
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_SAVE, str(EXAMPLES / "train.py"), *_args(data, killed, *args)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert _ckpt(killed / "last.pt")["iteration"] == 3 and list(killed.glob(".last.pt.tmp*"))
    train.main(_args(data, killed, *args, "--resume"))
    assert not list(killed.glob(".*tmp*")), "a temporary of the killed run is left"
    log = (killed / "train.log").read_text()
    assert f"=== resumed from {killed / 'last.pt'} at iteration 3; iterations 4..6 logged above" in log
    assert "removed" in log and ".last.pt.tmp" in log
    straight = tmp_path / "b" / "run"
    train.main(_args(data, straight, *args))
    assert (killed / "history.json").read_text() == (straight / "history.json").read_text()
    resumed, uninterrupted = _ckpt(killed / "last.pt")["model"], _ckpt(straight / "last.pt")["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


# ------------------------------------------------------------------------------ 6. flat inputs


@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_6_flat_sr_has_a_bounded_finite_gradient(dtype):
    criterion = _tiny_pcl()
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for sr in (torch.full((2, 3, 32, 32), 0.5), hr.clone().index_fill_(-1, torch.arange(8), 0.25)):
        sr.requires_grad_(True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(sr, hr, generator=torch.Generator().manual_seed(1))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(sr.grad).all()
        assert sr.grad.abs().max() < 10  # 1.1e4 with eps=1e-8 (fp32), NaN under fp16 autocast


def test_6_zero_anchor_gradient_is_bounded():
    a = torch.zeros(2, 8, 4, 4, requires_grad=True)
    p, n = torch.randn(2, 2, 8, 4, 4), torch.randn(2, 2, 8, 4, 4)
    frequency_contrastive_loss(a, p, n).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().max() < 1e3  # was 2e6


# ---------------------------------------------------------------------- 7. hyper-parameter ranges

_sr, _hr = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
_f, _p = torch.randn(1, 4, 2, 2), torch.randn(1, 1, 4, 2, 2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda t: PixelContrastiveLoss(temperature=t), "temperature"),
        (lambda t: pixel_contrastive_loss(_sr, _hr, 4, temperature=t), "temperature"),
        (lambda t: frequency_contrastive_loss(_f, _p, _p, temperature=t), "temperature"),
        (lambda t: FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), temperature=t), "temperature"),
        (lambda t: GaussianHighPassLoss(sigma=t), "sigma"),
        (lambda t: gaussian_high_pass_loss(_sr, _hr, t), "sigma"),
        (lambda t: RandomConvContrastiveLoss(value_range=t), "value_range"),
        (lambda t: FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), value_range=t), "value_range"),
        (lambda t: VGG19Features(("relu1_1",), value_range=t), "value_range"),
        (lambda t: RandomConvContrastiveLoss(eps=t), "eps"),
        (lambda t: frequency_contrastive_loss(_f, _p, _p, eps=t), "eps"),
        (lambda t: RandomConvContrastiveLoss(layer_weights=(0.5, t)), "layer_weights"),
    ],
)
@pytest.mark.parametrize("value", [1e-40, 1e-30, 1e308, math.inf, math.nan])
def test_7_values_that_make_a_loss_nan_inf_or_zero_are_refused(call, name, value):
    if name == "layer_weights" and math.isfinite(value):
        return  # small or large finite weights are fine
    with pytest.raises(ValueError, match=name):
        call(value)


def test_7_all_zero_layer_weights_are_refused():
    with pytest.raises(ValueError, match="layer_weights .* not all 0"):
        RandomConvContrastiveLoss(layer_weights=(0.0, 0.0))


# ------------------------------------------------------------------------ 8. what must be refused


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: RandomConvContrastiveLoss()(_sr, _hr, lr=(torch.rand(1, 3, 8, 8) * 255).to(torch.uint8)), TypeError, "lr must be a floating"),
        (lambda: RandomConvContrastiveLoss()(_sr, _hr, lr=torch.rand(1, 3, 32, 32)), ValueError, "lr must not be larger than sr"),
        (lambda: frequency_contrastive_loss(_f, _p.long(), _p), TypeError, r"positives\[0\] must be a floating"),
        (lambda: frequency_contrastive_loss(_f[:0], _p[:0], _p[:0]), ValueError, r"anchor\[0\] must be non-empty"),
        (lambda: VGG19Features(("relu1_1",))(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "input must be a floating"),
        (lambda: quantize(torch.zeros(4, dtype=torch.uint8)), TypeError, "img must be a floating"),
        (lambda: quantize([0.5]), TypeError, "img must be a floating-point torch.Tensor"),
        (lambda: quantize(None), TypeError, "img must be a floating-point torch.Tensor"),
        (lambda: pixel_contrastive_reference_map([1.0], _hr), TypeError, "sr must be a torch.Tensor"),
        (lambda: pixel_contrastive_reference_map(_sr, _hr.long()), TypeError, "hr must be a floating"),
        (lambda: pixel_contrastive_reference_map(_sr, _hr, region=100), ValueError, "region must be <="),
        (lambda: pixel_contrastive_sliding_reference_map(_sr, _hr[..., :8]), ValueError, "same shape"),
        (lambda: pixel_contrastive_sliding_reference_map(_sr, _hr, temperature=0), ValueError, "temperature"),
        (lambda: RandomConvFeatures()([1.0]), TypeError, "input must be a torch.Tensor"),
        (lambda: RandomConvFeatures()(None), TypeError, "input must be a torch.Tensor"),
        (lambda: _tiny_disc()(None), TypeError, "input must be a torch.Tensor"),
        (lambda: _tiny_disc()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "input must be a floating"),
        (lambda: VGG19Features(("relu1_1",))([1.0]), TypeError, "input must be a torch.Tensor"),
    ],
)
def test_8_refused_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------- 9. Inf in ratio losses


@pytest.mark.parametrize("where", ["sr", "hr"])
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_9_inf_input_of_ratio_losses_gives_nan(where, value):
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    lr = torch.rand(2, 3, 8, 8)
    (sr if where == "sr" else hr)[1, 0, 2, 2] = value
    random_conv = RandomConvContrastiveLoss(reduction="none")(sr, hr, lr=lr)
    assert torch.isfinite(random_conv[0]) and torch.isnan(random_conv[1])  # only the image with the Inf
    assert torch.isnan(random_conv_contrastive_loss(sr, hr, imresize(lr, 2)))
    ratio = RatioContrastiveLoss(RandomConvFeatures(), (1.0, 0.0))(sr, hr, lr=lr)
    assert torch.isnan(ratio)


def test_9_the_guard_changes_no_finite_value_or_gradient():
    sr = torch.rand(2, 3, 16, 16, requires_grad=True)
    hr, neg = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    phi = RandomConvFeatures()
    loss = ratio_contrastive_loss(sr, hr, neg, phi, (0.5, 0.5), reduction="none")
    f_sr, f_hr, f_neg = phi(sr), phi(hr), phi(neg)
    expected = sum(0.5 * (a - p).abs().flatten(1).mean(1) / ((a - n).abs().flatten(1).mean(1) + 1e-7)
                   for a, p, n in zip(f_sr, f_hr, f_neg))
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)


# ---------------------------------------------------------------------- 10. script arguments


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--loss", "1.2.3*l1"], "--loss: cannot parse term '1.2.3*l1'"),
        (["--loss", "..*l1"], "--loss: cannot parse term '..*l1'"),
        (["--loss", "0*l1"], "--loss: the weight of '0*l1' must be a finite number > 0"),
        (["--loss", "1e999*l1"], "--loss: the weight of '1e999*l1' must be a finite number > 0"),
        (["--loss", "l1+pcl(d_lr=abc)"], "--loss pcl(d_lr=...): the discriminator's learning rate must be a finite number > 0 or 'same', got 'abc'"),
        (["--loss", "l1+pcl(d_lr=-1)"], "--loss pcl(d_lr=...)"),
        (["--loss", "l1+pixel_contrastive(region=100)"], "--loss 1*pixel_contrastive(region=100): region must be <="),
        (["--loss", "l1(reduction=bad)"], "--loss 1*l1(reduction=bad): bad is not a valid value for reduction"),
        (["--loss", "l1+high_pass(sigma=50)"], "--loss 1*high_pass(sigma=50)"),
        (["--lr-gamma", "-1"], "--lr-gamma must be a finite number > 0"),
        (["--clip-grad", "-1"], "--clip-grad must be a finite number >= 0"),
        (["--threads", "-3"], "--threads must be a finite number >= 0"),
        (["--device", "tpu"], "--device 'tpu': expected auto, cpu, cuda, cuda:N or mps"),
        (["--skip-nonfinite", "-1"], "--skip-nonfinite must be"),
    ],
)
def test_10_bad_train_arguments_are_one_line_errors_before_any_work(data, tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    err = _error(train.main, _args(data, out, "--iters", "2", *extra), capsys)
    assert match in err, err
    assert not (out / "last.pt").exists()


def test_10_unwritable_out_and_resume_with_a_new_lr(data, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    err = _error(train.main, _args(data, tmp_path / "file" / "run", "--iters", "1"), capsys)
    assert f"--out {tmp_path / 'file' / 'run'}: cannot write there" in err
    out = tmp_path / "run"
    train.main(_args(data, out, "--iters", "1"))
    before = (out / "last.pt").read_bytes()
    args = _args(data, out, "--iters", "2", "--resume")
    args[args.index("--lr") + 1] = "5e-3"
    err = _error(train.main, args, capsys)
    assert "--lr 0.005: --resume" in err and "saved --lr 0.001" in err
    assert (out / "last.pt").read_bytes() == before
    train.main(_args(data, out, "--iters", "2", "--resume"))  # the same --lr: fine
    assert _ckpt(out / "last.pt")["iteration"] == 2


def test_10_bad_evaluate_arguments(data, tmp_path, capsys):
    bare = tmp_path / "bare.pt"
    torch.save({"arch": "edsr_baseline", "scale": 2}, bare)
    err = _error(evaluate.main, ["--checkpoint", str(bare), "--test", str(data["test"]), "--lpips", "none"], capsys)
    assert f"--checkpoint {bare}: no 'model' state dict" in err
    (tmp_path / "file").write_text("")
    err = _error(evaluate.main, ["--scale", "2", "--test", str(data["test"]), "--lpips", "none",
                                 "--json", str(tmp_path / "file" / "r.json")], capsys)
    assert "--json" in err and "cannot write there" in err
    err = _error(evaluate.main, ["--scale", "2", "--test", str(data["test"]), "--device", "tpu"], capsys)
    assert "--device 'tpu'" in err
    assert "--threads must be" in _error(evaluate.main, ["--scale", "2", "--test", str(data["test"]), "--threads", "-3"], capsys)


def test_10_infinite_psnr_is_written_as_json_null(data, tmp_path):
    result = evaluate.main(["--scale", "2", "--test", str(data["flat"]), "--lpips", "none", "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert result["results"]["bicubic"]["flat"]["psnr"] == math.inf

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    saved = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert saved["results"]["bicubic"]["flat"]["psnr"] is None


# ---------------------------------------------------------------------------------- 11. meta


def test_11_losses_and_imresize_infer_shapes_on_meta_tensors():
    sr = torch.empty(2, 3, 16, 16, device="meta")
    assert GaussianHighPassLoss()(sr, sr).shape == ()
    assert GaussianHighPassLoss(mode="fft", reduction="none")(sr, sr).shape == (2, 3, 16, 16)
    assert pixel_contrastive_loss(sr, sr, 4, backend="torch").shape == ()
    f, p = torch.empty(2, 8, 4, 4, device="meta"), torch.empty(2, 3, 8, 4, 4, device="meta")
    assert frequency_contrastive_loss(f, p, p, reduction="none").shape == (2,)
    assert _tiny_pcl().to("meta")(sr, sr).device.type == "meta"
    assert imresize(sr, 0.5).shape == (2, 3, 8, 8)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as flops:
        GaussianHighPassLoss(mode="fft")(sr, sr)
        _tiny_pcl().to("meta")(sr, sr)
    assert flops.get_total_flops() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert frequency_contrastive_loss(f, p, p).shape == ()


# --------------------------------------------------------------- property test over every public loss

ARG_NAMES = ("sr", "hr", "lr", "negative", "anchor", "positives", "negatives", "temperature", "region",
             "sigma", "eps", "value_range", "layer_weights", "reduction", "input", "real_logits", "fake_logits")
_PHI = RandomConvFeatures()
_DISC = _tiny_disc()
_BAD_NUMBERS = (0.0, -1.0, math.nan, math.inf, 1e-40, 1e308, "1", None)


def _call(name: str, sr, hr, lr, hyper):
    """One public loss on the drawn inputs; ``hyper`` is the drawn value of its main hyper-parameter."""
    if name == "pixel":
        return pixel_contrastive_loss(sr, hr, 2, temperature=hyper)
    if name == "pixel_sliding_module":
        return PixelContrastiveLoss(region=2, mode="sliding", temperature=hyper)(sr, hr)
    if name == "pixel_reference_map":
        return pixel_contrastive_reference_map(sr, hr, 2, temperature=hyper)
    if name == "pixel_sliding_reference_map":
        return pixel_contrastive_sliding_reference_map(sr, hr, 3, temperature=hyper)
    if name == "high_pass":
        return gaussian_high_pass_loss(sr, hr, hyper, mode="fft")
    if name == "high_pass_module":
        return GaussianHighPassLoss(sigma=hyper, kernel_size=3)(sr, hr)
    if name == "ratio":
        return ratio_contrastive_loss(sr, hr, lr, _PHI, (0.5, 0.5), eps=hyper)
    if name == "random_conv":
        return RandomConvContrastiveLoss(eps=hyper)(sr, hr, lr=lr)
    if name == "random_conv_functional":
        return random_conv_contrastive_loss(sr, hr, lr, eps=hyper)
    if name == "ratio_module":
        return RatioContrastiveLoss(_PHI, (1.0, 0.0), eps=hyper)(sr, hr, lr)
    if name == "discriminator":
        return contrastive_discriminator_loss(sr, hr)
    if name == "pcl_trainer":
        criterion = FrequencyContrastiveLoss(_tiny_disc(), layers=(0,), num_positives=2, num_negatives=2,
                                             temperature=hyper, blur_kernel_sizes=(3,))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the skipped step of a NaN batch
            return PCLTrainer(criterion)(sr, hr)
    if name == "frequency":
        return FrequencyContrastiveLoss(_DISC, layers=(0,), num_positives=2, num_negatives=2, temperature=hyper,
                                        blur_kernel_sizes=(3,))(sr, hr)
    if name == "frequency_functional":
        return frequency_contrastive_loss(sr, hr.unsqueeze(1) if torch.is_tensor(hr) else hr,
                                          lr.unsqueeze(1) if torch.is_tensor(lr) else lr, temperature=hyper)
    raise AssertionError(name)


VALID_HYPER = {"pixel": 1.0, "pixel_sliding_module": 0.5, "pixel_reference_map": 2.0, "pixel_sliding_reference_map": 0.3,
               "high_pass": 1.0, "high_pass_module": 0.5, "ratio": 1e-7, "ratio_module": 1e-6, "random_conv": 1e-3,
               "random_conv_functional": 1e-7, "frequency": 1.0, "frequency_functional": 0.5, "pcl_trainer": 1.0,
               "discriminator": None}
LOSS_NAMES = tuple(VALID_HYPER)  # every public loss of contrastive_sr_losses.losses


@st.composite
def _case(draw):
    name = draw(st.sampled_from(LOSS_NAMES))
    n, c = (2 if name == "pcl_trainer" else draw(st.integers(1, 2))), 3  # training BatchNorm needs 2 values
    h, w = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    sr, hr = torch.rand(n, c, h, w, generator=gen).to(dtype), torch.rand(n, c, h, w, generator=gen).to(dtype)
    lr = torch.rand(n, c, h, w, generator=gen).to(dtype)
    fault = draw(st.sampled_from(["none", "none", "nan", "inf", "hyper", "dtype", "type", "shape", "empty"]))
    hyper = VALID_HYPER[name]
    target = draw(st.sampled_from(["sr", "hr"]))
    if fault == "nan" or fault == "inf":
        t = sr if target == "sr" else hr
        t[draw(st.integers(0, n - 1)), draw(st.integers(0, c - 1)), draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = (
            math.nan if fault == "nan" else draw(st.sampled_from([math.inf, -math.inf])))
    elif fault == "hyper" and hyper is None:
        fault = "none"  # no hyper-parameter
    elif fault == "hyper":
        hyper = draw(st.sampled_from(_BAD_NUMBERS))
    elif fault == "dtype":
        sr, hr = (sr.to(torch.int64), hr) if target == "sr" else (sr, (hr * 255).to(torch.uint8))
    elif fault == "type":
        bad = draw(st.sampled_from([None, [0.5], 0.5, np.zeros((n, c, h, w), np.float32)]))
        sr, hr = (bad, hr) if target == "sr" else (sr, bad)
    elif fault == "shape":
        if target == "hr":
            hr = hr[..., : h - 1, :]
        else:
            sr = sr[0]
    elif fault == "empty":
        sr, hr, lr = sr[:0], hr[:0], lr[:0]
    if name in ("ratio", "random_conv") and draw(st.booleans()) and fault == "none":
        lr = lr[..., : max(1, h // 2), : max(1, w // 2)] if name == "random_conv" else lr
    if name in ("ratio", "ratio_module", "random_conv_functional"):  # these take the negative, at sr's size
        lr = lr if lr.shape == (n, c, h, w) else torch.rand(n, c, h, w).to(dtype)
    return name, sr, hr, lr, hyper, fault


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=_case())
def test_property_every_public_loss_gives_only_documented_outcomes(case):
    name, sr, hr, lr, hyper, fault = case
    try:
        out = _call(name, sr, hr, lr, hyper)
    except (ValueError, TypeError) as err:
        assert fault != "none", f"{name} refused valid input: {err}"
        assert "\n" not in str(err) and any(arg in str(err) for arg in ARG_NAMES), f"{name}: {err!r} names no argument"
        return
    assert fault in ("none", "nan", "inf"), f"{name} accepted {fault} input"
    assert torch.is_tensor(out) and out.dtype in (torch.float32, torch.float64)
    if fault == "none":
        assert torch.isfinite(out).all(), f"{name} gave {out} on valid input"
    elif fault == "nan":
        assert torch.isnan(out).any(), f"{name} gave {out} for NaN input"
    else:
        assert not torch.isfinite(out).all(), f"{name} gave the finite {out} for Inf input"
