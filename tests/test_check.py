"""Tests of ``python -m contrastive_sr_losses.check`` on a CPU machine: the kernels part in Triton's
interpreter at small shapes, the parts that need a checkout refused with one line each, the exit
status and verdict, the target arithmetic on a hand-made benchmark report; and of the checkout's
``benchmarks/gpu_check.py`` (the same driver with the GPU tests and the benchmark)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys

import pytest
import torch

from contrastive_sr_losses import check, kernels
from tests._paths import ROOT

GPU_CHECK = ROOT / "benchmarks" / "gpu_check.py"

needs_interpreted_triton = pytest.mark.skipif(
    torch.cuda.is_available() or not kernels.TRITON_INTERPRETED,
    reason="the CPU behaviour: no CUDA, kernels in Triton's interpreter",
)


@needs_interpreted_triton
def test_cpu_run_checks_the_kernels_and_says_what_it_did_not_run(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert check.main(["--quick", "--out", str(out)]) == check.EXIT_NO_GPU
    lines = capsys.readouterr().out.splitlines()
    for part in ("tests", "bench"):
        assert f"{part:<8} not run: the {'test suite' if part == 'tests' else 'benchmark'} is not installed with " \
            "the package; from a source checkout: python benchmarks/gpu_check.py" in lines  # fmt: skip
    assert "kernels  Triton vs reference, in Triton's CPU interpreter, shape (1, 3, 8, 8)" in lines
    assert sum(line.endswith(" ok") for line in lines) == 6  # 3 dtypes x 2 modes x region 4
    assert lines[-2] == "verdict  NOT VERIFIED: no CUDA device; passed: kernels; not run: tests, bench"
    report = json.loads(out.read_text())
    assert report["exit_status"] == check.EXIT_NO_GPU and report["triton_interpreted"]
    assert report["command"] == f"python -m contrastive_sr_losses.check --quick --out {out}"
    assert report["parts"]["kernels"]["status"] == "pass"
    assert {(c["dtype"], c["mode"]) for c in report["parts"]["kernels"]["cases"]} == {
        (d, m) for d in ("float32", "bfloat16", "float16") for m in ("grid", "sliding")
    }
    assert report["parts"]["tests"]["status"] == report["parts"]["bench"]["status"] == "not run"


@needs_interpreted_triton
def test_gpu_check_runs_the_same_driver_and_refuses_the_gpu_parts_without_cuda(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert runpy.run_path(str(GPU_CHECK))["main"](["--quick", "--out", str(out)]) == check.EXIT_NO_GPU
    lines = capsys.readouterr().out.splitlines()
    assert "tests    not run: no CUDA device (the GPU tests need one; the CPU suite is `pytest`)" in lines
    assert any(line.startswith("bench    not run: no CUDA device") for line in lines)
    assert sum(line.endswith(" ok") for line in lines) == 6
    assert lines[-2] == "verdict  NOT VERIFIED: no CUDA device; passed: kernels; not run: tests, bench"
    assert json.loads(out.read_text())["command"] == f"python benchmarks/gpu_check.py --quick --out {out}"


def test_without_triton_nothing_passes(monkeypatch, capsys):
    monkeypatch.setattr(kernels, "TRITON_AVAILABLE", False)
    monkeypatch.setattr(kernels, "TRITON_UNAVAILABLE_REASON", "ImportError: No module named 'triton'")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check.main(["--quick", "--no-json"]) == check.EXIT_NO_GPU
    lines = capsys.readouterr().out.splitlines()
    assert "kernels  not run: triton is not importable (ImportError: No module named 'triton')" in lines
    assert lines[-1] == "verdict  NOT VERIFIED: no CUDA device; nothing ran; not run: tests, kernels, bench"


@pytest.mark.parametrize(
    "statuses,gpu,quick,expected",
    [
        ({"kernels": "pass"}, True, False, (0, "passed: kernels (partial: not every part, not a verdict on the targets)")),
        ({"tests": "not run", "kernels": "pass", "bench": "not run"}, True, False,
         (0, "passed: kernels; not run: tests, bench (partial: not every part, not a verdict on the targets)")),
        ({"tests": "pass", "kernels": "pass", "bench": "pass"}, True, False,
         (0, "VERIFIED: every part passed and every target is met")),
        ({"tests": "pass", "kernels": "pass", "bench": "pass"}, True, True,
         (0, "passed: tests, kernels, bench (partial: --quick, not a verdict on the targets)")),
        ({"tests": "not run", "kernels": "fail"}, True, False, (1, "FAILED: kernels")),
        ({"tests": "not run", "bench": "not run"}, True, False, (1, "NOT VERIFIED: nothing ran; not run: tests, bench")),
        ({"kernels": "pass", "bench": "not run"}, False, True,
         (3, "NOT VERIFIED: no CUDA device; passed: kernels; not run: bench")),
    ],
)  # fmt: skip
def test_verdict_says_passed_only_for_the_parts_that_ran(statuses, gpu, quick, expected):
    parts = {name: {"status": status} for name, status in statuses.items()}
    assert check._verdict(parts, gpu, quick) == expected


@needs_interpreted_triton
def test_a_failing_kernel_fails_the_check(monkeypatch, capsys):
    from contrastive_sr_losses.kernels import pixel_contrastive_triton as tk

    def fail(*args, **kwargs):
        raise RuntimeError("simulated launch failure")

    monkeypatch.setattr(tk, "_launch_forward", fail)
    assert check.main(["--quick", "--parts", "kernels", "--no-json"]) == check.EXIT_FAILED
    out = capsys.readouterr().out
    assert "float32  grid    region 4  FAILED: raised RuntimeError: simulated launch failure" in out
    assert "verdict  FAILED: kernels" in out


@pytest.mark.skipif(torch.cuda.is_available() or not kernels.TRITON_AVAILABLE, reason="the CPU behaviour, with triton")
def test_command_reruns_itself_in_the_interpreter(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compiled kernels at first
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "contrastive_sr_losses.check", "--quick", "--parts", "kernels"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == check.EXIT_NO_GPU, proc.stderr[-2000:]
    assert "(interpreted)" in proc.stdout and "in Triton's CPU interpreter" in proc.stdout
    assert proc.stdout.rstrip().endswith("verdict  NOT VERIFIED: no CUDA device; passed: kernels")


def test_usage_errors_name_the_option(capsys):
    assert check.main(["--time-limit", "0"]) == check.EXIT_USAGE
    assert "--time-limit must be > 0, got 0.0" in capsys.readouterr().err
    assert check.main(["--out", "x.json", "--no-json"]) == check.EXIT_USAGE
    assert "--out and --no-json contradict each other" in capsys.readouterr().err


def _bench_results(triton_ms=(1.5, 3.5), extra=(9.0, 9.0), step_ms=101.0, dtype="float32"):
    """A benchmark report's results: L1 1 ms / 5 MiB extra, input 10 MiB, L1 step 100 ms."""
    base = dict(part="loss", size=192, dtype=dtype, input_mib=10.0)
    rows = [dict(base, method="l1", mode=None, region=None, median_ms=1.0, peak_extra_mib=5.0)]
    for mode, ms, mib in zip(("grid", "sliding"), triton_ms, extra):
        rows.append(dict(base, method="triton", mode=mode, region=8, median_ms=ms, peak_extra_mib=mib))
        rows.append(dict(base, method="triton", mode=mode, region=4, median_ms=100.0, peak_extra_mib=100.0))
    train = dict(part="train", dtype=dtype, region=8)
    rows.append(dict(train, method="l1", mode=None, median_ms=100.0, peak_extra_mib=1.0))
    rows.append(dict(train, method="l1+contrastive", mode="grid", median_ms=step_ms, peak_extra_mib=1.0))
    return rows


def _verdicts(rows):
    return {(t["target"], t["dtype"]): (t["ok"], t["measured"]) for t in check.evaluate_targets(rows)}


def test_targets_met_at_region_8():
    got = _verdicts(_bench_results())
    assert got == {
        ("grid time vs L1", "float32"): (True, 1.5),
        ("sliding time vs L1", "float32"): (True, 3.5),
        ("grid extra memory vs input", "float32"): (True, 0.4),  # (9 - 5) / 10
        ("sliding extra memory vs input", "float32"): (True, 0.4),
        ("EDSR step time vs L1 step", "float32"): (True, pytest.approx(1.01)),
    }


def test_targets_missed_failed_or_missing_are_not_met():
    rows = _bench_results(triton_ms=(2.5, 3.5), extra=(9.0, 16.0), step_ms=103.0)
    got = _verdicts(rows)
    assert got[("grid time vs L1", "float32")] == (False, 2.5)
    assert got[("sliding extra memory vs input", "float32")] == (False, 1.1)
    assert got[("EDSR step time vs L1 step", "float32")][0] is False
    assert got[("sliding time vs L1", "float32")] == (True, 3.5)
    rows = [dict(r, error="exit status 1") if r["method"] == "l1" and r["part"] == "loss" else r for r in _bench_results()]
    rows += _bench_results(dtype="bfloat16")[:1]  # bfloat16: only its L1 case
    got = _verdicts(rows)
    assert got[("grid time vs L1", "float32")] == (False, None)  # its L1 case failed
    assert got[("grid time vs L1", "bfloat16")] == (False, None)  # no Triton case at all
    assert got[("EDSR step time vs L1 step", "float32")][0] is True


# ------------------------------------------------------------------------------------------------
# benchmarks/gpu_check.py's GPU-only parts, on the CPU: a stand-in test folder and benchmark script
# ------------------------------------------------------------------------------------------------
def _lines():
    said = []
    return said, said.append


@pytest.fixture(scope="module")
def gpu_check():
    """The checkout's script as a namespace (run as a file, not as __main__)."""
    return runpy.run_path(str(GPU_CHECK))


def test_tests_part_reports_each_pytest_run_and_its_failures(tmp_path, gpu_check):
    (tmp_path / "tests").mkdir()
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs CUDA\n")
    (tmp_path / "tests" / "test_gpu.py").write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_ok():\n    pass\n\n@pytest.mark.gpu\ndef test_broken():\n    assert 0\n"
    )
    for name in gpu_check["KERNEL_TEST_FILES"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("def test_kernels():\n    pass\n")
    said, say = _lines()
    result = gpu_check["run_tests"](check.Clock(120), say, root=tmp_path)
    assert result["status"] == "fail"
    first, second = result["runs"]
    assert not first["ok"] and first["summary"].startswith("1 failed, 1 passed")
    assert first["failures"] == ["FAILED tests/test_gpu.py::test_broken - assert 0"]
    assert second["ok"] and second["summary"].startswith("2 passed")
    assert said[0].startswith("tests    pytest -m gpu tests: 1 failed, 1 passed")
    assert said[1] == "         FAILED tests/test_gpu.py::test_broken - assert 0"
    said, say = _lines()
    assert gpu_check["run_tests"](check.Clock(120), say, root=tmp_path / "nowhere")["status"] == "fail"
    assert said == [f"tests    FAILED: no tests folder at {tmp_path / 'nowhere' / 'tests'}"]


_FAKE_BENCH = r"""
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
base = dict(part="loss", size=192, dtype="float32", input_mib=10.0)
rows = [dict(base, method="l1", mode=None, region=None, median_ms=1.0, peak_extra_mib=5.0),
        dict(base, method="triton", mode="grid", region=8, median_ms=1.5, peak_extra_mib=6.0),
        dict(base, method="triton", mode="sliding", region=8, median_ms=%s, peak_extra_mib=6.0),
        dict(part="train", dtype="float32", method="l1", mode=None, region=None, median_ms=100.0),
        dict(part="train", dtype="float32", method="l1+contrastive", mode="grid", region=8, median_ms=101.0)]
json.dump({"results": rows}, open(out, "w"))
print("the tables")
"""


@pytest.mark.parametrize("sliding_ms,status", [("3.0", "pass"), ("4.5", "fail")])
def test_bench_part_reads_the_benchmark_json_and_checks_the_targets(tmp_path, gpu_check, sliding_ms, status):
    script = tmp_path / "bench.py"
    script.write_text(_FAKE_BENCH % sliding_ms)
    said, say = _lines()
    result = gpu_check["run_bench"](tmp_path / "check_bench.json", False, check.Clock(60), say, script=script)
    assert result["status"] == status and len(result["targets"]) == 5
    missed = [line for line in said if line.endswith("MISSED")]
    assert missed == ([] if status == "pass" else [f"target   {'sliding time vs L1':<30} float32     4.500  (<= 4)  MISSED"])


def test_bench_command_is_accepted_by_the_benchmark_script():
    # In a fresh interpreter started in benchmarks/ (the script's own imports resolve there), with
    # --device cuda allowed; gpu_check.py runs as a file.
    code = (
        "import json, runpy, torch\n"
        "torch.cuda.is_available = lambda: True\n"
        "import bench_pixel_contrastive as bench\n"
        f"gpu = runpy.run_path({str(GPU_CHECK)!r})\n"
        "got = []\n"
        "for quick in (False, True):\n"
        "    a = bench._parse_args(gpu['bench_command'](gpu['ROOT'] / 'x.json', quick)[2:])\n"
        "    got.append([a.device, a.modes, a.parts, a.methods, a.regions, a.dtypes])\n"
        "print(json.dumps(got))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=GPU_CHECK.parent, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for device, modes, parts, methods, regions, dtypes in json.loads(proc.stdout.splitlines()[-1]):
        assert device == "cuda" and modes == ["grid", "sliding"] and "train" in parts
        assert methods == ["l1", "triton", "torch"] and 8 in regions
        assert dtypes == ["float32", "bfloat16"]
