"""Tests of examples/evaluate.py (tiny checkpoints and images made here; real data sets when present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
pytest.importorskip("tqdm")
from PIL import Image  # noqa: E402

import srkit.evaluate as evaluate  # noqa: E402
import srkit.train as train  # noqa: E402
from contrastive_sr_losses.functional import imresize, quantize  # noqa: E402
from contrastive_sr_losses.metrics import psnr_y, ssim_y  # noqa: E402
from srkit.runtime import run_cli  # noqa: E402
from tests._paths import SHARED_DATA  # noqa: E402


def _read(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].double() / 255


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for folder, n in (("train", 3), ("test", 2)):
        (root / folder).mkdir()
        for i in range(n):
            y, x = np.mgrid[0:36, 0:40] / 40
            img = 0.5 + 0.3 * np.sin(2 * np.pi * (2 + i) * x)[..., None] * np.cos(2 * np.pi * 3 * y)[..., None]
            img = np.clip(img + 0.03 * rng.standard_normal((36, 40, 3)), 0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / folder / f"{folder}{i}.png")
    for name in ("l1", "l1_pc"):
        train.main([
            "--arch", "edsr_baseline", "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2",
            "--train", str(root / "train"), "--test", str(root / "test"), "--patch", "8", "--batch", "2",
            "--iters", "2", "--workers", "0", "--val-every", "1", "--no-progress", "--threads", "1",
            "--loss", "l1" if name == "l1" else "l1+0.1*pixel_contrastive", "--out", str(root / "runs" / name),
        ])
    return {"root": root, "test": root / "test", "runs": root / "runs"}


def test_evaluate_table_json_markdown_and_images(setup, tmp_path, capsys):
    runs, test = setup["runs"], setup["test"]
    result = evaluate.main([
        "--checkpoint", str(runs / "l1" / "last.pt"), str(runs / "l1_pc" / "last.pt"), "--test", str(test),
        "--lpips", "none", "--save-images", str(tmp_path / "img"), "--json", str(tmp_path / "r.json"),
        "--markdown", str(tmp_path / "r.md"), "--no-progress",
    ])
    table = result["results"]
    assert list(table) == ["bicubic", "l1", "l1_pc"] and result["scale"] == 2
    out = capsys.readouterr().out
    assert "bicubic PSNR-Y" in out and "l1_pc SSIM-Y" in out and "test (2)" in out
    assert json.loads((tmp_path / "r.json").read_text())["results"]["l1"]["test"]["psnr"] == table["l1"]["test"]["psnr"]
    assert (tmp_path / "r.md").read_text().startswith("| data set | bicubic PSNR-Y |")
    for method in ("bicubic", "l1", "l1_pc", "compare"):
        assert sorted(p.name for p in (tmp_path / "img" / "test" / method).iterdir()) == ["test0.png", "test1.png"]
    # the model's numbers are the validation numbers train.py logged for the same weights
    hist = json.loads((runs / "l1" / "history.json").read_text())
    assert table["l1"]["test"]["psnr"] == pytest.approx(hist["validation"][-1]["sets"]["test"]["psnr"], abs=1e-9)
    # the saved SR image is the evaluated output, rounded to 8 bits
    hr, sr = _read(test / "test0.png"), _read(tmp_path / "img" / "test" / "l1" / "test0.png")
    assert psnr_y(sr, hr, crop_border=2).item() == pytest.approx(table["l1"]["test"]["images"][0]["psnr"], abs=1e-9)


def test_bicubic_row_is_the_protocol(setup):
    result = evaluate.main(["--scale", "2", "--test", str(setup["test"]), "--lpips", "none", "--no-progress"])
    rows = result["results"]["bicubic"]["test"]
    psnrs, ssims = [], []
    for i in range(2):
        hr = _read(setup["test"] / f"test{i}.png")
        lr = quantize(imresize(hr, 0.5))
        sr = imresize(lr, 2).clamp(0, 1)
        psnrs.append(psnr_y(sr, hr, 2).item())
        ssims.append(ssim_y(sr, hr, 2).item())
    assert rows["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-6)
    assert rows["ssim"] == pytest.approx(np.mean(ssims), abs=1e-8)
    assert [r["image"] for r in rows["images"]] == ["test/test0.png", "test/test1.png"]


def test_lpips_column_when_weights_are_present(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    result = evaluate.main(["--scale", "2", "--test", str(setup["test"]), "--no-progress"])
    assert result["lpips"].startswith("off (no backbone weights in")
    backbone = SHARED_DATA / "weights" / "squeezenet1_1-b8a52dc0.pth"
    from contrastive_sr_losses.metrics.perceptual import _default_head_path

    head = _default_head_path("squeeze")
    if not backbone.is_file() or head is None or not head.is_file():
        pytest.skip("SqueezeNet backbone or lpips head weights absent")
    result = evaluate.main([
        "--scale", "2", "--test", str(setup["test"]), "--lpips", "squeeze", "--lpips-backbone", str(backbone), "--no-progress",
    ])
    value = result["results"]["bicubic"]["test"]["lpips"]
    assert result["lpips"] == "squeeze" and 0 < value < 1


def test_curves_plot(setup, tmp_path):
    pytest.importorskip("matplotlib")
    result = evaluate.main(["--curves", str(setup["runs"] / "l1"), str(setup["runs"] / "l1_pc"), "--plot", str(tmp_path / "c.png")])
    assert result["plot"] == str(tmp_path / "c.png") and (tmp_path / "c.png").stat().st_size > 1000


def test_bad_input_gives_one_line_errors(setup, tmp_path, capsys):
    def error(argv: list[str]) -> str:
        assert run_cli(evaluate.main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
        return err

    test = str(setup["test"])
    assert "no such folder" in error(["--scale", "2", "--test", str(tmp_path / "nope"), "--no-progress"])
    assert "no such file" in error(["--checkpoint", str(tmp_path / "x.pt"), "--test", test])
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    assert "not written by examples/train.py (use --arch NAME --weights" in error(["--checkpoint", str(tmp_path / "plain.pt"), "--test", test])
    ckpt = str(setup["runs"] / "l1" / "last.pt")
    assert "is a x2 model, but the evaluation is x4" in error(["--checkpoint", ckpt, "--scale", "4", "--test", test])
    assert "unknown network 'nope'" in error(["--arch", "nope", "--scale", "2", "--test", test])
    err = error(["--arch", "edsr_baseline", "--weights", ckpt, "--scale", "2", "--test", test])
    assert "does not fit edsr_baseline x2" in err  # a tiny EDSR's weights into the full-size one
    assert "bicubic-only evaluation" in error(["--test", test])


def test_weights_for_a_named_arch(setup, capsys):
    ckpt = str(setup["runs"] / "l1" / "last.pt")
    result = evaluate.main([
        "--arch", "edsr_baseline", "--arch-kwargs", "n_resblocks=1,n_feats=8", "--weights", ckpt, "--scale", "2",
        "--test", str(setup["test"]), "--lpips", "none", "--no-bicubic", "--no-progress",
    ])
    from_ckpt = evaluate.main(["--checkpoint", ckpt, "--test", str(setup["test"]), "--lpips", "none", "--no-progress"])
    assert result["results"]["edsr_baseline"]["test"]["psnr"] == from_ckpt["results"]["l1"]["test"]["psnr"]


@pytest.mark.skipif(not (SHARED_DATA / "Set5").is_dir(), reason="../shared/data/Set5 is absent")
def test_bicubic_x4_on_set5_matches_the_literature():
    # Bicubic x4 on Set5, PSNR-Y 28.42 dB in the SR literature's tables (e.g. EDSR, RCAN papers).
    result = evaluate.main(["--scale", "4", "--test", str(SHARED_DATA / "Set5"), "--lpips", "none", "--no-progress"])
    assert result["results"]["bicubic"]["Set5"]["psnr"] == pytest.approx(28.42, abs=0.02)


def test_grayscale_test_images_are_scored_on_their_one_channel(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "gray").mkdir()
    levels = (rng.random((20, 24)) * 255).astype(np.uint8)
    Image.fromarray(levels, mode="L").save(tmp_path / "gray" / "g.png")
    result = evaluate.main(["--scale", "2", "--test", str(tmp_path / "gray"), "--lpips", "none", "--no-progress"])
    row = result["results"]["bicubic"]["gray"]
    # naive: bicubic on the gray levels themselves, PSNR of the levels 0..255 after a 2-pixel crop
    hr = torch.from_numpy(levels).double()[None] / 255
    sr = quantize(imresize(quantize(imresize(hr, 1 / 2)), 2))
    mse = (sr - hr)[:, 2:-2, 2:-2].mul(255).pow(2).mean().item()
    assert row["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    assert row["ssim"] == pytest.approx(ssim_y(sr[None], hr[None], crop_border=2).item(), abs=1e-12)
    rounded = evaluate.main(["--scale", "2", "--test", str(tmp_path / "gray"), "--lpips", "none", "--no-progress", "--round-y"])
    assert rounded["results"]["bicubic"]["gray"]["psnr"] == pytest.approx(row["psnr"], abs=1e-9)  # levels are integers


@pytest.mark.skipif(not (SHARED_DATA / "Set14" / "bridge.png").is_file(), reason="../shared/data/Set14 is absent")
def test_bridge_x2_bicubic_is_scored_as_the_literature_scores_a_grayscale_image(tmp_path):
    (tmp_path / "Set14").mkdir()
    (tmp_path / "Set14" / "bridge.png").write_bytes((SHARED_DATA / "Set14" / "bridge.png").read_bytes())
    result = evaluate.main(["--scale", "2", "--test", str(tmp_path / "Set14"), "--lpips", "none", "--no-progress"])
    assert result["results"]["bicubic"]["Set14"]["psnr"] == pytest.approx(26.57, abs=0.01)  # 27.89 as RGB


def test_protocol_fingerprint_is_stable_and_moves_with_what_the_protocol_computes(monkeypatch):
    import srkit.data
    import srkit.evaluation
    from srkit.evaluation import protocol_fingerprint

    base = protocol_fingerprint()
    assert base == protocol_fingerprint() and len(base) == 12
    # a different crop border (one pixel more) changes the scores, hence the fingerprint
    reference_y = srkit.evaluation.ReferenceY
    monkeypatch.setattr(srkit.evaluation, "ReferenceY",
                        lambda hr, crop_border, round_y: reference_y(hr, crop_border + 1, round_y=round_y))
    assert protocol_fingerprint() != base
    monkeypatch.undo()
    # an LR made without antialiasing changes the LR bytes
    monkeypatch.setattr(srkit.data, "make_lr", lambda hr, scale: srkit.data.quantize(
        srkit.data.imresize(hr.double() / 255, 1 / scale, antialiasing=False)).mul(255).round().byte())
    assert protocol_fingerprint() != base
