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
  the interpreter and torch); see ``_harness.measure_peak_extra``. It
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
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from _harness import (
    MIB,
    MEMORY_METHOD_CPU,
    MEMORY_METHOD_CUDA,
    RESULTS_DIR,
    environment,
    markdown_table,
    measure_peak_extra,
    run_worker_if_requested,
    spawn_case,
    text_table,
    time_ms,
    write_report,
)
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
ERROR_CHARS_IN_TABLE = 80
# Relative tolerance of the torch-vs-reference loss check (both compute in float32 or float64).
LOSS_RTOL: dict[str, float] = {"float32": 1e-4, "bfloat16": 1e-3, "float16": 1e-3}
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

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


def _fwd_bwd(fn: LossFn, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """One forward + backward; returns the detached loss (no host sync, so it can be timed)."""
    sr.grad = None
    loss = fn(sr, hr)
    loss.backward()
    return loss.detach()


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
    memory = measure_peak_extra(lambda: _fwd_bwd(fn, sr, hr), device)
    loss = float(memory.pop("result"))
    timing = time_ms(lambda: _fwd_bwd(fn, sr, hr), device, case["repeat"], case["warmup"])
    return {
        "method": method,
        "label": METHOD_LABELS[method],
        "size": size,
        "region": region,
        **timing,
        "input_mib": (sr.numel() * sr.element_size() + hr.numel() * hr.element_size()) / MIB,
        "threads": torch.get_num_threads(),
        "loss": loss,
        **memory,
    }


# --------------------------------------------------------------------------------------------
# Driver side.
# --------------------------------------------------------------------------------------------


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
    return text_table(TABLE_HEADER, _table_rows(results), TABLE_ALIGN_LEFT)


def format_markdown_table(results: list[dict[str, Any]]) -> str:
    return markdown_table(TABLE_HEADER, _table_rows(results), TABLE_ALIGN_LEFT)


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
    args = parser.parse_args(argv)
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
    if run_worker_if_requested(sys.argv[1:] if argv is None else argv, run_case):
        return
    args = _parse_args(argv)

    device = torch.device(args.device)
    cases = _build_cases(args)
    results: list[dict[str, Any]] = []
    progress = tqdm(cases, desc="cases", unit="case")
    for case in progress:
        region = "-" if case["region"] is None else case["region"]
        progress.set_postfix_str(f"{case['method']} size={case['size']} region={region}")
        result = spawn_case(Path(__file__), case, args.timeout)
        result.setdefault("label", METHOD_LABELS[case["method"]])
        if "error" in result:
            tqdm.write(f"[skipped] {case['method']} size={case['size']} region={region}: {result['error']}")
        results.append(result)
    progress.close()
    loss_warnings = _check_losses(results, args.dtype)

    report: dict[str, Any] = {
        **environment(device),
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

    print(
        f"{report['device']} | torch {report['torch']} | {args.dtype} | batch {args.batch} | "
        f"{args.channels} channels"
    )
    print(format_text_table(results))
    print(TABLE_LEGEND)
    for warning in loss_warnings:
        print(warning)
    print()
    write_report(report, args.out, _markdown_document(report), args.markdown)


if __name__ == "__main__":
    main()
