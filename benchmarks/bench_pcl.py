"""Benchmark of PCL per training step: time and peak extra memory, against L1 alone and a VGG ratio loss.

Methods, each ``loss = F.l1_loss(sr, hr) [+ weight * term]; loss.backward()`` on random
``(batch, 3, size, size)`` images (uniform in [0, 1), fixed seed; ``sr`` is a leaf that requires grad,
standing for the SR network's output, so only the losses' own cost is measured):

* ``l1``       -- ``F.l1_loss`` alone, the baseline every SR model already pays for;
* ``pcl``      -- PCL as trained: ``PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator()))``, i.e.
                  one discriminator step (eq 7, Adam, on ``sr.detach()`` vs ``hr``) + the generator-side
                  loss (eqs 8-10: HR + 3 sharpened positives, 4 blurred negatives, 4 feature layers),
                  weight 1 (eq 11);
* ``pcl_frozen`` -- the generator-side loss alone with a frozen discriminator (the cost with a
                  pretrained embedding, or the share of the step that is not the discriminator's);
* ``vgg``      -- the CSD / AECR-Net ratio loss on randomly initialised VGG19 relu1_1..relu5_1 (weights
                  1/32 .. 1; random weights cost the same time as ImageNet ones), negative = the
                  bicubic-upsampled LR (``hr`` average-pooled by ``--scale``), weight 1.

What is measured, per (method, dtype) case, each in a fresh Python subprocess (see ``_harness``):
time of one step (median and min over ``--repeat`` runs after ``--warmup``), and the peak extra memory
of one step above what was resident before it (inputs, parameters and the discriminator's Adam state
excluded: a tiny warm-up step creates the optimizer state first). ``bfloat16`` = the step under
``torch.autocast(dtype=torch.bfloat16)`` with float32 inputs and parameters.

Examples::

    python benchmarks/bench_pcl.py --markdown benchmarks/results/pcl_cpu.md             # N=16, 3x192x192, CPU
    python benchmarks/bench_pcl.py --device cuda --dtypes float32 bfloat16 --markdown benchmarks/results/pcl_cuda.md
    python benchmarks/bench_pcl.py --batch 2 --size 48 --repeat 1 --warmup 0 --out /tmp/pcl_smoke.json   # smoke

Run it on an otherwise idle machine: timings of a loaded CPU are not comparable.
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

METHODS: tuple[str, ...] = ("l1", "pcl", "pcl_frozen", "vgg")
METHOD_LABELS: dict[str, str] = {
    "l1": "L1",
    "pcl": "L1 + PCL (D step + generator loss)",
    "pcl_frozen": "L1 + PCL generator loss (frozen D)",
    "vgg": "L1 + VGG19 ratio (CSD)",
}
DTYPES: tuple[str, ...] = ("float32", "bfloat16")
SEED = 0
WEIGHT = 1.0  # eq 11 of PCL (alpha = 1); CSD's weight varies with the task, 1 here too
ERROR_CHARS_IN_TABLE = 80
Term = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# Worker side: one case, run in its own process.
# --------------------------------------------------------------------------------------------
def _pcl_term(device: torch.device, train_discriminator: bool) -> tuple[Term, int]:
    from contrastive_sr_losses.embeddings import WaveletDiscriminator
    from contrastive_sr_losses.losses.pcl import FrequencyContrastiveLoss
    from contrastive_sr_losses.losses.pcl_trainer import PCLTrainer

    disc = WaveletDiscriminator().to(device)
    params = sum(p.numel() for p in disc.parameters())
    if not train_discriminator:
        criterion = FrequencyContrastiveLoss(disc.requires_grad_(False))
        return (lambda sr, hr, lr: criterion(sr, hr)), params
    trainer = PCLTrainer(FrequencyContrastiveLoss(disc))
    return (lambda sr, hr, lr: trainer(sr, hr)), params


def _vgg_term(device: torch.device) -> tuple[Term, int]:
    # One small function: the only place that knows the VGG baseline's API.
    from contrastive_sr_losses.embeddings.vgg import CSD_WEIGHTS, VGG19Features
    from contrastive_sr_losses.losses.ratio_contrastive import RatioContrastiveLoss

    criterion = RatioContrastiveLoss(VGG19Features(weights=None), CSD_WEIGHTS).to(device)
    params = sum(p.numel() for p in criterion.parameters())
    return (lambda sr, hr, lr: criterion(sr, hr, lr=lr)), params


def _term(method: str, device: torch.device) -> tuple[Term | None, int]:
    if method == "l1":
        return None, 0
    if method in ("pcl", "pcl_frozen"):
        return _pcl_term(device, train_discriminator=method == "pcl")
    if method == "vgg":
        return _vgg_term(device)
    raise ValueError(f"unknown method {method!r}")


def _inputs(batch: int, size: int, scale: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Seeded values drawn on the CPU: every device sees the same images."""
    gen = torch.Generator().manual_seed(SEED)
    hr = torch.rand(batch, 3, size, size, generator=gen)
    sr = (hr + 0.05 * torch.randn(batch, 3, size, size, generator=gen)).clamp(0, 1)
    lr = F.avg_pool2d(hr, scale)
    return sr.to(device).requires_grad_(), hr.to(device), lr.to(device)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(case["device"])
    torch.manual_seed(SEED)
    term, params = _term(case["method"], device)
    autocast = case["dtype"] == "bfloat16"

    def step(sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        sr.grad = None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = F.l1_loss(sr, hr)
            if term is not None:
                loss = loss + WEIGHT * term(sr, hr, lr)
        loss.backward()
        return loss.detach()

    # Initialise code paths, thread pools and the discriminator's Adam state on a tiny input, so that
    # none of it is counted as the step's memory (the optimizer state persists across steps anyway).
    # Two 64x64 images: training-mode BatchNorm needs more than one value per channel in the last block.
    step(*_inputs(2, 64, case["scale"], device))
    sr, hr, lr = _inputs(case["batch"], case["size"], case["scale"], device)
    memory = measure_peak_extra(lambda: step(sr, hr, lr), device)
    loss = float(memory.pop("result"))
    timing = time_ms(lambda: step(sr, hr, lr), device, case["repeat"], case["warmup"])
    return {
        **case,
        "label": METHOD_LABELS[case["method"]],
        **timing,
        "loss": loss,
        "embedding_parameters": params,
        "input_mib": (sr.numel() + hr.numel() + lr.numel()) * sr.element_size() / MIB,
        "threads": torch.get_num_threads(),
        **memory,
    }


# --------------------------------------------------------------------------------------------
# Driver side: cases, tables.
# --------------------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


HEADER: tuple[str, ...] = (
    "dtype", "method", "median ms", "min ms", "x L1", "x VGG", "peak extra MiB", "x L1 memory", "loss",
)  # fmt: skip
LEFT: frozenset[int] = frozenset({0, 1})
LEGEND = (
    "x L1 / x VGG: median time over that of the L1 / VGG19 row of the same dtype; x L1 memory: peak extra "
    "over the L1 row's; (<=): RSS did not rise above the process's earlier peak, upper bound; loss: the "
    "measured step's total loss (PCL's includes L1 + eqs 8-10)."
)


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    ok = {(r["dtype"], r["method"]): r for r in results if "error" not in r}
    rows: list[list[str]] = []
    for r in results:
        lead = [r["dtype"], METHOD_LABELS[r["method"]]]
        if "error" in r:
            rows.append(lead + ["error: " + r["error"][:ERROR_CHARS_IN_TABLE]] + [""] * (len(HEADER) - 3))
            continue
        l1, vgg = ok.get((r["dtype"], "l1")), ok.get((r["dtype"], "vgg"))
        peak = _fmt(r["peak_extra_mib"], ".1f") + ("" if r.get("memory_resolved", True) else " (<=)")
        mem_ratio = r["peak_extra_mib"] / l1["peak_extra_mib"] if l1 and l1["peak_extra_mib"] > 0 else None
        rows.append(
            lead
            + [
                _fmt(r["median_ms"], ".1f"),
                _fmt(r["min_ms"], ".1f"),
                _fmt(r["median_ms"] / l1["median_ms"] if l1 else None, ".1f", "x"),
                _fmt(r["median_ms"] / vgg["median_ms"] if vgg else None, ".2f", "x"),
                peak,
                _fmt(mem_ratio, ".1f", "x"),
                _fmt(r["loss"], ".4f"),
            ]
        )
    return rows


def _caption(report: dict[str, Any]) -> str:
    return (
        f"One training step's losses, forward + backward (PCL: + one discriminator Adam step), on "
        f"sr/hr of {report['batch']} x 3 x {report['size']} x {report['size']} (LR x{report['scale']} for "
        f"the VGG negative): {report['device']}, torch {report['torch']}, python {report['python']}, "
        f"{report['date']}."
    )


def _markdown_document(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            _caption(report), "", f"Command: `{report['command']}`", "",
            markdown_table(HEADER, _rows(report["results"]), LEFT), "", LEGEND, "",
            f"`peak extra MiB`: {report['memory_method']}", "",
        ]
    )  # fmt: skip


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time and peak extra memory of PCL per training step (discriminator step + generator-"
        "side loss) against L1 alone and a VGG19 ratio contrastive loss; each case in a fresh subprocess.",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods (all)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=["float32"],
                        help="float32, or bfloat16 (= autocast) (float32)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=16, help="batch size N (16)")
    parser.add_argument("--size", type=int, default=192, help="HR side H = W (192)")
    parser.add_argument("--scale", type=int, default=4, help="LR downscale for the VGG negative (4)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device (cpu)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones (1)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per case (3600)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (benchmarks/results/pcl_<device>.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table as markdown here")
    args = parser.parse_args(argv)
    for name in ("batch", "repeat", "scale"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.size < 32 or args.size % args.scale:
        parser.error("--size must be >= 32 and a multiple of --scale")
    last = -(-args.size // 2)  # the Haar DWT halves the size, then four stride-2 blocks (ceil each time)
    for _ in range(4):
        last = -(-last // 2)
    if "pcl" in args.methods and args.batch * last * last < 2:
        parser.error("pcl: training-mode BatchNorm of the discriminator's last block needs >= 2 values: "
                     "raise --batch or --size")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    check_device(parser, args.device)
    args.methods, args.dtypes = list(dict.fromkeys(args.methods)), list(dict.fromkeys(args.dtypes))
    if args.out is None:
        args.out = RESULTS_DIR / f"pcl_{args.device}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    if run_worker_if_requested(sys.argv[1:] if argv is None else argv, run_case):
        return
    args = _parse_args(argv)
    device = torch.device(args.device)
    common = {"device": args.device, "batch": args.batch, "size": args.size, "scale": args.scale,
              "repeat": args.repeat, "warmup": args.warmup}  # fmt: skip
    cases = [{**common, "dtype": d, "method": m} for d in args.dtypes for m in args.methods]
    results: list[dict[str, Any]] = []
    progress = tqdm(cases, desc="cases", unit="case", disable=None)
    for case in progress:
        what = f"{case['method']} {case['dtype']}"
        progress.set_postfix_str(what)
        result = spawn_case(Path(__file__), case, args.timeout)
        if "error" in result:
            tqdm.write(f"[failed] {what}: {result['error']}")
        results.append(result)
    progress.close()

    report: dict[str, Any] = {
        **environment(device),
        **{k: common[k] for k in ("batch", "size", "scale", "repeat", "warmup")},
        "seed": SEED,
        "weight": WEIGHT,
        "timing_method": (
            "time.perf_counter() around one step (sr.grad = None; forward of L1 [+ term, PCL: including the "
            "discriminator's forward, backward and Adam step]; backward)"
            + (" bracketed by torch.cuda.synchronize()" if device.type == "cuda" else "")
            + f"; median and min over {args.repeat} runs after {args.warmup} warm-up run(s) (and the memory run)"
        ),
        "memory_method": MEMORY_METHOD_CUDA if device.type == "cuda" else MEMORY_METHOD_CPU,
        "results": results,
    }
    print(_caption(report))
    print(text_table(HEADER, _rows(results), LEFT))
    write_report(report, args.out, _markdown_document(report), args.markdown)


if __name__ == "__main__":
    main()
