"""Experiment behind GaussianHighPassLoss's default sigma (G-IDRN gives none).

Trains the quickstart's tiny x2 network (examples/quickstart.py: TinySR, same initialisation, same patch
sequence, Adam + cosine decay) once with L1 alone and once per sigma with the paper's best weighting
``0.4 * L1 + 0.6 * L_hf`` (Wang, Zhao, Liu and Tao 2024, table 3), written here as ``L1 + 1.5 * L_hf`` (Adam is invariant to
the scale of the loss), then reports PSNR-Y (crop = scale) on the test folders.

Default data: training on T91, testing on Set5 + Set14, read from ``--data`` (default ../shared/data).
Results (JSON with device, torch version and command line, plus a markdown table) go to
``benchmarks/results/high_pass_sigma.{json,md}``; finished runs are kept in the JSON and skipped when the
script is run again (resume).

Run it from the repository root as a module (it imports the quickstart as ``examples.quickstart``):

    python -m benchmarks.high_pass_sigma                       # sigma 0.5 1 2 3, 1500 steps
    python -m benchmarks.high_pass_sigma --steps 300 --sigmas 1 # a quick look
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

if not __package__:
    raise SystemExit("run it from the repository root as a module: python -m benchmarks.high_pass_sigma [options]")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from contrastive_sr_losses.losses.high_pass import GaussianHighPassLoss  # noqa: E402
from examples import quickstart  # noqa: E402  (the tiny network, training loop and evaluation of the main job)

from ._harness import RESULTS_DIR, environment, markdown_table, text_table, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_folder(folder: Path) -> list[tuple[str, torch.Tensor]]:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in quickstart.IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [(f"{folder.name}/{f.name}", quickstart.to_tensor(np.asarray(Image.open(f).convert("RGB")))) for f in files]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--train", nargs="+", default=["T91"], help="training folders under --data")
    p.add_argument("--test", nargs="+", default=["Set5", "Set14"], help="test folders under --data")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--beta-over-alpha", type=float, default=1.5, help="L_hf weight relative to L1 (0.6/0.4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "high_pass_sigma.json")
    p.add_argument("--markdown", type=Path, default=RESULTS_DIR / "high_pass_sigma.md")
    args = p.parse_args(argv)
    for name in args.train + args.test:
        if not (args.data / name).is_dir():
            raise SystemExit(f"{args.data / name} is not a folder (use --data DIR)")

    qargs = quickstart.parse_args(
        ["--scale", str(args.scale), "--steps", str(args.steps), "--seed", str(args.seed), "--weight", str(args.beta_over_alpha)]
    )
    train = [(n, quickstart.mod_crop(im, args.scale)) for d in args.train for n, im in load_folder(args.data / d)]
    pairs = [(quickstart.downsample(hr, args.scale), hr) for _, hr in train if min(hr.shape[-2:]) >= qargs.patch]
    tests = [(n, quickstart.mod_crop(im, args.scale)) for d in args.test for n, im in load_folder(args.data / d)]

    done: dict[str, dict] = {}
    if args.out.is_file():
        old = json.loads(args.out.read_text())
        if old.get("config") == {"steps": args.steps, "scale": args.scale, "seed": args.seed, "train": args.train, "test": args.test}:
            done = {r["run"]: r for r in old["runs"]}
    torch.manual_seed(args.seed)
    init = quickstart.TinySR(args.scale)
    runs = [("l1", None)] + [(f"sigma={s:g}", s) for s in args.sigmas]
    results = []
    for name, sigma in runs:
        if name in done:
            print(f"{name}: kept from {args.out}")
            results.append(done[name])
            continue
        start = time.perf_counter()
        loss = None if sigma is None else GaussianHighPassLoss(sigma)
        model = quickstart.train(copy.deepcopy(init), pairs, qargs, loss, name)
        rows, _ = quickstart.evaluate({"model": model}, tests, args.scale, "cpu")
        per_set = {d: float(np.mean([r["model"] for r in rows if r["image"].startswith(d + "/")])) for d in args.test}
        bicubic = {d: float(np.mean([r["bicubic"] for r in rows if r["image"].startswith(d + "/")])) for d in args.test}
        seconds = round(time.perf_counter() - start, 1)
        results.append({"run": name, "sigma": sigma, "psnr_y": per_set, "bicubic": bicubic, "seconds": seconds})
        report = {
            **environment(torch.device("cpu")),
            "config": {"steps": args.steps, "scale": args.scale, "seed": args.seed, "train": args.train, "test": args.test},
            "objective": f"L1 (run 'l1') or L1 + {args.beta_over_alpha:g} * GaussianHighPassLoss(sigma)",
            "runs": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # checkpoint after every run

    header = ["run", *(f"{d} PSNR-Y" for d in args.test), *(f"{d} vs L1" for d in args.test)]
    l1 = next(r for r in results if r["run"] == "l1")
    rows = [
        [r["run"], *(f"{r['psnr_y'][d]:.3f}" for d in args.test), *(f"{r['psnr_y'][d] - l1['psnr_y'][d]:+.3f}" for d in args.test)]
        for r in results
    ]
    rows.append(["bicubic", *(f"{l1['bicubic'][d]:.3f}" for d in args.test), *("" for _ in args.test)])
    print(text_table(header, rows, {0}))
    report = json.loads(args.out.read_text())
    md = (
        f"Gaussian high-pass sigma experiment: x{args.scale}, {args.steps} steps, TinySR, train {'+'.join(args.train)}; "
        f"{report['device']}, torch {report['torch']}.\n\nCommand: `{report['command']}`\n\n"
        + markdown_table(header, rows, {0})
    )
    write_report(report, args.out, md, args.markdown)
    return report


if __name__ == "__main__":
    main()
