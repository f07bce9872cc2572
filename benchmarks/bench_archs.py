"""Benchmark of the reference SR networks: parameters, FLOPs and inference time, beside the papers' figures.

Per model (``contrastive_sr_losses.archs.list_models()``) and scale:

* parameters: trainable parameters as built. RRLFN also once re-parameterised (its inference form,
  the one its paper counts); SwinIR-light also without its relative-position-bias tables (the form
  its paper counts).
* multiply-accumulates (MACs) of one forward pass producing a 1280x720 output (LR input
  ``(720 // scale) x (1280 // scale)``, so 1278 wide at x3), counted exactly with
  ``torch.utils.flop_counter.FlopCounterMode`` on meta tensors (no data, no scaling). That counter
  covers matrix products and convolutions only (``aten.convolution``, ``mm``, ``addmm``, ``bmm``,
  ...); element-wise operations, normalisation, softmax, pooling, interpolation and pixel shuffle are
  not counted. MACs = counted FLOPs / 2. RRLFN is counted in its re-parameterised form. Where a
  paper gives a FLOP figure under another protocol (G-IDRN: x4 on a 256x256 LR image) ours is also
  counted under that protocol.
* inference time on ``--device`` (CPU by default) for one ``(1, 3, lr, lr)`` input (128x128 LR,
  x4 unless ``--time-scale`` says otherwise) under ``torch.inference_mode()``, model in eval mode
  (RRLFN: re-parameterised, and its training form as a separate row), each model in a fresh
  subprocess: peak extra memory of the first forward (see ``_harness.measure_peak_extra``), then the
  median and min of ``--repeat`` timed runs after ``--warmup`` untimed ones.

Writes ``benchmarks/results/archs_<device>.json`` (or ``--out``) and a markdown document (``--markdown``,
default beside the JSON with the ``.md`` suffix). ``--tiny`` uses ``TINY_OVERRIDES`` (small variants) to
smoke-test the script in seconds; its numbers describe those variants, not the papers' networks.

Examples::

    python benchmarks/bench_archs.py                                   # full run, CPU
    python benchmarks/bench_archs.py --tiny --lr-size 32 --repeat 1 --out /tmp/archs_smoke.json
    python benchmarks/bench_archs.py --device cuda --models rcan swinir_light

Timings of a loaded machine are not comparable: run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from _harness import (
    MEMORY_METHOD_CPU,
    MEMORY_METHOD_CUDA,
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
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from contrastive_sr_losses.archs import TINY_OVERRIDES, create_model, list_models
from contrastive_sr_losses.archs.rrlfn import RRLFN

OUTPUT_SIZE = (720, 1280)  # (H, W) of the output the MACs are counted for
SEED = 0

# The papers' own figures, as published (parameters in thousands; FLOPs in G as the paper labels
# them, with the protocol it states). Sources (docs/references.md): EDSR-baseline, RCAN and
# SwinIR-light from their own papers; Wang et al. 2024 (G-IDRN) table 6 for EDSR and RCAN x4 and
# tables 4-5 for G-IDRN; Zhou et al. (PRFFN) table 8; Guo et al. 2025 (RRLFN) tables 1-2.
PAPER: dict[str, dict[int, dict[str, Any]]] = {
    "edsr_baseline": {4: {"params": 1_517_571, "source": "official count (issue 6)"}},
    "edsr": {4: {"params_k": 43090, "source": "Wang et al. 2024 (G-IDRN) table 6"}},
    "rcan": {4: {"params_k": 15592, "source": "Wang et al. 2024 (G-IDRN) table 6 (official count 15,592,379)"}},
    "swinir_light": {4: {"params_k": 897, "source": "SwinIR paper via issue 6 (relative-position tables excluded)"}},
    "prffn": {
        2: {"params_k": 2988, "gflops": 656.4, "source": "Zhou et al. (PRFFN) table 8"},
        3: {"params_k": 3167, "gflops": 312.5, "source": "Zhou et al. (PRFFN) table 8"},
        4: {"params_k": 3131, "gflops": 200.1, "source": "Zhou et al. (PRFFN) table 8"},
    },
    "rrlfn": {
        2: {"params_k": 454, "source": "Guo et al. 2025 (RRLFN) table 1 (inference form)"},
        4: {"params_k": 470, "source": "Guo et al. 2025 (RRLFN) table 2 (inference form)"},
    },
    "gidrn": {
        2: {"params_k": 554, "source": "Wang et al. 2024 (G-IDRN) table 4"},
        3: {"params_k": 565, "source": "Wang et al. 2024 (G-IDRN) table 4"},
        4: {"params_k": 580, "gflops": 36.19, "lr_size": (256, 256), "source": "Wang et al. 2024 (G-IDRN) tables 4-5"},
    },
}


def build(name: str, scale: int, tiny: bool) -> nn.Module:
    torch.manual_seed(SEED)
    return create_model(name, scale, **(TINY_OVERRIDES[name] if tiny else {})).eval()


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, lr_size: tuple[int, int]) -> tuple[int, dict[str, int]]:
    """MACs of one forward on a ``(1, 3, *lr_size)`` meta input: total and per counted operator."""
    meta = model.to("meta")
    x = torch.empty(1, 3, *lr_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(x)
    per_op = {str(op): int(flops) // 2 for op, flops in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops()) // 2, per_op


def count_case(name: str, scale: int, tiny: bool) -> dict[str, Any]:
    model = build(name, scale, tiny)
    row: dict[str, Any] = {"model": name, "scale": scale, "params": trainable(model)}
    if name == "swinir_light":
        tables = sum(p.numel() for n, p in model.named_parameters() if n.endswith("relative_position_bias_table"))
        row["params_without_bias_tables"] = row["params"] - tables
    if isinstance(model, RRLFN):
        model.reparameterize()
        row["params_fused"] = trainable(model)
    lr = (OUTPUT_SIZE[0] // scale, OUTPUT_SIZE[1] // scale)
    row["lr_size"] = lr
    row["macs"], row["macs_per_op"] = count_macs(model, lr)
    paper = PAPER.get(name, {}).get(scale)
    if paper is not None and "lr_size" in paper and not tiny:
        row["paper_protocol_lr_size"] = paper["lr_size"]
        row["paper_protocol_macs"], _ = count_macs(model, paper["lr_size"])
    return row


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Worker: peak memory of the first forward, then timings, of one model on one device."""
    device = torch.device(case["device"])
    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    model = build(case["model"], case["scale"], case["tiny"])
    if case["fused"]:
        model.reparameterize()  # type: ignore[operator]
    model = model.to(device)
    x = torch.rand(1, 3, case["lr_size"], case["lr_size"], generator=torch.Generator().manual_seed(SEED)).to(device)

    def step() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    memory = measure_peak_extra(step, device)
    out = memory.pop("result")
    timing = time_ms(step, device, case["repeat"], case["warmup"])
    return {**case, **memory, **timing, "output_shape": list(out.shape), "threads_used": torch.get_num_threads()}


def _time_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    cases = []
    for name in args.models:
        variants = [True, False] if name == "rrlfn" else [False]
        for fused in variants:
            cases.append(
                {
                    "model": name,
                    "label": name + (" (fused)" if fused else " (training form)" if name == "rrlfn" else ""),
                    "fused": fused,
                    "scale": args.time_scale,
                    "lr_size": args.lr_size,
                    "device": args.device,
                    "tiny": args.tiny,
                    "repeat": args.repeat,
                    "warmup": args.warmup,
                    "threads": args.threads,
                }
            )
    return cases


def _k(n: float) -> str:
    return f"{n / 1000:,.1f}"


def _paper_params(paper: dict[str, Any]) -> tuple[str, float | None]:
    if "params" in paper:
        return f"{paper['params']:,}", paper["params"]
    if "params_k" in paper:
        return f"{paper['params_k']:,}K", paper["params_k"] * 1000
    return "-", None


def _count_rows(counts: list[dict[str, Any]], tiny: bool) -> list[list[str]]:
    rows = []
    for r in counts:
        paper = {} if tiny else PAPER.get(r["model"], {}).get(r["scale"], {})
        ours = r.get("params_fused", r.get("params_without_bias_tables", r["params"]))
        compared = "fused" if "params_fused" in r else "w/o bias tables" if "params_without_bias_tables" in r else ""
        paper_text, paper_params = _paper_params(paper)
        gap = "-" if paper_params is None else f"{(ours / paper_params - 1) * 100:+.1f}%"
        paper_g = "-"
        if "gflops" in paper:
            where = f" @{paper['lr_size'][0]}x{paper['lr_size'][1]} LR" if "lr_size" in paper else ""
            paper_g = f"{paper['gflops']:g}{where}"
        ours_protocol = f"{r['paper_protocol_macs'] / 1e9:.2f}" if "paper_protocol_macs" in r else "-"
        rows.append(
            [
                r["model"],
                f"x{r['scale']}",
                f"{r['params']:,}",
                f"{ours:,}" + (f" ({compared})" if compared else ""),
                paper_text,
                gap,
                f"{r['macs'] / 1e9:.2f}",
                paper_g,
                ours_protocol,
            ]
        )
    return rows


COUNT_HEADER = [
    "model",
    "scale",
    "params",
    "params as the paper counts",
    "paper",
    "vs paper",
    "GMACs @1280x720 out",
    "paper G",
    "ours, paper's protocol",
]


def _time_rows(timings: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in timings:
        if "error" in r:
            rows.append([r["label"], f"x{r['scale']}", f"{r['lr_size']}", "error", r["error"][:60], "-"])
            continue
        memory = f"{r['peak_extra_mib']:.1f}" + ("" if r["memory_resolved"] else " (<=)")
        rows.append(
            [r["label"], f"x{r['scale']}", f"{r['lr_size']}", f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", memory]
        )
    return rows


TIME_HEADER = ["model", "scale", "LR side", "median ms", "min ms", "peak extra MiB"]


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Reference SR networks: size, MACs, inference time",
        "",
        f"{report['device']} | torch {report['torch']} | {report['date']} | `{report['command']}`"
        + (" | **tiny variants (smoke run)**" if report["tiny"] else ""),
        "",
        markdown_table(COUNT_HEADER, _count_rows(report["counts"], report["tiny"]), left={0, 3}),
        "",
        f"GMACs: {report['flop_method']}",
    ]
    if not report["timings"]:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Inference, one {report['lr_size']}x{report['lr_size']} LR image, x{report['time_scale']}, "
        f"eval mode, inference_mode, median / min of {report['repeat']} runs after {report['warmup']} warm-up:",
        "",
        markdown_table(TIME_HEADER, _time_rows(report["timings"]), left={0}),
        "",
        f"Peak extra memory: {report['memory_method']}",
    ]
    return "\n".join(lines) + "\n"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list_models(), default=list_models(), help="(all)")
    parser.add_argument("--scales", type=int, nargs="+", choices=(2, 3, 4), default=[2, 3, 4], help="counted (2 3 4)")
    parser.add_argument("--time-scale", type=int, choices=(2, 3, 4), default=4, help="scale of the timed runs (4)")
    parser.add_argument("--lr-size", type=int, default=128, help="LR side of the timed input (128)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device of the timed runs (cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the workers (torch's default)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per model (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before them (1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per timed model (1800)")
    parser.add_argument("--no-time", action="store_true", help="only count parameters and MACs")
    parser.add_argument("--tiny", action="store_true", help="use TINY_OVERRIDES (smoke test of the script)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (benchmarks/results/archs_<device>.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown output (the JSON path with .md)")
    args = parser.parse_args(argv)
    if args.lr_size < 3 or args.repeat < 1 or args.warmup < 0:
        parser.error("--lr-size must be >= 3, --repeat >= 1, --warmup >= 0")
    check_device(parser, args.device)
    if args.out is None:
        args.out = RESULTS_DIR / f"archs_{args.device}.json"
    if args.markdown is None:
        args.markdown = args.out.with_suffix(".md")
    return args


def main(argv: list[str] | None = None) -> None:
    if run_worker_if_requested(sys.argv[1:] if argv is None else argv, run_case):
        return
    args = _parse_args(argv)
    counts = []
    for name in args.models:
        for scale in args.scales:
            counts.append(count_case(name, scale, args.tiny))
            print(f"counted {name} x{scale}", flush=True)
    timings = []
    if not args.no_time:
        for case in _time_cases(args):
            print(f"timing {case['label']} x{case['scale']} on {args.lr_size}x{args.lr_size} ...", flush=True)
            timings.append(spawn_case(Path(__file__), case, args.timeout))
    device = torch.device(args.device)
    report: dict[str, Any] = {
        **environment(device),
        "tiny": args.tiny,
        "output_size": OUTPUT_SIZE,
        "lr_size": args.lr_size,
        "time_scale": args.time_scale,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "flop_method": (
            "torch.utils.flop_counter.FlopCounterMode on meta tensors, exact for the LR input "
            "(720 // scale) x (1280 // scale); counts convolutions and matrix products only (not element-wise "
            "ops, norms, softmax, pooling, interpolation, pixel shuffle); MACs = FLOPs / 2; RRLFN re-parameterised; "
            "SwinIR-light pads its input to multiples of 8 (184x320 at x4) and counts that."
        ),
        "memory_method": MEMORY_METHOD_CUDA if device.type == "cuda" else MEMORY_METHOD_CPU,
        "paper": {name: {str(s): v for s, v in d.items()} for name, d in PAPER.items()},
        "counts": counts,
        "timings": timings,
    }
    print(text_table(COUNT_HEADER, _count_rows(counts, args.tiny), left={0, 3}))
    if timings:
        print(text_table(TIME_HEADER, _time_rows(timings), left={0}))
    write_report(report, args.out, _markdown(report), args.markdown)


if __name__ == "__main__":
    main()
