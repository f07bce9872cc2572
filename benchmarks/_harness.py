"""Machinery shared by the benchmark scripts: one fresh process per case, timing, peak memory, reports.

Each benchmark script describes its cases as JSON-able dicts and a ``run_case(case) -> dict`` function.
The driver runs every case with :func:`spawn_case` (``python script --_worker '<json>'`` in a fresh
interpreter, so that the memory of one case cannot leak into the next and an out-of-memory kill only
loses that case); the worker side is :func:`run_worker_if_requested`. Results are written with
:func:`write_report` as JSON (device, torch and python versions, command line, date) plus a markdown
table. Scripts import this module as ``from _harness import ...`` (run them as
``python benchmarks/<script>.py``: Python imports from the script's own folder first); a script run as
a module of the ``benchmarks`` package (``python -m benchmarks.high_pass_sigma``) imports it as
``from ._harness import ...``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "MIB",
    "RESULTS_DIR",
    "WORKER_FLAG",
    "MEMORY_METHOD_CPU",
    "MEMORY_METHOD_CUDA",
    "sync",
    "check_device",
    "device_name",
    "environment",
    "measure_peak_extra",
    "time_ms",
    "spawn_case",
    "run_worker_if_requested",
    "text_table",
    "markdown_table",
    "write_report",
]

MIB = 1024 * 1024
RESULTS_DIR = Path(__file__).resolve().parent / "results"
WORKER_FLAG = "--_worker"
STDERR_TAIL_CHARS = 2000

# ru_maxrss is the lifetime RSS peak of the process, so it can only be attributed to a computation that
# is the first one to push RSS that high: hence one fresh process per case, only a tiny warm-up before
# the measured step, and the timing runs after it.
MEMORY_METHOD_CPU = (
    "Each case runs in a fresh subprocess. After a tiny warm-up (to load lazily initialised code and "
    "thread pools) and the creation of the inputs, baseline = current RSS (resident pages of "
    "/proc/self/statm * page size), taken after gc.collect() and glibc malloc_trim(0) so that free heap "
    "pages cannot be reused unseen. Then ONE step is run and peak_extra = "
    "resource.getrusage(RUSAGE_SELF).ru_maxrss * 1024 - baseline, i.e. the lifetime RSS peak of the "
    "process minus the baseline; since it is the first large computation of the process, the lifetime "
    "peak is the peak of that step (the timing runs come after). If RSS never rose above the process's "
    "earlier peak (tiny cases), the value is only an upper bound and 'memory_resolved' is false "
    "(marked '(<=)' in tables). Includes the gradients the step creates. Resolution: one page."
)
MEMORY_METHOD_CUDA = (
    "Each case runs in a fresh subprocess. After one warm-up step: torch.cuda.reset_peak_memory_stats(); "
    "peak_extra = torch.cuda.max_memory_allocated() during one step minus torch.cuda.memory_allocated() "
    "before it (caching-allocator bytes of tensors, not the reserved pool or the CUDA context). Includes "
    "the gradients the step creates."
)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """Stop with a usage error when ``device`` cannot be benchmarked here (no CUDA, or no
    /proc/self/statm for the CPU memory measurement)."""
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    if device == "cpu" and not os.path.exists("/proc/self/statm"):
        parser.error("CPU memory measurement needs Linux /proc/self/statm")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model and torch's thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads"


def environment(device: torch.device) -> dict[str, Any]:
    """What a result file must say about where and how it was made."""
    env: dict[str, Any] = {
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            env["triton"] = None
    return env


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand glibc's free heap pages back to the OS, so that the measured step cannot silently reuse
    memory that is resident but free (which would hide it from the RSS numbers)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is a lower bound by that much
        pass


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_peak_extra(step: Callable[[], object], device: torch.device) -> dict[str, Any]:
    """Peak memory of ONE ``step()`` above what was in use just before it.

    CPU: lifetime RSS peak minus the RSS before the step; meaningful only when the step is the first
    large computation of a fresh process (see ``MEMORY_METHOD_CPU``). CUDA: ``max_memory_allocated``
    after a warm-up step. Returns ``{"peak_extra_mib", "memory_resolved", "memory_method", "result"}``
    where ``result`` is what the measured ``step()`` returned.
    """
    if device.type == "cuda":
        step()
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = step()
        sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {
            "peak_extra_mib": (peak - before) / MIB,
            "memory_resolved": True,
            "memory_method": "cuda",
            "result": result,
        }
    _release_free_heap()
    baseline = _current_rss_bytes()
    peak_before = _max_rss_bytes()
    result = step()
    peak_after = _max_rss_bytes()
    return {
        "peak_extra_mib": max(0, peak_after - baseline) / MIB,
        # False: RSS never rose above the pre-existing lifetime peak; the value is an upper bound.
        "memory_resolved": peak_after > peak_before,
        "memory_method": "cpu-rss",
        "result": result,
    }


def time_ms(step: Callable[[], object], device: torch.device, repeat: int, warmup: int) -> dict[str, Any]:
    """Wall time of ``step()`` in milliseconds: median and min over ``repeat`` runs after ``warmup``
    untimed ones, CUDA synchronised before and after each run."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "times_ms": times}


def spawn_case(script: Path, case: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run ``script --_worker '<json case>'`` in a fresh interpreter and return the JSON dict it printed
    as its last stdout line; on a failure, a timeout or a kill, ``{**case, "error": ...}``."""
    cmd = [sys.executable, str(Path(script).resolve()), WORKER_FLAG, json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**case, "error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode}"
            if -proc.returncode == 9:
                reason += " (probably out of memory)"
        else:
            reason = f"exit status {proc.returncode}"
        tail = proc.stderr.strip()[-STDERR_TAIL_CHARS:]
        last_line = tail.splitlines()[-1] if tail else ""
        return {**case, "error": f"{reason}: {last_line}".rstrip(": "), "stderr_tail": tail}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {**case, "error": "worker printed no result", "stdout_tail": proc.stdout[-STDERR_TAIL_CHARS:]}


def run_worker_if_requested(argv: list[str], run_case: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
    """Worker side of :func:`spawn_case`: if ``argv`` holds ``--_worker JSON``, run that case, print its
    result as one JSON line and return True; otherwise return False."""
    if WORKER_FLAG not in argv:
        return False
    index = argv.index(WORKER_FLAG)
    if index + 1 >= len(argv):
        raise SystemExit(f"{WORKER_FLAG} needs a JSON case")
    result = run_case(json.loads(argv[index + 1]))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return True


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Collection[int] = ()) -> str:
    """Fixed-width table; columns in ``left`` are left-aligned, the others right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Collection[int] = ()) -> str:
    """GitHub markdown table; columns in ``left`` are left-aligned, the others right-aligned."""
    align = ["---" if i in left else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_report(
    report: dict[str, Any],
    json_path: Path,
    markdown: str | None = None,
    markdown_path: Path | None = None,
) -> None:
    """Write ``report`` as indented JSON, and ``markdown`` to ``markdown_path`` when both are given."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {json_path}")
    if markdown is not None and markdown_path is not None:
        markdown_path = Path(markdown_path)
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
        print(f"wrote {markdown_path}")
