"""benchmarks/loss_study.py: paired runs, per-run JSONs, skip of finished runs, kill + resume, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests._paths import ROOT

SCRIPT = ROOT / "benchmarks" / "loss_study.py"


def _study():
    import benchmarks.loss_study

    return benchmarks.loss_study


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("study_data")
    gen = torch.Generator().manual_seed(0)
    for folder, sizes in (("train", [(64, 72), (80, 64)]), ("test", [(48, 40)])):
        (root / folder).mkdir()
        for i, (h, w) in enumerate(sizes):
            # smooth random images (upsampled noise): something to learn at x2
            img = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=gen), size=(h, w), mode="bicubic")
            arr = img.clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().byte().numpy()
            pil.fromarray(arr).save(root / folder / f"img{i}.png")
    return root


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2", "--patch", "8", "--batch", "2",
        "--data", str(data), "--train", "train", "--test", "test", "--no-lpips", "--no-progress",
        "--out-dir", str(out / "results"), "--runs-dir", str(out / "runs"), "--checkpoint-every", "2", *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_paired_study_writes_runs_skips_finished_and_reports_intervals(data, tmp_path):
    argv = _argv(data, tmp_path, "--iters", "8", "--seeds", "0", "1", "--jobs", "2",
                 "--objectives", "l1", "random_conv_last_quarter")
    subprocess.run([sys.executable, str(SCRIPT), *argv], check=True, env=_env(), timeout=600)
    runs = tmp_path / "results" / "loss_study_runs"
    files = sorted(p.name for p in runs.glob("*.json"))
    assert files == [f"{o}__seed{s}.json" for o in ("l1", "random_conv_last_quarter") for s in (0, 1)]
    first = {f: (runs / f).stat().st_mtime_ns for f in files}
    l1 = json.loads((runs / "l1__seed0.json").read_text())
    assert l1["spec"] == "l1" and l1["seed"] == 0 and l1["iterations"] == 8 and l1["code"]["protocol"]
    assert l1["command"].startswith("python benchmarks/loss_study.py --arch-kwargs")
    assert set(l1["sets"]) == {"test"} and l1["sets"]["test"]["images"] == 1
    # no path of this machine in the results (issue: run JSONs stored absolute paths)
    assert l1["settings"]["data"] == data.name and "results_dir" not in l1["settings"] and "grad_ratio" not in l1
    for f in [*runs.glob("*.json"), tmp_path / "results" / "loss_study.json"]:
        stored = f.read_text()  # the command too: --out-dir / --runs-dir left out, --data by its name
        assert str(tmp_path) not in stored and str(data) not in stored, f
    # the switching run records its term's gradient ratio to L1 at each log point after the switch
    ratio = json.loads((runs / "random_conv_last_quarter__seed0.json").read_text())["grad_ratio"]["random_conv"]
    assert [it for it, _ in ratio["points"]] == [8] and ratio["median"] == ratio["points"][0][1] > 0
    # pairing: every objective of a seed starts from the same weights and patches; the switching run
    # is L1 itself until 3/4 of the run (iteration 6), then L1 + random-conv
    rc = torch.load(tmp_path / "runs" / "random_conv_last_quarter" / "seed0" / "last.pt", weights_only=True)
    at6 = torch.load(tmp_path / "runs" / "l1" / "seed0" / "at_6.pt", weights_only=True)
    assert at6["iteration"] == 6 and rc["iteration"] == 8 and rc["loss"] == "1*l1+1*random_conv"
    assert [h["iteration"] for h in rc["history"]["train"]][:1] == [2]  # carries L1's log up to 6
    # a rerun skips the finished runs
    subprocess.run([sys.executable, str(SCRIPT), *argv], check=True, env=_env(), timeout=600)
    assert {f: (runs / f).stat().st_mtime_ns for f in files} == first
    report = json.loads((tmp_path / "results" / "loss_study.json").read_text())
    cell = report["summary"]["random_conv_last_quarter"]["sets"]["test"]["psnr_vs_l1"]
    diffs = [json.loads((runs / f"random_conv_last_quarter__seed{s}.json").read_text())["sets"]["test"]["psnr"]
             - json.loads((runs / f"l1__seed{s}.json").read_text())["sets"]["test"]["psnr"] for s in (0, 1)]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(sum(diffs) / 2)
    assert cell["half"] == pytest.approx(12.706 * abs(diffs[0] - diffs[1]) / 2 ** 0.5 / 2 ** 0.5)
    md = (tmp_path / "results" / "loss_study.md").read_text()
    assert "| `random_conv_last_quarter` | 2 |" in md and "±" in md and "grad ratio to L1 (median)" in md
    assert f"random_conv {report['summary']['random_conv_last_quarter']['grad_ratio']['random_conv']:.3g} |" in md
    assert (tmp_path / "results" / "loss_study.png").stat().st_size > 1000
    # on another machine the L1 checkpoints are gone: the switching run replays L1's first leg to the
    # switch point and reaches the same result
    before = json.loads((runs / "random_conv_last_quarter__seed0.json").read_text())["sets"]
    (runs / "random_conv_last_quarter__seed0.json").unlink()
    for stale in (tmp_path / "runs" / "l1" / "seed0" / "at_6.pt", tmp_path / "runs" / "random_conv_last_quarter" / "seed0"):
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    subprocess.run([sys.executable, str(SCRIPT), *argv], check=True, env=_env(), timeout=600)
    assert json.loads((runs / "random_conv_last_quarter__seed0.json").read_text())["sets"] == before
    assert (tmp_path / "runs" / "l1" / "seed0" / "at_6.pt").is_file()
    assert not (tmp_path / "runs" / "l1" / "seed0" / "replay_6").exists()


def test_killed_study_resumes_to_the_uninterrupted_result(data, tmp_path):
    argv = ["--iters", "16", "--seeds", "3", "--objectives", "l1", "--jobs", "1"]
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, str(SCRIPT), *_argv(data, straight, *argv)], check=True, env=_env(), timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *_argv(data, killed, *argv)], env=_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "runs" / "l1" / "seed3" / "last.pt"
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its training process
    proc.wait()
    assert not (killed / "results" / "loss_study_runs" / "l1__seed3.json").exists(), "killed too late to test a resume"
    subprocess.run([sys.executable, str(SCRIPT), *_argv(data, killed, *argv)], check=True, env=_env(), timeout=600)
    a = json.loads((straight / "results" / "loss_study_runs" / "l1__seed3.json").read_text())
    b = json.loads((killed / "results" / "loss_study_runs" / "l1__seed3.json").read_text())
    assert b["sets"] == a["sets"]  # bit-identical weights -> identical scores
    assert "resumed from" in (killed / "runs" / "l1" / "seed3" / "train.log").read_text()


def test_interval_helpers_and_objective_specs_parse():
    study = _study()
    assert study.t975(1) == 12.706 and study.t975(4) == 2.776 and study.t975(200) == 1.96
    d = study.paired_interval([0.1, 0.3])
    assert d["mean"] == pytest.approx(0.2) and d["half"] == pytest.approx(12.706 * (0.02**0.5) / 2**0.5)
    assert study.paired_interval([0.5])["half"] is None
    from srkit.losses import parse_loss_spec

    for objective in study.OBJECTIVES.values():
        parse_loss_spec(objective.spec)  # every spec is valid train.py grammar
    # groups: the default study is the 11 objectives of issue 11; the sweep pairs with l1
    assert study.expand_objectives(["study"]) == study.STUDY_OBJECTIVES and len(study.STUDY_OBJECTIVES) == 11
    sweep = study.expand_objectives(["sweep"])
    assert sweep[0] == "l1" and "pc_region4" in sweep and "pc_T1" not in sweep
    assert study.expand_objectives(["all"]) == list(study.OBJECTIVES)
    assert study.expand_objectives(["pc_T1", "l1", "pc_T1"]) == ["l1", "pc_T1"]
    region = {t.name: t for t in parse_loss_spec(study.OBJECTIVES["pc_region16"].spec)}["pixel_contrastive"]
    assert region.kwargs == {"temperature": 1, "region": 16} and region.weight == pytest.approx(0.1)
    # a variant is also paired with its family's default (the comparison that picks a default)
    def run(psnr: float) -> dict:
        return {"sets": {"Set5": {"psnr": psnr}}, "wall_s": {"total": 1.0}}

    runs = {"l1": {0: run(30.0), 1: run(30.2)}, "pc_T1": {0: run(30.1), 1: run(30.3)}, "pc_T0.3": {0: run(30.15), 1: run(30.25)}}
    summary = study.summarise(runs, ["l1", "pc_T1", "pc_T0.3"])
    vs_l1, vs_default = (summary["pc_T0.3"]["sets"]["Set5"][k] for k in ("psnr_vs_l1", "psnr_vs_default"))
    assert vs_l1["mean"] == pytest.approx(0.1) and vs_default["reference"] == "pc_T1"
    assert vs_default["mean"] == pytest.approx(0.0) and vs_default["half"] == pytest.approx(12.706 * 0.05)
    assert "psnr_vs_default" not in summary["pc_T1"]["sets"]["Set5"]
    assert "| `pc_T0.3` | `pc_T1` | 2 | +0.000 ± 0.635 |" in study.markdown_report(
        summary, {"arch": "a", "arch_kwargs": "", "scale": 4, "iters": 8, "batch": 1, "patch": 8, "lr": 1e-3, "train": ["t"]}, "cmd")
    # the temperature sweep keeps weight / temperature = 0.1
    for name in ("pc_T1", "pc_T0.3", "pc_T0.1", "pc_T0.03", "pc_T1/255"):
        terms = {t.name: t for t in parse_loss_spec(study.OBJECTIVES[name].spec)}
        pc = terms["pixel_contrastive"]
        assert pc.weight / pc.kwargs["temperature"] == pytest.approx(0.1, rel=1e-4)


def test_bad_arguments_are_one_line_errors(tmp_path):
    for extra, match in ((["--objectives", "nope"], "--objectives: unknown nope"),
                         (["--objectives", "random_conv_last_quarter"], "include l1"),
                         (["--iters", "2"], "--iters must be >= 4"),
                         (["--data", str(tmp_path / "none")], "--data: missing folders")):
        res = subprocess.run([sys.executable, str(SCRIPT), *extra], capture_output=True, text=True, env=_env(), timeout=120)
        assert res.returncode == 2 and match in res.stderr


def test_ladder_report_pairs_each_length_with_its_own_l1(tmp_path):
    study = _study()

    def write(name: str, objective: str, seed: int, iters: int, psnr: float, ratio: float | None = None) -> None:
        run = {"objective": objective, "seed": seed, "iterations": iters,
               "sets": {"Set5": {"psnr": psnr, "ssim": 0.9}}, "wall_s": {"total": 60.0}}
        if ratio is not None:
            run["grad_ratio"] = {"pixel_contrastive": {"median": ratio, "points": [[iters, ratio]]}}
        folder = tmp_path / f"{name}_runs"
        folder.mkdir(exist_ok=True)
        (folder / f"{objective}__seed{seed}.json").write_text(json.dumps(run))

    # 600: pc_T1 +0.1 / +0.3 over L1; 2400: +0.0 / +0.2 (a shrinking gain); 9600: nothing finished
    for seed, (l1, pc) in enumerate([(30.0, 30.1), (30.2, 30.5)]):
        write("loss_study", "l1", seed, 600, l1)
        write("loss_study", "pc_T1", seed, 600, pc, ratio=0.1 + seed)
    for seed, (l1, pc) in enumerate([(31.0, 31.0), (31.1, 31.3)]):
        write("loss_study_2400", "l1", seed, 2400, l1)
        write("loss_study_2400", "pc_T1", seed, 2400, pc)
    report = study.write_ladder(tmp_path)
    assert [r["iterations"] for r in report["rungs"].values()] == [600, 2400]
    cells = [r["summary"]["pc_T1"]["sets"]["Set5"]["psnr_vs_l1"] for r in report["rungs"].values()]
    assert cells[0]["mean"] == pytest.approx(0.2) and cells[1]["mean"] == pytest.approx(0.1)
    assert cells[1]["half"] == pytest.approx(12.706 * 0.2 / 2**0.5 / 2**0.5)
    md = (tmp_path / "loss_study_ladder.md").read_text()
    assert "| `l1` | 600 | 2 | 30.100 |" in md and "| `l1` | 2,400 | 2 | 31.050 |" in md
    assert "| `pc_T1` | 600 | 2 | +0.200 ± 1.271 | pixel_contrastive 0.6 |" in md  # median of the seeds' ratios
    assert "| `pc_T1` | 2,400 | 2 | +0.100 ± 1.271 | - |" in md
    assert (tmp_path / "loss_study_ladder.png").stat().st_size > 1000
    # one result set mixing lengths is refused
    write("loss_study_9600", "l1", 0, 9600, 32.0)
    write("loss_study_9600", "pc_T1", 0, 2400, 32.0)
    with pytest.raises(ValueError, match="loss_study_9600: runs of different lengths"):
        study.write_ladder(tmp_path)


def test_long_runs_keep_their_final_weights_and_evaluate_from_them(data, tmp_path):
    argv = _argv(data, tmp_path, "--iters", "4", "--seeds", "0", "--objectives", "l1", "--keep-weights")
    subprocess.run([sys.executable, str(SCRIPT), *argv], check=True, env=_env(), timeout=600)
    weights = tmp_path / "results" / "loss_study_runs" / "l1__seed0.pt"
    state = torch.load(weights, map_location="cpu", weights_only=True)  # a bare state dict: no pickled objects
    ckpt = torch.load(tmp_path / "runs" / "l1" / "seed0" / "last.pt", map_location="cpu", weights_only=False)
    assert state.keys() == ckpt["model"].keys() and all(torch.equal(state[k], ckpt["model"][k]) for k in state)
    assert all(v.dtype == torch.float32 for v in state.values())
    # the documented command evaluates them on any folder of images, to the study's own score
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "evaluate.py"), "--arch", "edsr_baseline",
                          "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2", "--weights", str(weights),
                          "--test", str(data / "test"), "--lpips", "none", "--no-bicubic", "--no-progress",
                          "--json", str(tmp_path / "eval.json")], capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (scored,) = json.loads((tmp_path / "eval.json").read_text())["results"].values()  # the one method
    study = json.loads((tmp_path / "results" / "loss_study_runs" / "l1__seed0.json").read_text())
    assert scored["test"]["psnr"] == pytest.approx(study["sets"]["test"]["psnr"], abs=1e-9)
    # runs finished without weights (an older study) export them from their checkpoints
    weights.unlink()
    subprocess.run([sys.executable, str(SCRIPT), *argv, "--export-weights"], check=True, env=_env(), timeout=300)
    again = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(torch.equal(again[k], state[k]) for k in state)
