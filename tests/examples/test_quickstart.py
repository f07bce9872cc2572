"""Smoke tests of the main job, examples/quickstart.py (a few steps, tiny crops)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from tests._paths import SHARED_DATA


def _quickstart():
    pytest.importorskip("PIL")
    pytest.importorskip("tqdm")
    import examples.quickstart

    return examples.quickstart


FAST = ["--steps", "2", "--batch", "2", "--patch", "24", "--eval-crop", "48"]


def _check(results: dict, out: Path) -> None:
    mean = results["psnr_y"]["mean"]
    assert set(mean) == {"bicubic", "l1", "l1+contrastive"}
    assert all(math.isfinite(v) and v > 10 for v in mean.values())
    assert (out / "quickstart_x2.png").is_file()
    assert json.loads((out / "quickstart_x2.json").read_text())["psnr_y"]["mean"] == mean


def test_quickstart_on_a_folder_of_images(tmp_path):
    from PIL import Image

    quickstart = _quickstart()
    data = tmp_path / "hr"
    data.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(5):  # smooth random images so bicubic is a fair baseline
        img = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 10, generator=g), size=(64, 80), mode="bicubic")
        Image.fromarray(img[0].clamp(0, 1).mul(255).byte().permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    results = quickstart.main([*FAST, "--data", str(data), "--out", str(tmp_path / "out")])
    assert results["test_images"] == ["4.png"] and len(results["train_images"]) == 4
    _check(results, tmp_path / "out")


def test_quickstart_default_photos(tmp_path):
    pytest.importorskip("skimage")
    quickstart = _quickstart()
    _check(quickstart.main([*FAST, "--out", str(tmp_path)]), tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "Set5").is_dir(), reason="../shared/data is not present")
def test_quickstart_on_shared_set5(tmp_path):
    quickstart = _quickstart()
    _check(quickstart.main([*FAST, "--data", str(SHARED_DATA / "Set5"), "--out", str(tmp_path)]), tmp_path)


def test_quickstart_explains_itself(tmp_path, monkeypatch, capsys):
    """Labelled panels (method and PSNR-Y), 'higher is better', separate L1 / contrastive bars, and
    never more torch threads than free cores."""
    pytest.importorskip("skimage")
    quickstart = _quickstart()
    seen = {}
    real_save = quickstart.save_panels

    def save(images, labels, path, **kw):
        seen.update(labels)
        real_save(images, labels, path, **kw)

    monkeypatch.setattr(quickstart, "save_panels", save)
    monkeypatch.setattr(quickstart, "free_cores", lambda: 1)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bars show on a terminal only
    threads = torch.get_num_threads()
    try:
        results = quickstart.main([*FAST, "--threads", "8", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    assert "PSNR-Y (dB, higher is better)" in out.out
    assert "--threads 8 asked for more than the 1 free core(s)" in out.out and results["threads"] == 1
    assert "L1=" in out.err and "contrastive=" in out.err  # tqdm writes the bars to stderr
    mean = results["psnr_y"]["per_image"][0]
    assert seen["l1"] == f"L1\nPSNR-Y {mean['l1']:.2f} dB"
    assert seen["l1+contrastive"] == f"L1 + contrastive\nPSNR-Y {mean['l1+contrastive']:.2f} dB"
    assert seen["bicubic"].startswith("bicubic\nPSNR-Y") and "higher is better" in seen["HR"]
    assert results["machine"] and results["wall_time_s"] > 0
    assert quickstart.choose_threads(None)[0] <= quickstart.free_cores()


def test_progress_bars_are_quiet_when_the_output_is_not_a_terminal(tmp_path, capsys):
    pytest.importorskip("skimage")
    quickstart = _quickstart()
    threads = torch.get_num_threads()
    try:
        quickstart.main([*FAST, "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    assert "PSNR-Y (dB, higher is better)" in out.out  # the results are printed
    assert "L1=" not in out.err and "it/s" not in out.err  # no bar written into a log file


def _fake_study(results: Path, seeds=(0, 1)) -> None:
    """Committed-weights layout of the loss study with random networks (one result set, 2,400 iterations)."""
    from contrastive_sr_losses import create_model

    folder = results / "loss_study_2400_runs"
    folder.mkdir(parents=True)
    for seed in seeds:
        for k, objective in enumerate(("l1", "pc_T1+high_pass")):
            torch.manual_seed(10 * seed + k)
            torch.save(create_model("edsr_baseline", 4, n_resblocks=4, n_feats=32).state_dict(), folder / f"{objective}__seed{seed}.pt")
        (folder / f"l1__seed{seed}.json").write_text(json.dumps({"iterations": 2400}))
    summary = {"pc_T1+high_pass": {"sets": {"Set5": {"psnr_vs_l1": {"mean": 0.05, "half": 0.02}}}}}
    (results / "loss_study_2400.json").write_text(json.dumps({"summary": summary}))


def test_part_1_scores_the_study_weights_paired_by_seed(tmp_path, capsys):
    quickstart = _quickstart()
    _fake_study(tmp_path / "results")
    g = torch.Generator().manual_seed(0)
    images = [(f"im{i}", torch.rand(1, 3, 40, 44, generator=g)) for i in range(2)]
    out = quickstart.evaluate_study(images, "cpu", tmp_path / "results")
    assert out["rung"] == "loss_study_2400" and out["iterations"] == 2400 and out["images"] == ["im0", "im1"]
    for seed in (0, 1):
        t = out["psnr_y"][seed]
        assert out["difference"][seed] == pytest.approx(t["pc_T1+high_pass"] - t["l1"])
    assert out["mean_difference"] == pytest.approx(sum(out["difference"].values()) / 2)
    text = capsys.readouterr().out
    assert "higher is better" in text and "2,400 iterations" in text and "Set5 +0.050 ± 0.020" in text
    # only seeds with both objectives count; without any, part 1 says it is skipped
    (tmp_path / "results" / "loss_study_2400_runs" / "pc_T1+high_pass__seed1.pt").unlink()
    assert list(quickstart.evaluate_study(images, "cpu", tmp_path / "results")["psnr_y"]) == [0]
    assert quickstart.evaluate_study(images, "cpu", tmp_path / "nothing") is None
    assert "part 1 skipped" in capsys.readouterr().out


def test_part_1_uses_the_committed_study_weights(tmp_path):
    quickstart = _quickstart()
    found = quickstart.study_weights(quickstart.STUDY_RESULTS)
    assert found is not None, "the loss study's weights (benchmarks/results/loss_study_*_runs/*.pt) are committed"
    rung, iters, seeds = found
    assert iters >= 2400 and seeds
    for files in seeds.values():  # bare float32 state dicts that load without pickled objects
        for path in files.values():
            state = torch.load(path, map_location="cpu", weights_only=True)
            assert all(v.dtype == torch.float32 for v in state.values())
