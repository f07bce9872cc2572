"""Faults the training kit survives: a diverging loss never writes a non-finite checkpoint, a bad
test image or a failing validation never costs the weights, every PNG mode is read at its scale, a
kill during a checkpoint write resumes to the uninterrupted history, and bad arguments are one-line
errors before any work.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
pytest.importorskip("tqdm")
from PIL import Image  # noqa: E402

import srkit.evaluate as evaluate  # noqa: E402
import srkit.train as train  # noqa: E402
from contrastive_sr_losses.metrics import ssim_y  # noqa: E402
from srkit.data import read_rgb  # noqa: E402
from srkit.losses import CompositeLoss  # noqa: E402
from srkit.runtime import UsageError, run_cli  # noqa: E402
from tests._paths import EXAMPLES  # noqa: E402


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


def _write_png16_rgb(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): signature, IHDR, IDAT, IEND."""
    h, w, _ = rgb.shape

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


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


def test_diverging_loss_never_writes_a_nonfinite_checkpoint_and_says_what_is_on_disk(data, tmp_path, capsys):
    out = tmp_path / "run"
    err = _error(train.main, _args(data, out, "--iters", "4", "--lr", "1e30", "--checkpoint-every", "2", "--log-every", "10"), capsys)
    if (out / "last.pt").exists():  # whatever is on disk is finite, and the message names its iteration
        ckpt = _ckpt(out / "last.pt")
        assert _all_finite(ckpt["model"]), "a checkpoint with non-finite weights was written"
        assert f"holds iteration {ckpt['iteration']}" in err
    else:
        assert "no checkpoint was written" in err
    assert "NaN/Inf at iteration 2" in err and "--skip-nonfinite" in err


def test_skip_nonfinite_skips_the_step_and_stops_after_n_in_a_row(data, tmp_path, monkeypatch, capsys):
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


def test_small_test_images_are_left_out_up_front_and_never_cost_the_weights(data, tmp_path, capsys):
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


def test_a_failing_validation_writes_the_checkpoint_first(data, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("validation broke")

    monkeypatch.setattr(train, "evaluate", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="validation broke"):
        train.main(_args(data, out, "--iters", "2", "--checkpoint-every", "100", "--test", str(data["test"])))
    assert _ckpt(out / "last.pt")["iteration"] == 2


def test_every_png_mode_is_read_at_its_scale(tmp_path):
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


def test_kill_during_a_checkpoint_write_then_resume_gives_the_uninterrupted_history(data, tmp_path):
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
def test_bad_train_arguments_are_one_line_errors_before_any_work(data, tmp_path, capsys, extra, match):
    out = tmp_path / "run"
    err = _error(train.main, _args(data, out, "--iters", "2", *extra), capsys)
    assert match in err, err
    assert not (out / "last.pt").exists()


def test_unwritable_out_and_resume_with_a_new_lr(data, tmp_path, capsys):
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


def test_bad_evaluate_arguments(data, tmp_path, capsys):
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


def test_infinite_psnr_is_written_as_json_null(data, tmp_path):
    result = evaluate.main(["--scale", "2", "--test", str(data["flat"]), "--lpips", "none", "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert result["results"]["bicubic"]["flat"]["psnr"] == math.inf

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    saved = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert saved["results"]["bicubic"]["flat"]["psnr"] is None
