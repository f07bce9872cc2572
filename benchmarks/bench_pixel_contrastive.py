"""Benchmark of the pixel contrastive loss: forward + backward time and peak extra memory.

Two parts (``--parts``), every case in a fresh Python subprocess (``_harness.spawn_case``) so that the
memory numbers of one case cannot leak into another and an out-of-memory kill only loses that case.

``loss`` -- the loss alone on random ``(batch, channels, size, size)`` inputs (uniform in [0, 1),
fixed seed, drawn in float32 on the CPU and cast, so every device / dtype sees the same values;
``sr`` requires grad, ``hr`` does not), per size, dtype, mode (``grid`` / ``sliding``) and region:

* ``l1``        -- ``F.l1_loss(sr, hr)``, the baseline every SR model already pays for (measured once
                   per size and dtype; region and mode do not apply);
* ``torch``     -- ``pixel_contrastive_loss(..., backend="torch")``: chunked custom op, analytic
                   backward, bounded memory (the ``auto`` choice on the CPU);
* ``triton``    -- ``backend="triton"``: the fused kernels (the ``auto`` choice on CUDA; CUDA only);
* ``reference`` -- ``backend="reference"``: the equation written out and differentiated by autograd
                   (materialises ``(blocks, S, S, C)`` or, sliding, ``(N, C, S, H*W)`` tensors).

``train`` -- one training step of EDSR-baseline x4 (``archs.create_model("edsr_baseline", scale=4)``:
16 residual blocks, 64 channels) on ``--train-batch`` random LR patches of ``--lr-size`` pixels
(HR ``4 x lr-size``), Adam: ``zero_grad; sr = model(lr); loss; loss.backward(); opt.step()``, with
``loss = F.l1_loss(sr, hr)`` (``L1``) or ``F.l1_loss(sr, hr) + 0.1 * pixel_contrastive_loss(sr, hr,
region, mode=...)`` (``L1 + 0.1 contrastive``, backend ``auto``). ``bfloat16`` runs the model and
the losses under ``torch.autocast`` (float32 weights and optimizer).

Measured per case: time of the step with ``time.perf_counter()`` (``torch.cuda.synchronize()``
around each run on CUDA), median and min over ``--repeat`` runs after ``--warmup`` untimed runs;
peak extra memory of one step above what was resident before it (``_harness.measure_peak_extra``:
``max_memory_allocated`` on CUDA, RSS peak on the CPU). For the loss alone it includes the
``sr.grad`` tensor the backward creates; the input size (sr + hr) is reported beside it. For the
training step it includes activations and parameter gradients, not the model or optimizer state
that exists before the step.

Results go to a JSON file (default ``benchmarks/results/pixel_contrastive_<device>.json``) and a
markdown document (``--markdown``); tables are also printed.

Examples::

    python benchmarks/bench_pixel_contrastive.py                          # CPU, grid, float32, 144 and 192
    python benchmarks/bench_pixel_contrastive.py --sizes 192 --modes grid sliding --parts loss train
    python benchmarks/bench_pixel_contrastive.py --device cuda --sizes 192 --modes grid sliding \\
        --dtypes float32 bfloat16 --parts loss train --markdown benchmarks/results/pixel_contrastive_cuda.md
    python benchmarks/bench_pixel_contrastive.py --sizes 24 --regions 4 --batch 2 --repeat 1 \\
        --modes grid sliding --parts loss train --tiny-model --train-batch 2 --lr-size 12 --out /tmp/smoke.json

The thread count is torch's default (set ``OMP_NUM_THREADS`` to change it); it is recorded in the
``device`` field. Run it on an otherwise idle machine: timings of a loaded CPU are not comparable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _harness import (
    MEMORY_METHOD_CPU,
    MEMORY_METHOD_CUDA,
    MIB,
    RESULTS_DIR,
    check_device,
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

from contrastive_sr_losses.archs import TINY_OVERRIDES, create_model
from contrastive_sr_losses.losses.pixel_contrastive import pixel_contrastive_loss

METHODS: tuple[str, ...] = ("l1", "torch", "triton", "reference")
METHOD_LABELS: dict[str, str] = {"l1": "L1", "torch": "torch", "triton": "triton", "reference": "reference"}
FAST_METHODS: tuple[str, ...] = ("torch", "triton")
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
MODES: tuple[str, ...] = ("grid", "sliding")
PARTS: tuple[str, ...] = ("loss", "train")
TRAIN_METHODS: tuple[str, ...] = ("l1", "l1+contrastive")
TRAIN_LABELS: dict[str, str] = {"l1": "L1", "l1+contrastive": "L1 + 0.1 contrastive"}
CONTRASTIVE_WEIGHT = 0.1  # eq 11 of the paper
SCALE = 4
SEED = 0
ERROR_CHARS_IN_TABLE = 80
# Relative tolerance of the fast-vs-reference loss check (all compute in float32).
LOSS_RTOL: dict[str, float] = {"float32": 1e-4, "bfloat16": 1e-3, "float16": 1e-3}
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# Worker side: one case, run in its own process.
# --------------------------------------------------------------------------------------------
def _loss_fn(method: str, region: int | None, mode: str | None) -> LossFn:
    if method == "l1":
        return F.l1_loss
    if method not in METHODS or region is None or mode is None:
        raise ValueError(f"bad loss case: method={method!r} region={region!r} mode={mode!r}")

    def fn(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return pixel_contrastive_loss(sr, hr, region, mode=mode, backend=method)

    return fn


def _uniform(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Seeded uniform [0, 1) values drawn on the CPU in float32: every device / dtype sees the same values."""
    return torch.rand(shape, generator=gen).to(device=device, dtype=dtype)


def _fwd_bwd(fn: LossFn, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """One forward + backward; returns the detached loss (no host sync, so it can be timed)."""
    sr.grad = None
    loss = fn(sr, hr)
    loss.backward()
    return loss.detach()


def run_loss_case(case: dict[str, Any]) -> dict[str, Any]:
    device, dtype = torch.device(case["device"]), DTYPES[case["dtype"]]
    fn = _loss_fn(case["method"], case["region"], case["mode"])
    shape = (case["batch"], case["channels"], case["size"], case["size"])

    # Initialise torch, the autograd engine, the thread pool, the kernels' compilation and the method's
    # code path on a tiny input, so that none of that is counted as the case's memory.
    tiny = case["region"] or 2
    gen = torch.Generator().manual_seed(SEED)
    tiny_shape = (1, case["channels"], tiny, tiny)
    _fwd_bwd(fn, _uniform(tiny_shape, gen, dtype, device).requires_grad_(), _uniform(tiny_shape, gen, dtype, device))

    gen = torch.Generator().manual_seed(SEED)
    sr = _uniform(shape, gen, dtype, device).requires_grad_()
    hr = _uniform(shape, gen, dtype, device)
    memory = measure_peak_extra(lambda: _fwd_bwd(fn, sr, hr), device)
    loss = float(memory.pop("result"))
    timing = time_ms(lambda: _fwd_bwd(fn, sr, hr), device, case["repeat"], case["warmup"])
    return {
        **case,
        "label": METHOD_LABELS[case["method"]],
        **timing,
        "input_mib": 2 * sr.numel() * sr.element_size() / MIB,
        "threads": torch.get_num_threads(),
        "loss": loss,
        **memory,
    }


def run_train_case(case: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(case["device"])
    torch.manual_seed(SEED)
    overrides = TINY_OVERRIDES["edsr_baseline"] if case["tiny_model"] else {}
    model = create_model("edsr_baseline", scale=SCALE, **overrides).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = case["dtype"] != "float32"
    region, mode = case["region"], case["mode"]

    def criterion(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        loss = F.l1_loss(sr, hr)
        if case["method"] == "l1+contrastive":
            loss = loss + CONTRASTIVE_WEIGHT * pixel_contrastive_loss(sr, hr, region, mode=mode)
        return loss

    def step(lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=DTYPES[case["dtype"]], enabled=autocast):
            loss = criterion(model(lr), hr)
        loss.backward()
        optimizer.step()
        return loss.detach()

    gen = torch.Generator().manual_seed(SEED)
    lr_size = case["lr_size"]
    lr = _uniform((case["batch"], 3, lr_size, lr_size), gen, torch.float32, device)
    hr = _uniform((case["batch"], 3, SCALE * lr_size, SCALE * lr_size), gen, torch.float32, device)
    tiny_lr, tiny_hr = lr[:1, :, :4, :4], hr[:1, :, :16, :16]
    step(tiny_lr, tiny_hr)  # initialise code paths and the optimizer state (kept: it exists in training)
    memory = measure_peak_extra(lambda: step(lr, hr), device)
    loss = float(memory.pop("result"))
    timing = time_ms(lambda: step(lr, hr), device, case["repeat"], case["warmup"])
    return {
        **case,
        "label": TRAIN_LABELS[case["method"]],
        **timing,
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "loss": loss,
        **memory,
    }


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Measure one case in the current process (meant to be a fresh one); returns a JSON-able dict."""
    return run_train_case(case) if case["part"] == "train" else run_loss_case(case)


# --------------------------------------------------------------------------------------------
# Driver side: cases, checks, tables.
# --------------------------------------------------------------------------------------------
def _build_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    common = {"device": args.device, "repeat": args.repeat, "warmup": args.warmup}
    cases: list[dict[str, Any]] = []
    if "loss" in args.parts:
        loss_common = {**common, "part": "loss", "batch": args.batch, "channels": args.channels}
        for size in args.sizes:
            for dtype in args.dtypes:
                at = {**loss_common, "size": size, "dtype": dtype}
                if "l1" in args.methods:
                    cases.append({**at, "method": "l1", "mode": None, "region": None})
                for mode in args.modes:
                    for region in args.regions:
                        for method in args.methods:
                            if method != "l1":
                                cases.append({**at, "method": method, "mode": mode, "region": region})
    if "train" in args.parts:
        train_common = {
            **common,
            "part": "train",
            "batch": args.train_batch,
            "lr_size": args.lr_size,
            "tiny_model": args.tiny_model,
            "region": args.train_region,
        }
        for dtype in args.dtypes:
            cases.append({**train_common, "dtype": dtype, "method": "l1", "mode": None, "region": None})
            for mode in args.modes:
                cases.append({**train_common, "dtype": dtype, "method": "l1+contrastive", "mode": mode})
    return cases


def _ok(results: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    return [r for r in results if r["part"] == part and "error" not in r]


def _loss_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return r["size"], r["dtype"], r["mode"], r["region"]


def _check_losses(results: list[dict[str, Any]]) -> list[str]:
    """Sanity check: the fast backends must give the reference's loss on the same inputs.

    Sets ``loss_matches_reference`` on each fast result that has a reference twin; returns warnings.
    """
    ref = {_loss_key(r): r for r in _ok(results, "loss") if r["method"] == "reference"}
    warnings: list[str] = []
    for r in _ok(results, "loss"):
        other = ref.get(_loss_key(r))
        if r["method"] not in FAST_METHODS or other is None:
            continue
        ok = abs(r["loss"] - other["loss"]) <= LOSS_RTOL[r["dtype"]] * max(abs(other["loss"]), 1e-12)
        r["loss_matches_reference"] = ok
        if not ok:
            warnings.append(
                f"WARNING: {r['method']} {r['mode']} size={r['size']} region={r['region']} {r['dtype']}: "
                f"loss {r['loss']:.6g} != reference {other['loss']:.6g} (rtol {LOSS_RTOL[r['dtype']]:g})"
            )
    return warnings


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _peak(r: dict[str, Any]) -> str:
    return _fmt(r["peak_extra_mib"], ".1f") + ("" if r.get("memory_resolved", True) else " (<=)")


def _error_row(r: dict[str, Any], lead: list[str], width: int) -> list[str]:
    return lead + ["error: " + r["error"][:ERROR_CHARS_IN_TABLE]] + [""] * (width - len(lead) - 1)


LOSS_HEADER: tuple[str, ...] = (
    "size", "dtype", "mode", "region", "method", "median ms", "min ms", "x L1", "peak extra MiB",
    "input MiB", "speed-up vs ref", "memory vs ref",
)  # fmt: skip
LOSS_LEFT: frozenset[int] = frozenset({1, 2, 4})
LOSS_LEGEND = (
    "x L1: median / L1 median at that size and dtype; speed-up vs ref: reference median / median (>1: "
    "faster); memory vs ref: peak extra / reference peak extra (<1: smaller); (<=): RSS did not rise above "
    "the process's earlier peak, upper bound."
)


def _loss_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    ok = _ok(results, "loss")
    l1 = {(r["size"], r["dtype"]): r for r in ok if r["method"] == "l1"}
    ref = {_loss_key(r): r for r in ok if r["method"] == "reference"}
    rows: list[list[str]] = []
    for r in (r for r in results if r["part"] == "loss"):
        lead = [str(r["size"]), r["dtype"], r["mode"] or "-", _fmt(r["region"], "d"), METHOD_LABELS[r["method"]]]
        if "error" in r:
            rows.append(_error_row(r, lead, len(LOSS_HEADER)))
            continue
        base, other = l1.get((r["size"], r["dtype"])), ref.get(_loss_key(r))
        speedup = mem_ratio = None
        if r["method"] in FAST_METHODS and other is not None:
            speedup = other["median_ms"] / r["median_ms"]
            mem_ratio = r["peak_extra_mib"] / other["peak_extra_mib"] if other["peak_extra_mib"] > 0 else None
        rows.append(
            lead
            + [
                _fmt(r["median_ms"], ".3f"),
                _fmt(r["min_ms"], ".3f"),
                _fmt(r["median_ms"] / base["median_ms"] if base else None, ".1f", "x"),
                _peak(r),
                _fmt(r["input_mib"], ".1f"),
                _fmt(speedup, ".1f", "x"),
                _fmt(mem_ratio, ".3f", "x"),
            ]
        )
    return rows


TRAIN_HEADER: tuple[str, ...] = (
    "dtype", "loss", "mode", "region", "median ms", "min ms", "time vs L1", "peak extra MiB", "memory vs L1",
)  # fmt: skip
TRAIN_LEFT: frozenset[int] = frozenset({0, 1, 2})


def _train_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    l1 = {r["dtype"]: r for r in _ok(results, "train") if r["method"] == "l1"}
    rows: list[list[str]] = []
    for r in (r for r in results if r["part"] == "train"):
        lead = [r["dtype"], TRAIN_LABELS[r["method"]], r["mode"] or "-", _fmt(r["region"], "d")]
        if "error" in r:
            rows.append(_error_row(r, lead, len(TRAIN_HEADER)))
            continue
        base = l1.get(r["dtype"])
        time_ratio = r["median_ms"] / base["median_ms"] if base else None
        mem_ratio = r["peak_extra_mib"] / base["peak_extra_mib"] if base and base["peak_extra_mib"] > 0 else None
        rows.append(
            lead
            + [
                _fmt(r["median_ms"], ".2f"),
                _fmt(r["min_ms"], ".2f"),
                _fmt(time_ratio, ".3f", "x"),
                _peak(r),
                _fmt(mem_ratio, ".3f", "x"),
            ]
        )
    return rows


def _train_caption(report: dict[str, Any]) -> str:
    train = report["train"]
    model = "EDSR-baseline x4 (tiny variant: " + str(TINY_OVERRIDES["edsr_baseline"]) + ")" if train["tiny_model"] else (
        "EDSR-baseline x4 (16 residual blocks, 64 channels)"
    )
    return (
        f"Training step of {model}, batch {train['batch']}, {train['lr_size']}x{train['lr_size']} LR patches, "
        "Adam; bfloat16 = autocast. time / memory vs L1: ratio to the L1-only step of the same dtype."
    )


def _tables(report: dict[str, Any], table: Callable[..., str]) -> list[str]:
    parts: list[str] = []
    if any(r["part"] == "loss" for r in report["results"]):
        parts += [table(LOSS_HEADER, _loss_rows(report["results"]), LOSS_LEFT), "", LOSS_LEGEND, ""]
    if any(r["part"] == "train" for r in report["results"]):
        parts += [_train_caption(report), "", table(TRAIN_HEADER, _train_rows(report["results"]), TRAIN_LEFT), ""]
    return parts


def _markdown_document(report: dict[str, Any]) -> str:
    head = (
        f"Pixel contrastive loss, forward + backward: {report['device']}, torch {report['torch']}"
        + (f", triton {report['triton']}" if report.get("triton") else "")
        + f", python {report['python']}, loss inputs batch {report['batch']}, {report['channels']} channels, "
        f"{report['date']}."
    )
    return "\n".join(
        [head, "", f"Command: `{report['command']}`", "", *_tables(report, markdown_table),
         f"`peak extra MiB`: {report['memory_method']}", ""]
    )  # fmt: skip


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time forward+backward and measure peak extra memory of the pixel contrastive loss "
        "(torch, triton and reference backends, grid and sliding mode) against F.l1_loss, and of an "
        "EDSR-baseline x4 training step with and without it; each case in a fresh subprocess.",
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=["loss"], help="what to measure (loss)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[144, 192], help="square sides H = W (144 192)")
    parser.add_argument("--regions", type=int, nargs="+", default=[4, 8, 16], help="region sides r (4 8 16)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["grid"], help="modes (grid)")
    parser.add_argument("--batch", type=int, default=16, help="batch size of the loss cases (16)")
    parser.add_argument("--channels", type=int, default=3, help="channels of the loss cases (3)")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=None,
        help="loss methods (l1 torch reference; plus triton on cuda)",
    )  # fmt: skip
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device (cpu)")
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=["float32"], help="dtypes (float32)")
    parser.add_argument("--train-batch", type=int, default=16, help="training-step batch (16)")
    parser.add_argument("--lr-size", type=int, default=48, help="training-step LR patch side (48)")
    parser.add_argument("--train-region", type=int, default=8, help="region of the training-step loss (8)")
    parser.add_argument(
        "--tiny-model", action="store_true", help="tiny EDSR variant (smoke tests only: not the paper's model)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones (1)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per case (3600)")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON output (benchmarks/results/pixel_contrastive_<device>.json)"
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as markdown here")
    args = parser.parse_args(argv)
    for name in ("sizes", "regions"):
        if any(v < 1 for v in getattr(args, name)):
            parser.error(f"--{name} must be positive")
    for name in ("batch", "channels", "repeat", "train_batch", "lr_size", "train_region"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    check_device(parser, args.device)
    if args.methods is None:
        args.methods = ["l1", "torch", "reference"] + (["triton"] if args.device == "cuda" else [])
    elif args.device == "cpu" and "triton" in args.methods:
        parser.error("--methods triton needs --device cuda (on the CPU it only runs in Triton's interpreter)")
    for name in ("methods", "modes", "dtypes", "parts"):
        setattr(args, name, list(dict.fromkeys(getattr(args, name))))
    if args.out is None:
        args.out = RESULTS_DIR / f"pixel_contrastive_{args.device}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    if run_worker_if_requested(sys.argv[1:] if argv is None else argv, run_case):
        return
    args = _parse_args(argv)

    device = torch.device(args.device)
    results: list[dict[str, Any]] = []
    progress = tqdm(_build_cases(args), desc="cases", unit="case", disable=None)
    for case in progress:
        what = f"{case['part']} {case['method']} {case['dtype']} mode={case['mode']} region={case['region']}"
        progress.set_postfix_str(what)
        result = spawn_case(Path(__file__), case, args.timeout)
        if "error" in result:
            tqdm.write(f"[failed] {what}: {result['error']}")
        results.append(result)
    progress.close()
    loss_warnings = _check_losses(results)

    report: dict[str, Any] = {
        **environment(device),
        "batch": args.batch,
        "channels": args.channels,
        "train": {"batch": args.train_batch, "lr_size": args.lr_size, "tiny_model": args.tiny_model,
                  "scale": SCALE, "model": "edsr_baseline", "weight": CONTRASTIVE_WEIGHT},
        "repeat": args.repeat,
        "warmup": args.warmup,
        "seed": SEED,
        "timing_method": (
            "time.perf_counter() around one step (loss: `loss = f(sr, hr); loss.backward()` with sr.grad = "
            "None before; train: zero_grad, forward, loss, backward, Adam step)"
            + (" bracketed by torch.cuda.synchronize()" if device.type == "cuda" else "")
            + f"; median and min over {args.repeat} runs after {args.warmup} warm-up run(s) (and the memory run)"
        ),
        "memory_method": MEMORY_METHOD_CUDA if device.type == "cuda" else MEMORY_METHOD_CPU,
        "results": results,
    }  # fmt: skip

    print(f"{report['device']} | torch {report['torch']}")
    print("\n".join(_tables(report, text_table)))
    for warning in loss_warnings:
        print(warning)
    write_report(report, args.out, _markdown_document(report), args.markdown)


if __name__ == "__main__":
    main()
