"""Benchmark of the Gaussian high-pass loss and the random-conv contrastive loss against F.l1_loss.

Forward + backward time and peak extra memory of each loss on random ``(batch, 3, size, size)``
inputs (uniform in [0, 1), fixed seed; ``sr`` requires grad), each case in a fresh subprocess
(see ``_harness.py``). Methods:

* ``l1``               -- ``F.l1_loss(sr, hr)``, the baseline;
* ``high_pass``        -- ``GaussianHighPassLoss(sigma)`` (spatial, separable, reflect padding);
* ``high_pass_fft``    -- ``GaussianHighPassLoss(sigma, mode="fft")``;
* ``random_conv``      -- ``RandomConvContrastiveLoss()`` with the negative given (16 channels);
* ``vgg_ratio``        -- ``RatioContrastiveLoss(VGG19Features(weights=None), CSD_WEIGHTS)``, the CSD /
                          AECR-Net form (random weights: the cost does not depend on them).

    python benchmarks/bench_losses.py                               # CPU, N=16, 192x192
    python benchmarks/bench_losses.py --device cuda --markdown benchmarks/results/losses_cuda.md

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

from contrastive_sr_losses.embeddings.vgg import CSD_WEIGHTS, VGG19Features
from contrastive_sr_losses.losses.high_pass import GaussianHighPassLoss
from contrastive_sr_losses.losses.random_conv import RandomConvContrastiveLoss
from contrastive_sr_losses.losses.ratio_contrastive import RatioContrastiveLoss

METHODS = ("l1", "high_pass", "high_pass_fft", "random_conv", "vgg_ratio")
SEED = 0


def _make_loss(method: str, sigma: float, device: torch.device) -> Callable[..., torch.Tensor]:
    if method == "l1":
        return lambda sr, hr, neg: F.l1_loss(sr, hr)
    if method == "high_pass":
        m = GaussianHighPassLoss(sigma)
        return lambda sr, hr, neg: m(sr, hr)
    if method == "high_pass_fft":
        m = GaussianHighPassLoss(sigma, mode="fft")
        return lambda sr, hr, neg: m(sr, hr)
    if method == "random_conv":
        m = RandomConvContrastiveLoss().to(device)
        return lambda sr, hr, neg: m(sr, hr, neg)
    if method == "vgg_ratio":
        m = RatioContrastiveLoss(VGG19Features(weights=None), CSD_WEIGHTS).to(device)
        return lambda sr, hr, neg: m(sr, hr, neg)
    raise ValueError(f"unknown method {method!r}")


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(case["device"])
    fn = _make_loss(case["method"], case["sigma"], device)
    gen = torch.Generator().manual_seed(SEED)

    def inputs(n: int, size: int) -> tuple[torch.Tensor, ...]:
        shape = (n, 3, size, size)
        sr = torch.rand(shape, generator=gen).to(device).requires_grad_()
        return sr, torch.rand(shape, generator=gen).to(device), torch.rand(shape, generator=gen).to(device)

    def step(sr: torch.Tensor, hr: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        sr.grad = None
        loss = fn(sr, hr, neg)
        loss.backward()
        return loss.detach()

    step(*inputs(1, 32))  # warm-up on a tiny input: code paths and thread pools, not counted as memory
    sr, hr, neg = inputs(case["batch"], case["size"])
    memory = measure_peak_extra(lambda: step(sr, hr, neg), device)
    loss = float(memory.pop("result"))
    timing = time_ms(lambda: step(sr, hr, neg), device, case["repeat"], case["warmup"])
    return {**case, **timing, **memory, "loss": loss, "input_mib": 2 * sr.numel() * sr.element_size() / MIB}


HEADER = ("method", "median ms", "min ms", "x L1", "peak extra MiB", "x L1 memory")


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    l1 = next((r for r in results if r["method"] == "l1" and "error" not in r), None)
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["method"], "error: " + r["error"][:60], "", "", "", ""])
            continue
        x = f"{r['median_ms'] / l1['median_ms']:.1f}x" if l1 else "-"
        xm = f"{r['peak_extra_mib'] / l1['peak_extra_mib']:.1f}x" if l1 and l1["peak_extra_mib"] > 0 else "-"
        mem = f"{r['peak_extra_mib']:.1f}" + ("" if r["memory_resolved"] else " (<=)")
        rows.append([r["method"], f"{r['median_ms']:.2f}", f"{r['min_ms']:.2f}", x, mem, xm])
    return rows


def main(argv: list[str] | None = None) -> None:
    if run_worker_if_requested(sys.argv[1:] if argv is None else argv, run_case):
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--sigma", type=float, default=1.0, help="high-pass sigma (1.0, the default of the loss)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--out", type=Path, default=None, help="JSON (benchmarks/results/losses_<device>.json)")
    p.add_argument("--markdown", type=Path, default=None, help="markdown table (benchmarks/results/losses_<device>.md)")
    args = p.parse_args(argv)
    check_device(p, args.device)
    out = args.out or RESULTS_DIR / f"losses_{args.device}.json"
    md_path = args.markdown or out.with_suffix(".md")
    device = torch.device(args.device)
    common = {k: getattr(args, k) for k in ("size", "batch", "sigma", "device", "repeat", "warmup")}
    results = []
    for method in tqdm(args.methods, desc="cases", unit="case", disable=None):
        result = spawn_case(Path(__file__), {**common, "method": method}, args.timeout)
        if "error" in result:
            tqdm.write(f"[error] {method}: {result['error']}")
        results.append(result)
    env = environment(device)
    report = {
        **env,
        "config": common,
        "timing_method": f"forward + backward, sr.grad = None before each; median/min of {args.repeat} after {args.warmup} warm-up",
        "memory_method": MEMORY_METHOD_CUDA if device.type == "cuda" else MEMORY_METHOD_CPU,
        "results": results,
    }
    rows = _rows(results)
    print(f"{env['device']} | torch {env['torch']} | N={args.batch}, 3x{args.size}x{args.size}, float32")
    print(text_table(HEADER, rows, {0}))
    md = (
        f"Loss forward + backward, N={args.batch}, 3x{args.size}x{args.size}, float32: {env['device']}, "
        f"torch {env['torch']}, {env['date']}.\n\nCommand: `{env['command']}`\n\n" + markdown_table(HEADER, rows, {0})
    )
    write_report(report, out, md, md_path)


if __name__ == "__main__":
    main()
