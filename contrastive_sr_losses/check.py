"""Verify the GPU path in one command: ``python -m contrastive_sr_losses.check``.

Parts (``--parts``, all three by default), in this order:

1. ``tests``: the GPU-marked tests (``pytest -m gpu tests``) and the rest of the Triton kernel and
   self-check tests (:data:`KERNEL_TEST_FILES`, which run the compiled kernels when there is a
   GPU), when the tests are there (a source checkout).
2. ``kernels``: the Triton kernels against the reference (eq 9 written plainly) at the benchmark's
   shape, N=16, 3x192x192, in float32 / bfloat16 / float16, grid and sliding mode, regions 4, 8
   and 16: the loss map and the ``sr`` and ``hr`` gradients (tolerances
   :data:`~contrastive_sr_losses.kernels.selfcheck.SELFCHECK_TOLERANCES`), and the verdict of
   ``backend='auto'``'s self-check on the same inputs (a failing one would mean a silent fallback).
3. ``bench``: the benchmark tables of ``benchmarks/bench_pixel_contrastive.py`` (a source
   checkout), float32 and bfloat16: the loss forward + backward against ``F.l1_loss``, and one
   EDSR-baseline x4 training step (batch 16, 48x48 LR patches) with and without the loss.

Then a verdict against the targets, at region 8 and for each benchmarked dtype:

- grid mode: the Triton loss's time <= 2x ``F.l1_loss``'s; sliding mode: <= 4x;
- extra memory: the loss's peak extra memory minus ``F.l1_loss``'s (both include ``sr.grad``) <=
  the input size (``sr`` + ``hr``), both modes;
- EDSR-baseline x4 step with ``L1 + 0.1 x`` grid-mode contrastive <= 1.02 x the L1-only step.

A JSON report (GPU name, versions, command, every part's results, the targets, the verdict) goes to
``benchmarks/results/check_<gpu>.json`` in a source checkout (``--out`` to choose), the benchmark's
own JSON and markdown tables beside it. Sized for a few minutes on an H100 (``--time-limit``, default
480 s: parts that would start later are reported as not run).

Without CUDA only the CPU-meaningful part runs: ``kernels``, in Triton's CPU interpreter at small
shapes (the command re-runs itself with ``TRITON_INTERPRET=1`` when the kernels were compiled);
``tests`` and ``bench`` are refused with one line each; no JSON unless ``--out`` is given.

Exit status: 0 every part ran and passed and every target is met; 1 a part failed or a target was
missed; 2 a usage error; 3 no CUDA device: what could run on the CPU passed, the GPU path is not
verified.

Examples::

    python -m contrastive_sr_losses.check                      # everything, JSON in benchmarks/results/
    python -m contrastive_sr_losses.check --parts kernels --quick   # a smoke test of the kernels
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from . import kernels
from .kernels.selfcheck import mismatch, run_triton_selfcheck
from .losses.pixel_contrastive import pixel_contrastive_loss

__all__ = ["main", "evaluate_targets", "TARGETS", "EXIT_OK", "EXIT_FAILED", "EXIT_NO_GPU"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GPU = 0, 1, 2, 3
ROOT = Path(__file__).resolve().parents[1]  # the source checkout, when there is one
TESTS = ROOT / "tests"
BENCH_SCRIPT = ROOT / "benchmarks" / "bench_pixel_contrastive.py"
#: Test files that run the compiled kernels on the GPU when there is one (marked or not).
KERNEL_TEST_FILES = ("tests/test_pixel_contrastive_triton.py", "tests/test_triton_selfcheck.py")
PARTS = ("tests", "kernels", "bench")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BENCH_DTYPES = ("float32", "bfloat16")
MODES = ("grid", "sliding")
#: ``(device type, --quick)``: the kernels part's input shape and regions.
KERNEL_CASES: dict[tuple[str, bool], tuple[tuple[int, int, int, int], tuple[int, ...]]] = {
    ("cuda", False): ((16, 3, 192, 192), (4, 8, 16)),
    ("cuda", True): ((2, 3, 48, 48), (4, 8, 16)),
    ("cpu", False): ((2, 3, 16, 16), (4, 8, 16)),
    ("cpu", True): ((1, 3, 8, 8), (4,)),
}
REFERENCE_IMAGES = 4  # the reference runs on this many images at a time (its memory is ~S x C x the input)
#: target name -> (mode, limit); measured at region 8 (see the module docstring).
TARGETS: dict[str, tuple[str, float]] = {
    "grid time vs L1": ("grid", 2.0),
    "sliding time vs L1": ("sliding", 4.0),
    "grid extra memory vs input": ("grid", 1.0),
    "sliding extra memory vs input": ("sliding", 1.0),
    "EDSR step time vs L1 step": ("grid", 1.02),
}
TARGET_REGION = 8


# ----------------------------------------------------------------------------------------------
# environment and output
# ----------------------------------------------------------------------------------------------
def _environment(device: torch.device, argv: Sequence[str]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "triton": None,
        "triton_interpreted": kernels.TRITON_INTERPRETED,
        "command": " ".join(["python -m contrastive_sr_losses.check", *argv]),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if kernels.TRITON_AVAILABLE:
        import triton

        env["triton"] = triton.__version__
    if device.type == "cuda":
        env["capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    return env


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


class _Clock:
    """The time left of ``--time-limit``."""

    def __init__(self, limit: float) -> None:
        self.end = time.monotonic() + limit

    def left(self) -> float:
        return self.end - time.monotonic()


# ----------------------------------------------------------------------------------------------
# part 1: the test suite's GPU tests
# ----------------------------------------------------------------------------------------------
def _pytest(args: Sequence[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1.0))
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


def run_tests(clock: _Clock, say: Callable[[str], None]) -> dict[str, Any]:
    runs = []
    for args in (["-m", "gpu", "tests"], ["-m", "not gpu", *KERNEL_TEST_FILES]):
        run = _pytest(args, clock.left())
        say(f"tests    pytest {' '.join(args)}: {run['summary']}")
        for line in run.get("failures", []):
            say(f"         {line}")
        runs.append(run)
    return {"status": "pass" if all(r["ok"] for r in runs) else "fail", "runs": runs}


# ----------------------------------------------------------------------------------------------
# part 2: the kernels against the reference
# ----------------------------------------------------------------------------------------------
def _map_and_grads(backend: str, sr: torch.Tensor, hr: torch.Tensor, weight: torch.Tensor, region: int, mode: str):
    sr, hr = sr.detach().clone().requires_grad_(), hr.detach().clone().requires_grad_()
    loss = pixel_contrastive_loss(sr, hr, region, mode=mode, reduction="none", backend=backend)
    (loss * weight).sum().backward()
    return loss.detach(), sr.grad, hr.grad


def _kernel_case(
    shape: tuple[int, ...], dtype: torch.dtype, mode: str, region: int, device: torch.device
) -> dict[str, Any]:
    """Triton vs the reference (float32, on the same rounded values) and the self-check, one configuration."""
    gen = torch.Generator().manual_seed(0)
    sr = torch.rand(shape, generator=gen)
    hr = (torch.rand(shape, generator=gen) * 255).round() / 255  # 8-bit HR: many exact positives
    sr, hr = sr.to(device, dtype), hr.to(device, dtype)
    n, _, h, w = shape
    weight = torch.linspace(0.5, 1.5, n * h * w, device=device).view(n, 1, h, w)
    got = _map_and_grads("triton", sr, hr, weight, region, mode)
    parts = [
        _map_and_grads("reference", sr[i : i + REFERENCE_IMAGES].float(), hr[i : i + REFERENCE_IMAGES].float(),
                       weight[i : i + REFERENCE_IMAGES], region, mode)
        for i in range(0, n, REFERENCE_IMAGES)
    ]  # fmt: skip
    expected = [torch.cat(p) for p in zip(*parts)]
    problems = [
        why
        for name, a, b in zip(("loss", "grad sr", "grad hr"), got, expected)
        if (why := mismatch(name, a, b.to(a.dtype), "the reference")) is not None
    ]
    verdict = run_triton_selfcheck(sr, hr, region, 1.0, mode)
    if verdict is None or not verdict.uses_triton:
        problems.append(f"the self-check would fall back to 'torch': {verdict.detail if verdict else 'no verdict'}")
    return {"ok": not problems, "problems": problems, "selfcheck": verdict.detail if verdict else None}


def run_kernels(device: torch.device, quick: bool, clock: _Clock, say: Callable[[str], None]) -> dict[str, Any]:
    shape, regions = KERNEL_CASES[(device.type, quick)]
    where = "compiled, on the GPU" if device.type == "cuda" else "in Triton's CPU interpreter"
    say(f"kernels  Triton vs reference, {where}, shape {shape}")
    cases = []
    for dtype_name, dtype in DTYPES.items():
        for mode in MODES:
            for region in regions:
                case: dict[str, Any] = {"dtype": dtype_name, "mode": mode, "region": region, "shape": list(shape)}
                if clock.left() <= 0:
                    case.update(ok=False, problems=["not run: --time-limit reached"])
                else:
                    try:
                        case.update(_kernel_case(shape, dtype, mode, region, device))
                    except Exception as error:  # one configuration's failure must not hide the others
                        case.update(ok=False, problems=[f"raised {type(error).__name__}: {str(error).strip()[:300]}"])
                state = "ok" if case["ok"] else "FAILED: " + "; ".join(case["problems"])
                say(f"         {dtype_name:<8} {mode:<7} region {region:<2} {state}")
                cases.append(case)
    return {"status": "pass" if all(c["ok"] for c in cases) else "fail", "cases": cases}


# ----------------------------------------------------------------------------------------------
# part 3: the benchmark tables, and the targets
# ----------------------------------------------------------------------------------------------
def _bench_command(out: Path, quick: bool) -> list[str]:
    sizes, regions, repeat, warmup = (["64"], ["8"], "3", "1") if quick else (["192"], ["4", "8", "16"], "20", "3")
    train = ["--train-batch", "4", "--lr-size", "16"] if quick else []
    return [
        sys.executable, str(BENCH_SCRIPT), "--device", "cuda", "--sizes", *sizes, "--regions", *regions,
        "--modes", *MODES, "--dtypes", *BENCH_DTYPES, "--methods", "l1", "triton", "torch",
        "--parts", "loss", "train", "--repeat", repeat, "--warmup", warmup, "--timeout", "180", *train,
        "--out", str(out), "--markdown", str(out.with_suffix(".md")),
    ]  # fmt: skip


def evaluate_targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The :data:`TARGETS` checked on the ``results`` of ``bench_pixel_contrastive.py`` (its JSON's list).

    Every target is reported for every dtype the results hold; a target whose cases are missing or
    failed is not met.

    Example:
        >>> case = dict(part="loss", size=192, dtype="float32", region=None, mode=None, input_mib=10.0)
        >>> rows = [dict(case, method="l1", median_ms=1.0, peak_extra_mib=5.0),
        ...         dict(case, method="triton", mode="grid", region=8, median_ms=1.5, peak_extra_mib=9.0)]
        >>> [(t["target"], t["ok"]) for t in evaluate_targets(rows)][:3]
        [('grid time vs L1', True), ('sliding time vs L1', False), ('grid extra memory vs input', True)]
    """
    ok = [r for r in results if "error" not in r]
    checks: list[dict[str, Any]] = []
    for dtype in sorted({r["dtype"] for r in results}, key=list(DTYPES).index):

        def find(part: str, method: str, mode: str | None, dtype: str = dtype) -> dict[str, Any] | None:
            for r in ok:
                if r["part"] == part and r["dtype"] == dtype and r["method"] == method and r["mode"] == mode and (
                    mode is None or part == "train" or r["region"] == TARGET_REGION
                ):
                    return r
            return None

        l1, l1_step = find("loss", "l1", None), find("train", "l1", None)
        for name, (mode, limit) in TARGETS.items():
            value = None
            if name.startswith("EDSR"):
                step = find("train", "l1+contrastive", mode)
                if step and l1_step:
                    value = step["median_ms"] / l1_step["median_ms"]
            else:
                loss = find("loss", "triton", mode)
                if loss and l1 and "time" in name:
                    value = loss["median_ms"] / l1["median_ms"]
                elif loss and l1:
                    value = (loss["peak_extra_mib"] - l1["peak_extra_mib"]) / loss["input_mib"]
            checks.append(
                {"target": name, "dtype": dtype, "measured": value, "limit": limit,
                 "ok": value is not None and value <= limit}
            )  # fmt: skip
    return checks


def run_bench(out: Path, quick: bool, clock: _Clock, say: Callable[[str], None]) -> dict[str, Any]:
    cmd = _bench_command(out, quick)
    say(f"bench    {' '.join(cmd[1:])}")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=max(clock.left(), 1.0))  # its tables print as it goes
    except subprocess.TimeoutExpired:
        return {"status": "fail", "detail": "timed out (--time-limit)", "targets": []}
    if proc.returncode != 0 or not out.is_file():
        return {"status": "fail", "detail": f"the benchmark exited with status {proc.returncode}", "targets": []}
    report = json.loads(out.read_text())
    targets = evaluate_targets(report["results"])
    failed_cases = [r for r in report["results"] if "error" in r]
    for t in targets:
        measured = "missing" if t["measured"] is None else f"{t['measured']:.3f}"
        state = "ok" if t["ok"] else "MISSED"
        say(f"target   {t['target']:<30} {t['dtype']:<8} {measured:>8}  (<= {t['limit']:g})  {state}")
    status = "pass" if targets and all(t["ok"] for t in targets) and not failed_cases else "fail"
    return {"status": status, "json": str(out), "failed_cases": len(failed_cases), "targets": targets}


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------
def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m contrastive_sr_losses.check",
        description="Verify the GPU path: GPU tests, Triton kernels vs the reference, benchmark tables and targets.",
        epilog="exit status: 0 verified, 1 a failure or a missed target, 2 usage, 3 no CUDA device (CPU parts only)",
    )
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (all)")
    p.add_argument("--quick", action="store_true", help="small shapes and few repeats (a smoke test, not a verdict)")
    p.add_argument("--out", type=Path, default=None, help="JSON report (benchmarks/results/check_<gpu>.json)")
    p.add_argument("--no-json", action="store_true", help="write no JSON report")
    p.add_argument("--time-limit", type=float, default=480.0, help="seconds for all parts (480)")
    args = p.parse_args(argv)
    if not args.time_limit > 0:
        p.error(f"--time-limit must be > 0, got {args.time_limit}")
    if args.out is not None and args.no_json:
        p.error("--out and --no-json contradict each other: give one")
    return args


def _rerun_interpreted() -> bool:
    """Without CUDA the kernels only run in the interpreter, which must be on before their import."""
    return (
        not torch.cuda.is_available()
        and kernels.TRITON_AVAILABLE
        and not kernels.TRITON_INTERPRETED
        and os.environ.get("TRITON_INTERPRET") != "1"  # set and still compiled: no loop
    )


def main(argv: Sequence[str] | None = None, quiet: bool = False) -> int:
    """Run the check; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK
    say: Callable[[str], None] = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    if "kernels" in args.parts and _rerun_interpreted():
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        return subprocess.call([sys.executable, "-m", "contrastive_sr_losses.check", *argv], env=env)

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    clock = _Clock(args.time_limit)
    env = _environment(device, argv)
    say(f"check    {env['device']} | torch {env['torch']} | CUDA {env['cuda']} | triton {env['triton']}"
        + (" (interpreted)" if env["triton_interpreted"] else ""))  # fmt: skip
    out = args.out
    if out is None and not args.no_json and gpu:
        folder = ROOT / "benchmarks" / "results" if BENCH_SCRIPT.is_file() else Path.cwd()
        out = folder / f"check_{_slug(env['device'])}.json"

    parts: dict[str, dict[str, Any]] = {}
    for part in args.parts:
        if not gpu and part in ("tests", "bench"):
            parts[part] = {"status": "not run", "detail": "no CUDA device"}
            what = (
                "the GPU tests need one; the CPU suite is `pytest`" if part == "tests"
                else "the targets are GPU numbers; CPU tables: python benchmarks/bench_pixel_contrastive.py"
            )  # fmt: skip
            say(f"{part:<8} not run: no CUDA device ({what})")
        elif part == "tests" and not TESTS.is_dir():
            parts[part] = {"status": "fail" if gpu else "not run", "detail": f"no tests folder at {TESTS}"}
            say(f"tests    not run: no tests folder at {TESTS} (run from a source checkout)")
        elif part == "bench" and not BENCH_SCRIPT.is_file():
            parts[part] = {"status": "fail", "detail": f"no {BENCH_SCRIPT}"}
            say(f"bench    not run: no {BENCH_SCRIPT} (run from a source checkout)")
        elif part == "kernels" and not (gpu or kernels.TRITON_INTERPRETED):
            reason = kernels.TRITON_UNAVAILABLE_REASON or "the kernels are compiled and there is no CUDA device"
            parts[part] = {"status": "fail" if gpu else "not run", "detail": reason}
            say(f"kernels  not run: {reason}")
        elif clock.left() <= 0:
            parts[part] = {"status": "fail", "detail": "not run: --time-limit reached"}
            say(f"{part:<8} not run: --time-limit reached")
        elif part == "tests":
            parts[part] = run_tests(clock, say)
        elif part == "kernels":
            if not kernels.TRITON_AVAILABLE:
                parts[part] = {"status": "fail", "detail": kernels.TRITON_UNAVAILABLE_REASON}
                say(f"kernels  FAILED: triton is not importable ({kernels.TRITON_UNAVAILABLE_REASON})")
            else:
                parts[part] = run_kernels(device, args.quick, clock, say)
        else:
            bench_out = out.with_name(out.stem + "_bench.json") if out else Path(tempfile.mkdtemp()) / "bench.json"
            parts[part] = run_bench(bench_out, args.quick, clock, say)

    statuses = [p["status"] for p in parts.values()]
    if "fail" in statuses:
        code, verdict = EXIT_FAILED, "FAILED: " + ", ".join(k for k, p in parts.items() if p["status"] == "fail")
    elif not gpu:
        code, verdict = EXIT_NO_GPU, "NOT VERIFIED: no CUDA device; the parts that run on the CPU passed"
    elif args.quick or set(args.parts) != set(PARTS):
        partial = "--quick" if args.quick else "not every part"
        code, verdict = EXIT_OK, f"passed (partial: {partial}, not a verdict on the targets)"
    else:
        code, verdict = EXIT_OK, "VERIFIED: every part passed and every target is met"
    say(f"verdict  {verdict}")
    if out is not None:
        report = {**env, "parts": parts, "verdict": verdict, "exit_status": code, "quick": args.quick}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        say(f"wrote    {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
