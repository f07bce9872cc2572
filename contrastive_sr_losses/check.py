"""Check the Triton kernels on this machine: ``python -m contrastive_sr_losses.check``.

What ``backend='auto'``'s self-check warning (:class:`~contrastive_sr_losses.kernels.TritonSelfCheckWarning`)
points to; it needs only the installed package. The ``kernels`` part runs the Triton kernels against
the reference (eq 9 written plainly) at the benchmark's shape, N=16, 3x192x192, in float32 /
bfloat16 / float16, grid and sliding mode, regions 4, 8 and 16: the loss map and the ``sr`` and
``hr`` gradients (tolerances :data:`~contrastive_sr_losses.kernels.selfcheck.SELFCHECK_TOLERANCES`),
and the verdict of ``backend='auto'``'s self-check on the same inputs (a failing one would mean a
silent fallback).

The other two parts of a GPU verification need a source checkout and are run there by
``python benchmarks/gpu_check.py`` (the same driver, with every part):

- ``tests``: the GPU-marked tests and the Triton kernel and self-check tests;
- ``bench``: the benchmark tables of ``benchmarks/bench_pixel_contrastive.py`` and a verdict against
  the :data:`TARGETS` (computed by :func:`evaluate_targets`) at region 8, for each benchmarked dtype:
  grid mode: the Triton loss's time <= 2x ``F.l1_loss``'s; sliding mode: <= 4x; extra memory: the
  loss's peak extra memory minus ``F.l1_loss``'s (both include ``sr.grad``) <= the input size
  (``sr`` + ``hr``), both modes; EDSR-baseline x4 step with ``L1 + 0.1 x`` grid-mode contrastive
  <= 1.02 x the L1-only step.

Here they are reported as not run, each with one line saying why; the verdict says "passed" only
for the parts that ran. Without CUDA the kernels run in Triton's CPU interpreter at small shapes
(the command re-runs itself with ``TRITON_INTERPRET=1`` when the kernels were compiled); without
triton they are not run either, and the line says why.

A JSON report (device, versions, command, every part's results, the verdict) goes to ``--out``, or
on a GPU to ``check_<gpu>.json`` in the current folder (``--no-json``: none). ``--time-limit``
(default 480 s): parts or cases that would start later are reported as not run.

Exit status: 0 every part that ran passed on a GPU (the verdict says which; "VERIFIED" only when
every part ran and every target is met); 1 a part failed, a target was missed, or on a GPU nothing
ran; 2 a usage error; 3 no CUDA device: the GPU path is not verified (the verdict says what ran on the
CPU and passed, and what did not run).

Examples::

    python -m contrastive_sr_losses.check                           # the kernels, on this machine
    python -m contrastive_sr_losses.check --parts kernels --quick   # a smoke test of the kernels
    python benchmarks/gpu_check.py                                  # from a checkout: every part
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
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from . import kernels
from .kernels.selfcheck import mismatch, run_triton_selfcheck
from .losses.pixel_contrastive import pixel_contrastive_loss

__all__ = [
    "main",
    "evaluate_targets",
    "run_kernels",
    "environment",
    "Clock",
    "PartRunner",
    "TARGETS",
    "PARTS",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_NO_GPU",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GPU = 0, 1, 2, 3
PARTS = ("tests", "kernels", "bench")
#: Why a part is not run by the package's command: what it needs, and where it runs.
CHECKOUT_ONLY = {
    "tests": "the test suite is not installed with the package; from a source checkout: python benchmarks/gpu_check.py",
    "bench": "the benchmark is not installed with the package; from a source checkout: python benchmarks/gpu_check.py",
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MODES = ("grid", "sliding")
#: ``(device type, --quick)``: the kernels part's input shape and regions.
KERNEL_CASES: dict[tuple[str, bool], tuple[tuple[int, int, int, int], tuple[int, ...]]] = {
    ("cuda", False): ((16, 3, 192, 192), (4, 8, 16)),
    ("cuda", True): ((2, 3, 48, 48), (4, 8, 16)),
    ("cpu", False): ((2, 3, 16, 16), (4, 8, 16)),
    ("cpu", True): ((1, 3, 8, 8), (4,)),
}
REFERENCE_IMAGES = 4  # the reference runs on this many images at a time (its memory is ~S x C x the input)
#: target name -> (mode, limit); measured at region 8 by the ``bench`` part (see the module docstring).
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
def environment(device: torch.device, command: str) -> dict[str, Any]:
    """Device, versions, the command line and the date, as the JSON report's header."""
    env: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "triton": None,
        "triton_interpreted": kernels.TRITON_INTERPRETED,
        "command": command,
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


class Clock:
    """The time left of ``--time-limit``."""

    def __init__(self, limit: float) -> None:
        self.end = time.monotonic() + limit

    def left(self) -> float:
        return self.end - time.monotonic()


#: A part that needs more than the package (``tests``, ``bench``): ``(args, clock, say, report path)``
#: -> a dict with ``"status"`` (``'pass'``, ``'fail'`` or ``'not run'``) and details.
PartRunner = Callable[[argparse.Namespace, Clock, Callable[[str], None], Path | None], dict[str, Any]]


# ----------------------------------------------------------------------------------------------
# the kernels against the reference
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


def run_kernels(device: torch.device, quick: bool, clock: Clock, say: Callable[[str], None]) -> dict[str, Any]:
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
# the benchmark targets (the ``bench`` part runs in a checkout: benchmarks/gpu_check.py)
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------
def _parse_args(argv: Sequence[str], prog: str, description: str, json_default: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="exit status: 0 passed on a GPU (the verdict names the parts), 1 a failure, a missed target or "
        "nothing run, 2 usage, 3 no CUDA device (CPU parts only)",
    )
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (all)")
    p.add_argument("--quick", action="store_true", help="small shapes and few repeats (a smoke test, not a verdict)")
    p.add_argument("--out", type=Path, default=None, help=f"JSON report ({json_default})")
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


def _run_kernel_part(device: torch.device, quick: bool, clock: Clock, say: Callable[[str], None]) -> dict[str, Any]:
    gpu = device.type == "cuda"
    if not kernels.TRITON_AVAILABLE:
        reason = f"triton is not importable ({kernels.TRITON_UNAVAILABLE_REASON})"
        say(f"kernels  {'FAILED' if gpu else 'not run'}: {reason}")
        return {"status": "fail" if gpu else "not run", "detail": reason}
    if not (gpu or kernels.TRITON_INTERPRETED):
        reason = "the kernels are compiled and there is no CUDA device"
        say(f"kernels  not run: {reason}")
        return {"status": "not run", "detail": reason}
    return run_kernels(device, quick, clock, say)


def _verdict(parts: Mapping[str, Mapping[str, Any]], gpu: bool, quick: bool) -> tuple[int, str]:
    """Exit status and verdict line: "passed" names only the parts that ran."""
    by_status: dict[str, list[str]] = {}
    for name, part in parts.items():
        by_status.setdefault(part["status"], []).append(name)
    if "fail" in by_status:
        return EXIT_FAILED, "FAILED: " + ", ".join(by_status["fail"])
    passed, not_run = by_status.get("pass", []), by_status.get("not run", [])
    summary = f"passed: {', '.join(passed)}" if passed else "nothing ran"
    summary += f"; not run: {', '.join(not_run)}" if not_run else ""
    if not gpu:
        return EXIT_NO_GPU, f"NOT VERIFIED: no CUDA device; {summary}"
    if not passed:
        return EXIT_FAILED, f"NOT VERIFIED: {summary}"
    if quick or not_run or set(parts) != set(PARTS):
        partial = "--quick" if quick else "not every part"
        return EXIT_OK, f"{summary} (partial: {partial}, not a verdict on the targets)"
    return EXIT_OK, "VERIFIED: every part passed and every target is met"


def main(
    argv: Sequence[str] | None = None,
    quiet: bool = False,
    *,
    runners: Mapping[str, PartRunner] | None = None,
    prog: str = "python -m contrastive_sr_losses.check",
    rerun: Sequence[str] = ("-m", "contrastive_sr_losses.check"),
    report_dir: Path | None = None,
) -> int:
    """Run the check; returns the exit status (see the module docstring).

    ``runners`` supplies the parts that need a source checkout (``tests``, ``bench``); without one a
    part is reported as not run, with the reason. ``prog`` and ``rerun`` (the arguments after the
    Python executable that start this command again) name the command; ``report_dir`` is where the
    JSON report goes on a GPU without ``--out`` (default: the current folder).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    runners = dict(runners or {})
    json_default = f"{report_dir or '.'}/check_<gpu>.json on a GPU"
    description = "Check the Triton kernels against the reference" + (
        ", and run the GPU tests and the benchmark targets" if runners else " (the GPU tests and benchmark "
        "targets need a source checkout: python benchmarks/gpu_check.py)"
    )
    try:
        args = _parse_args(argv, prog, description, json_default)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK
    say: Callable[[str], None] = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    if "kernels" in args.parts and _rerun_interpreted():
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        return subprocess.call([sys.executable, *rerun, *argv], env=env)

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    clock = Clock(args.time_limit)
    env = environment(device, " ".join([prog, *argv]))
    say(f"check    {env['device']} | torch {env['torch']} | CUDA {env['cuda']} | triton {env['triton']}"
        + (" (interpreted)" if env["triton_interpreted"] else ""))  # fmt: skip
    out = args.out
    if out is None and not args.no_json and gpu:
        out = (report_dir or Path.cwd()) / f"check_{_slug(env['device'])}.json"

    parts: dict[str, dict[str, Any]] = {}
    for part in args.parts:
        if part != "kernels" and part not in runners:
            parts[part] = {"status": "not run", "detail": CHECKOUT_ONLY[part]}
            say(f"{part:<8} not run: {CHECKOUT_ONLY[part]}")
        elif not gpu and part in ("tests", "bench"):
            parts[part] = {"status": "not run", "detail": "no CUDA device"}
            what = (
                "the GPU tests need one; the CPU suite is `pytest`" if part == "tests"
                else "the targets are GPU numbers; CPU tables: python benchmarks/bench_pixel_contrastive.py"
            )  # fmt: skip
            say(f"{part:<8} not run: no CUDA device ({what})")
        elif clock.left() <= 0:
            parts[part] = {"status": "fail", "detail": "not run: --time-limit reached"}
            say(f"{part:<8} not run: --time-limit reached")
        elif part == "kernels":
            parts[part] = _run_kernel_part(device, args.quick, clock, say)
        else:
            parts[part] = runners[part](args, clock, say, out)

    code, verdict = _verdict(parts, gpu, args.quick)
    say(f"verdict  {verdict}")
    if out is not None:
        report = {**env, "parts": parts, "verdict": verdict, "exit_status": code, "quick": args.quick}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        say(f"wrote    {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
