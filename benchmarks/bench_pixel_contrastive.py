"""Benchmark of the pixel contrastive loss: forward + backward time and peak extra memory.

Three methods are compared on random ``(batch, channels, size, size)`` inputs (uniform in [0, 1),
fixed seed; ``sr`` requires grad, ``hr`` does not):

* ``l1``        -- ``F.l1_loss(sr, hr)``, the baseline every SR model already pays for (it does not
                   depend on ``region``, so it is measured once per size and stored with region null);
* ``torch``     -- ``pixel_contrastive_loss(..., backend="torch")``, the default (``"auto"``) path:
                   chunked, analytic backward, bounded memory;
* ``reference`` -- ``pixel_contrastive_loss(..., backend="reference")``, eq 9 written out and
                   differentiated by autograd (materialises ``(blocks, S, S, C)`` differences).

What is measured, per (method, size, region) case, each in a fresh Python subprocess so that the
memory numbers of one case cannot leak into another and an out-of-memory kill only loses that case:

* time: ``loss = f(sr, hr); loss.backward()`` timed with ``time.perf_counter()`` (bracketed by
  ``torch.cuda.synchronize()`` on CUDA), ``sr.grad`` reset to None before each run; median and min
  in milliseconds over ``--repeat`` runs, after ``--warmup`` untimed runs;
* peak extra memory of one forward + backward, above what was resident just before it (the inputs,
  the interpreter and torch); see ``_measure_peak_extra_cpu`` / ``_measure_peak_extra_cuda``. It
  includes the ``sr.grad`` tensor (one input-sized tensor) that the backward creates. The input
  size (sr + hr) is reported beside it.

Results go to a JSON file (default ``benchmarks/results/pixel_contrastive_<device>.json``) and a
fixed-width table is printed; ``--markdown PATH`` also writes that table as GitHub markdown.

Examples::

    python benchmarks/bench_pixel_contrastive.py                      # default grid, CPU
    python benchmarks/bench_pixel_contrastive.py --sizes 144 --regions 8
    python benchmarks/bench_pixel_contrastive.py --device cuda --dtype bfloat16 --markdown bench.md

The thread count is torch's default (set ``OMP_NUM_THREADS`` to change it); it is recorded in the
``device`` field. Run it on an otherwise idle machine: timings of a loaded CPU are not comparable.
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
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from contrastive_sr_losses import pixel_contrastive_loss

METHODS: tuple[str, ...] = ("l1", "torch", "reference")
METHOD_LABELS: dict[str, str] = {"l1": "L1", "torch": "torch (default)", "reference": "reference"}
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
SEED = 0
MIB = 1024 * 1024
RESULTS_DIR = Path(__file__).resolve().parent / "results"
WORKER_FLAG = "--_worker"
STDERR_TAIL_CHARS = 2000
ERROR_CHARS_IN_TABLE = 80
# Relative tolerance of the torch-vs-reference loss check (both compute in float32 or float64).
LOSS_RTOL: dict[str, float] = {"float32": 1e-4, "bfloat16": 1e-3, "float16": 1e-3}
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# CPU peak memory. ru_maxrss is the lifetime RSS peak of the process, so it can only be attributed to
# a computation that is the first one to push RSS that high: hence one fresh process per case, only a
# tiny warm-up before the measured forward+backward, and the timing runs after it.
MEMORY_METHOD_CPU = (
    "Each case runs in a fresh subprocess. After `import torch`, a tiny forward+backward of the same "
    "method (to load lazily initialised code and thread pools) and the creation of the inputs, "
    "baseline = current RSS (resident pages of /proc/self/statm * page size), taken after "
    "gc.collect() and glibc malloc_trim(0) so that free heap pages cannot be reused unseen. Then ONE "
    "forward+backward is run and peak_extra = resource.getrusage(RUSAGE_SELF).ru_maxrss * 1024 - "
    "baseline, i.e. the lifetime RSS peak of the process minus the baseline; since it is the first "
    "large computation of the process, the lifetime peak is the peak of that forward+backward (the "
    "timing runs come after). If RSS never rose above the process's earlier peak (tiny cases), the "
    "value is only an upper bound and 'memory_resolved' is false (marked '(<=)' in the table). "
    "Includes sr.grad. Resolution: one page."
)
MEMORY_METHOD_CUDA = (
    "Each case runs in a fresh subprocess. After a warm-up forward+backward and sr.grad = None: "
    "torch.cuda.reset_peak_memory_stats(); peak_extra = torch.cuda.max_memory_allocated() after one "
    "forward+backward minus torch.cuda.memory_allocated() before it (caching-allocator bytes of "
    "tensors, not the reserved pool or the CUDA context). Includes sr.grad."
)


# --------------------------------------------------------------------------------------------
# Worker side: one (method, size, region) case, run in its own process.
# --------------------------------------------------------------------------------------------


def _loss_fn(method: str, region: int | None) -> LossFn:
    if method == "l1":
        return F.l1_loss
    if method in ("torch", "reference"):
        assert region is not None

        def fn(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
            return pixel_contrastive_loss(sr, hr, region, backend=method)

        return fn
    raise ValueError(f"unknown method {method!r}")


def _make_inputs(
    batch: int, channels: int, size: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded uniform [0, 1) inputs, drawn on the CPU in float32: every device / dtype sees the same values."""
    gen = torch.Generator().manual_seed(SEED)
    shape = (batch, channels, size, size)
    sr = torch.rand(shape, generator=gen).to(device=device, dtype=dtype).requires_grad_()
    hr = torch.rand(shape, generator=gen).to(device=device, dtype=dtype)
    return sr, hr


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fwd_bwd(fn: LossFn, sr: torch.Tensor, hr: torch.Tensor) -> float:
    sr.grad = None
    loss = fn(sr, hr)
    loss.backward()
    return float(loss.detach())


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand glibc's free heap pages back to the OS, so that the measured computation cannot silently
    reuse memory that is resident but free (which would hide it from the RSS numbers)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is a lower bound by that much
        pass


def _max_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux (bytes on macOS, but /proc/self/statm is Linux-only anyway).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measure_peak_extra_cpu(fn: LossFn, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, Any]:
    """Peak RSS of the FIRST large forward+backward of this process above the RSS just before it.

    ru_maxrss is the lifetime peak of the process, so it can only be attributed to one computation
    if that computation is the first to push RSS that high: hence a fresh process per case, only a
    tiny warm-up (done by the caller) before, and the timing runs after.
    """
    _release_free_heap()
    baseline = _current_rss_bytes()
    peak_before = _max_rss_bytes()
    loss = _fwd_bwd(fn, sr, hr)
    peak_after = _max_rss_bytes()
    return {
        "loss": loss,
        "peak_extra_mib": max(0, peak_after - baseline) / MIB,
        "baseline_rss_mib": baseline / MIB,
        "peak_before_extra_mib": max(0, peak_before - baseline) / MIB,
        # False: RSS never rose above the pre-existing lifetime peak; the value is an upper bound.
        "memory_resolved": peak_after > peak_before,
    }


def _measure_peak_extra_cuda(
    fn: LossFn, sr: torch.Tensor, hr: torch.Tensor, device: torch.device
) -> dict[str, Any]:
    """Peak allocated CUDA memory of one forward+backward above the memory allocated before it."""
    _fwd_bwd(fn, sr, hr)  # warm-up: kernels, workspaces, cuBLAS handles
    sr.grad = None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    loss = _fwd_bwd(fn, sr, hr)
    _sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"loss": loss, "peak_extra_mib": (peak - before) / MIB, "memory_resolved": True}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Measure one case in the current process (meant to be a fresh one); returns a JSON-able dict."""
    device = torch.device(case["device"])
    dtype = DTYPES[case["dtype"]]
    method, size, region = case["method"], case["size"], case["region"]
    fn = _loss_fn(method, region)

    # Initialise torch, the autograd engine, the thread pool and the method's code path on a tiny
    # input, so that none of that is counted as the case's memory.
    tiny = region if region is not None else 2
    t_sr, t_hr = _make_inputs(1, case["channels"], tiny, dtype, device)
    _fwd_bwd(fn, t_sr, t_hr)
    del t_sr, t_hr

    sr, hr = _make_inputs(case["batch"], case["channels"], size, dtype, device)
    if device.type == "cuda":
        memory = _measure_peak_extra_cuda(fn, sr, hr, device)
    else:
        memory = _measure_peak_extra_cpu(fn, sr, hr)

    for _ in range(case["warmup"]):
        _fwd_bwd(fn, sr, hr)
    times_ms: list[float] = []
    for _ in range(case["repeat"]):
        sr.grad = None
        _sync(device)
        start = time.perf_counter()
        loss = fn(sr, hr)
        loss.backward()
        _sync(device)
        times_ms.append((time.perf_counter() - start) * 1000.0)

    return {
        "method": method,
        "label": METHOD_LABELS[method],
        "size": size,
        "region": region,
        "median_ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "times_ms": times_ms,
        "input_mib": (sr.numel() * sr.element_size() + hr.numel() * hr.element_size()) / MIB,
        "threads": torch.get_num_threads(),
        **memory,
    }


def _worker_main(payload: str) -> None:
    result = run_case(json.loads(payload))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Driver side.
# --------------------------------------------------------------------------------------------


def _spawn_case(case: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Run one case in a fresh interpreter; on any failure return the case with an ``error``."""
    stub: dict[str, Any] = {
        "method": case["method"],
        "label": METHOD_LABELS[case["method"]],
        "size": case["size"],
        "region": case["region"],
    }
    cmd = [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**stub, "error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode}"
            if -proc.returncode == 9:
                reason += " (probably out of memory)"
        else:
            reason = f"exit status {proc.returncode}"
        tail = proc.stderr.strip()[-STDERR_TAIL_CHARS:]
        last_line = tail.splitlines()[-1] if tail else ""
        return {**stub, "error": f"{reason}: {last_line}".rstrip(": "), "stderr_tail": tail}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {**stub, "error": "worker printed no result", "stdout_tail": proc.stdout[-STDERR_TAIL_CHARS:]}


def _check_losses(results: list[dict[str, Any]], dtype: str) -> list[str]:
    """Sanity check: the torch and reference backends must give the same loss on the same inputs.

    Sets ``loss_matches_reference`` on each torch result that has a reference twin; returns warnings.
    """
    rtol = LOSS_RTOL[dtype]
    ref = {(r["size"], r["region"]): r for r in results if r["method"] == "reference" and "error" not in r}
    warnings: list[str] = []
    for r in results:
        other = ref.get((r["size"], r["region"]))
        if r["method"] != "torch" or "error" in r or other is None:
            continue
        ok = abs(r["loss"] - other["loss"]) <= rtol * max(abs(other["loss"]), 1e-12)
        r["loss_matches_reference"] = ok
        if not ok:
            warnings.append(
                f"WARNING: size={r['size']} region={r['region']}: torch loss {r['loss']:.6g} != "
                f"reference loss {other['loss']:.6g} (rtol {rtol:g})"
            )
    return warnings


def _device_name(device: torch.device) -> str:
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


def _build_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    common = {
        "device": args.device,
        "dtype": args.dtype,
        "batch": args.batch,
        "channels": args.channels,
        "repeat": args.repeat,
        "warmup": args.warmup,
    }
    cases: list[dict[str, Any]] = []
    for size in args.sizes:
        for method in args.methods:
            if method == "l1":
                cases.append({**common, "method": method, "size": size, "region": None})
        for region in args.regions:
            for method in args.methods:
                if method != "l1":
                    cases.append({**common, "method": method, "size": size, "region": region})
    return cases


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


TABLE_HEADER: tuple[str, ...] = (
    "size",
    "region",
    "method",
    "median ms",
    "min ms",
    "x L1",
    "peak extra MiB",
    "input MiB",
    "speed-up vs ref",
    "memory vs ref",
)
TABLE_LEGEND = (
    "x L1: median / L1 median at that size; speed-up vs ref: reference median / torch median (>1: faster); "
    "memory vs ref: torch peak extra / reference peak extra (<1: smaller); (<=): RSS did not rise above "
    "the process's earlier peak, upper bound."
)
# Right-align everything except the method column.
TABLE_ALIGN_LEFT: frozenset[int] = frozenset({2})


def _table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per result: ``x L1`` = median / L1 median at that size; for the torch backend
    ``speed-up vs ref`` = reference median / torch median (>1: faster) and ``memory vs ref`` =
    torch peak extra / reference peak extra (<1: smaller)."""
    ok = [r for r in results if "error" not in r]
    l1 = {r["size"]: r for r in ok if r["method"] == "l1"}
    ref = {(r["size"], r["region"]): r for r in ok if r["method"] == "reference"}
    rows: list[list[str]] = []
    for r in results:
        region = "-" if r["region"] is None else str(r["region"])
        if "error" in r:
            message = "error: " + r["error"][:ERROR_CHARS_IN_TABLE]
            rows.append([str(r["size"]), region, r["label"], message] + [""] * (len(TABLE_HEADER) - 4))
            continue
        base = l1.get(r["size"])
        x_l1 = r["median_ms"] / base["median_ms"] if base else None
        speedup = mem_ratio = None
        other = ref.get((r["size"], r["region"]))
        if r["method"] == "torch" and other is not None:
            speedup = other["median_ms"] / r["median_ms"]
            if other["peak_extra_mib"] > 0:
                mem_ratio = r["peak_extra_mib"] / other["peak_extra_mib"]
        peak = _fmt(r["peak_extra_mib"], ".1f") + ("" if r.get("memory_resolved", True) else " (<=)")
        rows.append(
            [
                str(r["size"]),
                region,
                r["label"],
                _fmt(r["median_ms"], ".2f"),
                _fmt(r["min_ms"], ".2f"),
                _fmt(x_l1, ".1f", "x"),
                peak,
                _fmt(r["input_mib"], ".1f"),
                _fmt(speedup, ".1f", "x"),
                _fmt(mem_ratio, ".3f", "x"),
            ]
        )
    return rows


def format_text_table(results: list[dict[str, Any]]) -> str:
    rows = _table_rows(results)
    widths = [len(h) for h in TABLE_HEADER]
    for row in rows:
        if row[3].startswith("error"):
            continue  # error rows overflow into the following columns
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        if cells[3].startswith("error"):  # size, region, method, then the message over the rest
            head = [cells[0].rjust(widths[0]), cells[1].rjust(widths[1]), cells[2].ljust(widths[2])]
            return "  ".join([*head, cells[3]])
        return "  ".join(
            c.ljust(w) if i in TABLE_ALIGN_LEFT else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(TABLE_HEADER), sep, *(line(r) for r in rows)])


def format_markdown_table(results: list[dict[str, Any]]) -> str:
    rows = _table_rows(results)
    align = ["---" if i in TABLE_ALIGN_LEFT else "---:" for i in range(len(TABLE_HEADER))]
    out = ["| " + " | ".join(TABLE_HEADER) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _markdown_document(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Pixel contrastive loss, forward + backward: {report['device']}, torch {report['torch']}, "
            f"python {report['python']}, {report['dtype']}, batch {report['batch']}, "
            f"{report['channels']} channels, {report['date']}.",
            "",
            f"Command: `{report['command']}`",
            "",
            format_markdown_table(report["results"]),
            "",
            TABLE_LEGEND,
            "",
            f"`peak extra MiB`: {report['memory_method']}",
            "",
        ]
    )


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time forward+backward and measure peak extra memory of the pixel contrastive loss "
        "(torch and reference backends) against F.l1_loss, each case in a fresh subprocess.",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[144, 192], help="square sides H = W (144 192)")
    parser.add_argument("--regions", type=int, nargs="+", default=[4, 8, 16], help="region sides r (4 8 16)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (16)")
    parser.add_argument("--channels", type=int, default=3, help="channels (3)")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods (l1 torch reference)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device (cpu)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="input dtype (float32)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones (1)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per case (3600)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (benchmarks/results/pixel_contrastive_<device>.json)",
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table as markdown here")
    parser.add_argument(WORKER_FLAG, dest="worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return args
    for name in ("sizes", "regions"):
        if any(v < 1 for v in getattr(args, name)):
            parser.error(f"--{name} must be positive")
    for name in ("batch", "channels", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    if args.device == "cpu" and not os.path.exists("/proc/self/statm"):
        parser.error("CPU memory measurement needs Linux /proc/self/statm")
    args.methods = list(dict.fromkeys(args.methods))
    if args.out is None:
        args.out = RESULTS_DIR / f"pixel_contrastive_{args.device}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.worker is not None:
        _worker_main(args.worker)
        return

    device = torch.device(args.device)
    cases = _build_cases(args)
    results: list[dict[str, Any]] = []
    progress = tqdm(cases, desc="cases", unit="case")
    for case in progress:
        region = "-" if case["region"] is None else case["region"]
        progress.set_postfix_str(f"{case['method']} size={case['size']} region={region}")
        result = _spawn_case(case, args.timeout)
        if "error" in result:
            tqdm.write(f"[skipped] {case['method']} size={case['size']} region={region}: {result['error']}")
        results.append(result)
    progress.close()
    loss_warnings = _check_losses(results, args.dtype)

    report: dict[str, Any] = {
        "device": _device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "dtype": args.dtype,
        "batch": args.batch,
        "channels": args.channels,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "seed": SEED,
        "timing_method": (
            "time.perf_counter() around `loss = f(sr, hr); loss.backward()`"
            + (" bracketed by torch.cuda.synchronize()" if device.type == "cuda" else "")
            + f", sr.grad = None before each run; median and min over {args.repeat} runs after "
            f"{args.warmup} warm-up run(s) (and the memory run)"
        ),
        "memory_method": MEMORY_METHOD_CUDA if device.type == "cuda" else MEMORY_METHOD_CPU,
        "results": results,
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{report['device']} | torch {report['torch']} | {args.dtype} | batch {args.batch} | "
        f"{args.channels} channels"
    )
    print(format_text_table(results))
    print(TABLE_LEGEND)
    for warning in loss_warnings:
        print(warning)
    print(f"\nwrote {args.out}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(_markdown_document(report))
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
