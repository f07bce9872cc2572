"""Verify the GPU path from a source checkout, in one command: ``python benchmarks/gpu_check.py``.

The package's ``python -m contrastive_sr_losses.check`` checks the Triton kernels with nothing but
the installed package; this script is the same driver (:func:`contrastive_sr_losses.check.main`)
with the two parts that need the checkout. Parts (``--parts``, all three by default), in this order:

1. ``tests``: the GPU-marked tests (``pytest -m gpu tests``) and the rest of the Triton kernel and
   self-check tests (:data:`KERNEL_TEST_FILES`, which run the compiled kernels when there is a GPU).
2. ``kernels``: the package's kernel check (:func:`contrastive_sr_losses.check.run_kernels`): the
   Triton kernels against the reference at N=16, 3x192x192, float32 / bfloat16 / float16, both
   modes, regions 4, 8 and 16, and the verdict of ``backend='auto'``'s self-check.
3. ``bench``: the benchmark tables of ``benchmarks/bench_pixel_contrastive.py``, float32 and
   bfloat16: the loss forward + backward against ``F.l1_loss``, and one EDSR-baseline x4 training
   step (batch 16, 48x48 LR patches) with and without the loss; then the verdict against
   :data:`contrastive_sr_losses.check.TARGETS` at region 8 (grid-mode loss <= 2x ``F.l1_loss``'s time,
   sliding <= 4x, peak extra memory over ``F.l1_loss``'s <= the input size, the EDSR step with
   ``L1 + 0.1 x`` contrastive <= 1.02x the L1 step).

A JSON report (GPU name, versions, command, every part's results, the targets, the verdict) goes to
``benchmarks/results/check_<gpu>.json`` (``--out`` to choose), the benchmark's own JSON and markdown
tables beside it. Sized for a few minutes on an H100 (``--time-limit``, default 480 s). Without CUDA
only the kernels run (in Triton's CPU interpreter, small shapes); ``tests`` and ``bench`` are refused
with one line each. Exit status as the package's command: 0 every part ran and passed and every
target is met (or, with ``--quick`` / fewer parts, what ran passed), 1 a failure or a missed target,
2 usage, 3 no CUDA device.

Examples::

    python benchmarks/gpu_check.py                          # everything, JSON in benchmarks/results/
    python benchmarks/gpu_check.py --parts tests --quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from contrastive_sr_losses import check
from contrastive_sr_losses.losses.pixel_contrastive import PIXEL_CONTRASTIVE_MODES

ROOT = Path(__file__).resolve().parents[1]
BENCH_SCRIPT = ROOT / "benchmarks" / "bench_pixel_contrastive.py"
#: Test files that run the compiled kernels on the GPU when there is one (marked or not).
KERNEL_TEST_FILES = ("tests/kernels/test_triton.py", "tests/kernels/test_selfcheck.py")
BENCH_DTYPES = ("float32", "bfloat16")
Say = Callable[[str], None]


# ----------------------------------------------------------------------------------------------
# part 1: the test suite's GPU tests
# ----------------------------------------------------------------------------------------------
def _pytest(args: Sequence[str], timeout: float, root: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        return {"command": " ".join(cmd[2:]), "ok": False, "summary": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {
        "command": " ".join(cmd[2:]),
        "ok": proc.returncode == 0,
        "summary": lines[-1].strip("= ") if lines else f"exit status {proc.returncode}",
        "failures": failures,
        "output_tail": (proc.stdout + proc.stderr)[-4000:] if proc.returncode else "",
    }


def run_tests(clock: check.Clock, say: Say, root: Path = ROOT) -> dict[str, Any]:
    """The GPU-marked tests, then the kernel test files, with pytest in ``root``; one line per run."""
    if not (root / "tests").is_dir():
        say(f"tests    FAILED: no tests folder at {root / 'tests'}")
        return {"status": "fail", "detail": f"no tests folder at {root / 'tests'}"}
    runs = []
    for args in (["-m", "gpu", "tests"], ["-m", "not gpu", *KERNEL_TEST_FILES]):
        run = _pytest(args, clock.left(), root)
        say(f"tests    pytest {' '.join(args)}: {run['summary']}")
        for line in run.get("failures", []):
            say(f"         {line}")
        runs.append(run)
    return {"status": "pass" if all(r["ok"] for r in runs) else "fail", "runs": runs}


# ----------------------------------------------------------------------------------------------
# part 3: the benchmark tables, and the targets
# ----------------------------------------------------------------------------------------------
def bench_command(out: Path, quick: bool, script: Path = BENCH_SCRIPT) -> list[str]:
    """The benchmark's command line: CUDA, both modes, :data:`BENCH_DTYPES`, loss and training step."""
    sizes, regions, repeat, warmup = (["64"], ["8"], "3", "1") if quick else (["192"], ["4", "8", "16"], "20", "3")
    train = ["--train-batch", "4", "--lr-size", "16"] if quick else []
    return [
        sys.executable, str(script), "--device", "cuda", "--sizes", *sizes, "--regions", *regions,
        "--modes", *PIXEL_CONTRASTIVE_MODES, "--dtypes", *BENCH_DTYPES, "--methods", "l1", "triton", "torch",
        "--parts", "loss", "train", "--repeat", repeat, "--warmup", warmup, "--timeout", "180", *train,
        "--out", str(out), "--markdown", str(out.with_suffix(".md")),
    ]  # fmt: skip


def run_bench(out: Path, quick: bool, clock: check.Clock, say: Say, script: Path = BENCH_SCRIPT) -> dict[str, Any]:
    """Run the benchmark into ``out`` (JSON; markdown beside it) and check the targets on its results."""
    if not script.is_file():
        say(f"bench    FAILED: no {script}")
        return {"status": "fail", "detail": f"no {script}", "targets": []}
    cmd = bench_command(out, quick, script)
    say(f"bench    {' '.join(cmd[1:])}")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=max(clock.left(), 1.0))  # its tables print as it goes
    except subprocess.TimeoutExpired:
        return {"status": "fail", "detail": "timed out (--time-limit)", "targets": []}
    if proc.returncode != 0 or not out.is_file():
        return {"status": "fail", "detail": f"the benchmark exited with status {proc.returncode}", "targets": []}
    report = json.loads(out.read_text())
    targets = check.evaluate_targets(report["results"])
    failed_cases = [r for r in report["results"] if "error" in r]
    for t in targets:
        measured = "missing" if t["measured"] is None else f"{t['measured']:.3f}"
        state = "ok" if t["ok"] else "MISSED"
        say(f"target   {t['target']:<30} {t['dtype']:<8} {measured:>8}  (<= {t['limit']:g})  {state}")
    status = "pass" if targets and all(t["ok"] for t in targets) and not failed_cases else "fail"
    return {"status": status, "json": str(out), "failed_cases": len(failed_cases), "targets": targets}


# ----------------------------------------------------------------------------------------------
# driver: the package's, with the two parts above
# ----------------------------------------------------------------------------------------------
def _tests_part(args: argparse.Namespace, clock: check.Clock, say: Say, out: Path | None) -> dict[str, Any]:
    return run_tests(clock, say)


def _bench_part(args: argparse.Namespace, clock: check.Clock, say: Say, out: Path | None) -> dict[str, Any]:
    bench_out = out.with_name(out.stem + "_bench.json") if out else Path(tempfile.mkdtemp()) / "bench.json"
    return run_bench(bench_out, args.quick, clock, say)


def main(argv: Sequence[str] | None = None, quiet: bool = False) -> int:
    """Run every part (see the module docstring); returns the exit status."""
    return check.main(
        argv,
        quiet,
        runners={"tests": _tests_part, "bench": _bench_part},
        prog="python benchmarks/gpu_check.py",
        rerun=(str(Path(__file__).resolve()),),
        report_dir=ROOT / "benchmarks" / "results",
    )


if __name__ == "__main__":
    sys.exit(main())
