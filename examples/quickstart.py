"""Quickstart: the loss study's trained networks on your images, then a tiny x2 SR network trained with
L1 and with L1 + 0.1 * PixelContrastiveLoss.

Part 1 (seconds): the final weights of the loss study's longest committed runs (EDSR-baseline 4x32 at
x4, trained on T91 + BSD200 with L1, and with L1 + 0.1 pixel contrastive + 1.5 high-pass, the study's
best objective; same seeds, so paired) are scored on the test photos, none of which they were trained
on, next to the study's own numbers. This is the library's measured effect.

Part 2 (minutes): both runs start from the same initial weights and see the same sequence of random patches, so
the only difference is the loss, written as one :class:`~contrastive_sr_losses.CombinedLoss`. The
progress bars show the L1 term and the contrastive term separately (the contrastive term does not
go to 0: a perfect output still scores about 3.5 at region 8). The held-out images are scored with
PSNR on the Y channel (crop_border = scale; higher is better), and a side-by-side crop
HR | bicubic | L1 | L1 + contrastive is saved, each panel labelled with its method and PSNR-Y.

Torch uses at most the machine's free cores (CPU count minus the 1-minute load average, at least
1), and never more than ``--threads``.

Run (needs ``pip install -e .[examples]``; README states the measured time and machine)::

    python examples/quickstart.py                             # photos bundled with scikit-image
    python examples/quickstart.py --data ../shared/data/T91   # any folder of HR images

Outputs: ``examples/output/quickstart_x{scale}.png`` and ``.json`` (change with ``--out``).
A run this short is a smoke test of the loss, not a reproduction of the paper's numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from tqdm import tqdm

from contrastive_sr_losses import CombinedLoss
from contrastive_sr_losses.functional import imresize, quantize
from contrastive_sr_losses.metrics import psnr_y

SKIMAGE_TRAIN = ("astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "stereo_motorcycle", "camera")
SKIMAGE_TEST = ("chelsea", "rocket")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
Images = list[tuple[str, Tensor]]  # (name, (1, 3, H, W) float32 RGB in [0, 1])
Pairs = list[tuple[Tensor, Tensor]]  # (LR, HR) training images


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="folder of HR images (default: scikit-image photos)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--steps", type=int, default=1500, help="training steps per run")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="HR patch size (a multiple of --scale)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay to 1%%)")
    p.add_argument("--weight", type=float, default=0.1, help="weight of the contrastive term")
    p.add_argument("--region", type=int, default=8, help="PixelContrastiveLoss region size")
    p.add_argument("--eval-crop", type=int, default=256, help="centre-crop test images to at most this (0: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda (falls back to cpu if unavailable)")
    p.add_argument("--threads", type=int, default=None,
                   help="most torch CPU threads to use (default: the free cores; never more than those)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output")
    p.add_argument("--no-study", action="store_true", help="skip part 1 (the loss study's committed weights)")
    p.add_argument("--study-results", type=Path, default=STUDY_RESULTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.patch % args.scale or args.patch < 2 * args.scale:
        p.error(f"--patch must be a multiple of --scale={args.scale} and >= {2 * args.scale}")
    if min(args.steps, args.batch) < 1:
        p.error("--steps and --batch must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def free_cores() -> int:
    """Cores this process may use minus the 1-minute load average (other jobs' runnable threads),
    at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def choose_threads(requested: int | None) -> tuple[int, str]:
    """Torch threads: the free cores, capped by ``--threads``; and a line that says why."""
    free = free_cores()
    if requested is None:
        return free, f"{free} thread(s): the free cores of this machine (--threads N to use fewer)"
    if requested > free:
        return free, f"{free} thread(s): --threads {requested} asked for more than the {free} free core(s)"
    return requested, f"{requested} thread(s) (--threads)"


def machine() -> str:
    """CPU model and core count, for the runtime line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def to_tensor(img: np.ndarray) -> Tensor:
    """uint8/bool HxW, HxWx3 or HxWx4 array -> (1, 3, H, W) float32 RGB in [0, 1]."""
    img = np.asarray(img)
    img = img.astype(np.float32) if img.dtype == bool else img.astype(np.float32) / 255.0
    img = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)


def load_images(data: Path | None) -> tuple[Images, Images]:
    """Train and test images: scikit-image photos, or a folder with every 5th image held out."""
    if data is None:
        import skimage.data

        def get(name: str) -> Tensor:
            img = getattr(skimage.data, name)()
            return to_tensor(img[0] if isinstance(img, tuple) else img)  # stereo_motorcycle: a tuple

        return [(n, get(n)) for n in SKIMAGE_TRAIN], [(n, get(n)) for n in SKIMAGE_TEST]
    files = sorted(f for f in data.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise SystemExit(f"--data {data}: need at least 2 images (png/jpg/bmp), found {len(files)}")
    test_idx = {i for i in range(len(files)) if i % 5 == 4} or {len(files) - 1}
    images = [(f.name, to_tensor(np.asarray(Image.open(f).convert("RGB")))) for f in files]
    train_set = [im for i, im in enumerate(images) if i not in test_idx]
    return train_set, [im for i, im in enumerate(images) if i in test_idx]


def mod_crop(hr: Tensor, scale: int, size: int = 0) -> Tensor:
    """Centre-crop to at most ``size`` (0: no limit), then to a multiple of ``scale``."""
    h, w = hr.shape[-2:]
    th, tw = (min(h, size), min(w, size)) if size else (h, w)
    th, tw = th - th % scale, tw - tw % scale
    top, left = (h - th) // 2, (w - tw) // 2
    return hr[..., top : top + th, left : left + tw]


def downsample(hr: Tensor, scale: int) -> Tensor:
    """The SR literature's LR image: MATLAB-compatible bicubic, rounded to 8 bits."""
    return quantize(imresize(hr, 1 / scale))


def upsample(lr: Tensor, scale: int) -> Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


class TinySR(nn.Module):
    """conv-ReLU body + PixelShuffle, added to the bicubic upsampling of the input (global skip)."""

    def __init__(self, scale: int, channels: int = 32, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        tail = nn.Conv2d(channels, 3 * scale**2, 3, padding=1)
        with torch.no_grad():  # small residual: the untrained network is within ~0.02 dB of bicubic
            tail.weight.mul_(0.1)  # (an all-zero tail stalls L1 training at bicubic quality)
            tail.bias.mul_(0.1)
        self.body = nn.Sequential(*layers, tail, nn.PixelShuffle(scale))
        self.scale = scale

    def forward(self, lr: Tensor) -> Tensor:
        return self.body(lr) + upsample(lr, self.scale)


def sample_batch(pairs: Pairs, args: argparse.Namespace, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random aligned (LR, HR) patches with random flips and 90-degree rotations."""
    p, s = args.patch // args.scale, args.scale
    lrs, hrs = [], []
    for _ in range(args.batch):
        lr, hr = pairs[int(torch.randint(len(pairs), (1,), generator=gen))]
        y = int(torch.randint(lr.shape[-2] - p + 1, (1,), generator=gen))
        x = int(torch.randint(lr.shape[-1] - p + 1, (1,), generator=gen))
        lr_p, hr_p = lr[..., y : y + p, x : x + p], hr[..., y * s : (y + p) * s, x * s : (x + p) * s]
        hflip, vflip, rot = torch.randint(2, (3,), generator=gen).tolist()
        ops = ((hflip, lambda t: t.flip(-1)), (vflip, lambda t: t.flip(-2)), (rot, lambda t: t.rot90(1, (-2, -1))))
        for flag, op in ops:
            lr_p, hr_p = (op(lr_p), op(hr_p)) if flag else (lr_p, hr_p)
        lrs.append(lr_p)
        hrs.append(hr_p)
    return torch.cat(lrs), torch.cat(hrs)


def train(model: nn.Module, pairs: Pairs, args: argparse.Namespace, criterion: CombinedLoss, desc: str) -> nn.Module:
    """Adam + cosine decay on random patches; the patch sequence depends only on ``--seed``.
    The bar shows a running mean of each term's unweighted value (L1, contrastive)."""
    device = torch.device(args.device)
    model.to(device).train()
    gen = torch.Generator().manual_seed(args.seed)  # same patch sequence for every run
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=args.lr * 0.01)
    running: dict[str, float] = {}
    labels = {"l1": "L1", "pixel_contrastive": "contrastive"}
    # disable=None: the bar shows on a terminal and stays quiet when the output is a file or a pipe
    with tqdm(range(args.steps), desc=desc, dynamic_ncols=True, disable=None) as bar:
        for _ in bar:
            lr, hr = (t.to(device) for t in sample_batch(pairs, args, gen))
            loss = criterion(model(lr), hr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for name, value in criterion.last_values.items():
                v = value.item()
                running[name] = v if name not in running else 0.95 * running[name] + 0.05 * v
            bar.set_postfix({labels.get(k, k): f"{v:.4f}" for k, v in running.items()})
    return model.eval()


@torch.no_grad()
def evaluate(
    models: dict[str, nn.Module], tests: Images, scale: int, device: str
) -> tuple[list[dict], dict[str, Tensor]]:
    """Per-image PSNR-Y of bicubic and every model; also the outputs on the first test image."""
    rows, first = [], {}
    for i, (name, hr) in enumerate(tests):
        lr, hr = downsample(hr, scale).to(device), hr.to(device)
        outs = {"bicubic": imresize(lr, scale)} | {k: m(lr) for k, m in models.items()}
        outs = {k: v.clamp(0.0, 1.0).cpu() for k, v in outs.items()}
        rows.append({"image": name} | {k: psnr_y(v, hr.cpu(), crop_border=scale).item() for k, v in outs.items()})
        if i == 0:
            first = {"HR": hr.cpu()} | outs
    return rows, first


def textured_crop(hr: Tensor, size: int) -> tuple[int, int, int]:
    """(top, left, size) of the square crop with the highest HR gradient energy."""
    size = min(size, *hr.shape[-2:])
    gray = hr.mean(1, keepdim=True)
    energy = F.pad(gray.diff(dim=-1).abs(), (0, 1)) + F.pad(gray.diff(dim=-2).abs(), (0, 0, 0, 1))
    stride = max(1, size // 8)
    pooled = F.avg_pool2d(energy, size, stride=stride)
    idx = int(pooled.flatten().argmax())
    return (idx // pooled.shape[-1]) * stride, (idx % pooled.shape[-1]) * stride, size


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def save_panels(
    images: dict[str, Tensor], labels: dict[str, str], path: Path, crop: int = 96, zoom: int = 3, gap: int = 8
) -> None:
    """Save crops side by side (left to right in dict order), nearest-neighbour zoomed, white gaps,
    each with its label (method and PSNR-Y) written above it."""
    top, left, size = textured_crop(images["HR"], crop)
    tiles = [quantize(v[0, :, top : top + size, left : left + size]) for v in images.values()]
    tiles = [t.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2) for t in tiles]
    side, strip = size * zoom, 44
    canvas = torch.ones(3, strip + side, len(tiles) * side + (len(tiles) - 1) * gap)
    for i, t in enumerate(tiles):
        canvas[:, strip:, i * (side + gap) : i * (side + gap) + side] = t
    picture = Image.fromarray(canvas.mul(255).round().byte().permute(1, 2, 0).numpy())
    draw, font = ImageDraw.Draw(picture), _font(15)
    for i, key in enumerate(images):
        for row, text in enumerate(labels[key].split("\n")[:2]):
            draw.text((i * (side + gap) + 4, 4 + 19 * row), text, fill=(0, 0, 0), font=font)
    picture.save(path)


NAMES = {"bicubic": "bicubic", "l1": "L1", "l1+contrastive": "L1 + contrastive"}
#: seed-to-seed spread of L1 alone for this tiny x2 network trained 1500 steps on T91
#: (benchmarks/results/high_pass_sigma*.json: Set5 36.734 / 36.709, Set14 32.477 / 32.502)
NOISE_DB = 0.025


# ---------------------------------------------------------------------------------------- part 1

STUDY_RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
#: result sets of the loss study whose final weights are committed, longest training first
STUDY_RUNGS = ("loss_study_9600", "loss_study_2400")
STUDY_PAIR = {"l1": "L1", "pc_T1+high_pass": "L1 + 0.1 PC + 1.5 HP"}
STUDY_NET = ("edsr_baseline", 4, {"n_resblocks": 4, "n_feats": 32})  # the study's CPU preset


def study_weights(results: Path) -> tuple[str, int, dict[int, dict[str, Path]]] | None:
    """The longest rung with committed weights of both objectives for some seed:
    ``(name, iterations, {seed: {objective: file}})``, or None."""
    for rung in STUDY_RUNGS:
        folder = results / f"{rung}_runs"
        seeds: dict[int, dict[str, Path]] = {}
        for f in sorted(folder.glob("l1__seed*.pt")):
            seed = int(f.stem.rsplit("seed", 1)[1])
            files = {o: folder / f"{o.replace('/', '_over_')}__seed{seed}.pt" for o in STUDY_PAIR}
            if all(p.is_file() for p in files.values()):
                seeds[seed] = files
        if seeds:
            iters = json.loads((folder / f"l1__seed{min(seeds)}.json").read_text())["iterations"]
            return rung, iters, seeds
    return None


def _study_interval(results: Path, rung: str) -> str:
    """The study's own paired numbers for the best objective at this length, one line."""
    report = results / f"{rung}.json"
    try:
        cells = json.loads(report.read_text())["summary"]["pc_T1+high_pass"]["sets"]
    except (OSError, KeyError, ValueError):
        return ""
    parts = []
    for name, cell in cells.items():
        d = cell.get("psnr_vs_l1")
        if d:
            parts.append(f"{name} {d['mean']:+.3f}" + (f" ± {d['half']:.3f}" if d.get("half") is not None else ""))
    return ", ".join(parts)


@torch.no_grad()
def evaluate_study(images: Images, device: str, results: Path = STUDY_RESULTS) -> dict | None:
    """Part 1: PSNR-Y (x4, crop_border 4) of the study's committed L1 and best-objective weights on
    ``images``, per seed, and the paired differences."""
    from contrastive_sr_losses import create_model

    found = study_weights(results)
    if found is None:
        print(f"part 1 skipped: no committed loss-study weights in {results}")
        return None
    rung, iters, seeds = found
    arch, scale, kwargs = STUDY_NET
    hrs = [(n, mod_crop(im, scale)) for n, im in images if min(im.shape[-2:]) >= 8 * scale]
    pairs = [(n, downsample(hr, scale).to(device), hr) for n, hr in hrs]
    table: dict[int, dict[str, float]] = {}
    for seed, files in seeds.items():
        table[seed] = {}
        for objective, path in files.items():
            model = create_model(arch, scale, **kwargs)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            model.to(device).eval()
            scores = [psnr_y(model(lr).clamp(0, 1).cpu(), hr, crop_border=scale).item() for _, lr, hr in pairs]
            table[seed][objective] = float(np.mean(scores))
    diffs = {seed: t["pc_T1+high_pass"] - t["l1"] for seed, t in table.items()}
    names = ", ".join(n for n, _ in hrs)
    print(f"\npart 1: the loss study's trained networks ({arch} 4x32, x{scale}, {iters:,} iterations on T91 + BSD200; "
          f"results in benchmarks/results/{rung}_runs), mean PSNR-Y (dB, higher is better) on {len(hrs)} photos "
          f"they never saw ({names}):")
    print(f"{'seed':>6} {STUDY_PAIR['l1']:>10} {STUDY_PAIR['pc_T1+high_pass']:>22} {'difference':>11}")
    for seed, t in table.items():
        print(f"{seed:>6} {t['l1']:>10.3f} {t['pc_T1+high_pass']:>22.3f} {diffs[seed]:>+11.3f}")
    mean = float(np.mean(list(diffs.values())))
    ahead = sum(d > 0 for d in diffs.values())
    print(f"mean difference {mean:+.3f} dB; the best objective is ahead for {ahead} of {len(diffs)} seeds (each seed: "
          "the same initial weights and patches for both, so the difference is the loss's).")
    study = _study_interval(results, rung)
    if study:
        print(f"The study measured, on its test sets (mean ± 95% interval over the seeds): {study} dB.")
    return {"rung": rung, "iterations": iters, "images": [n for n, _ in hrs], "psnr_y": table, "difference": diffs,
            "mean_difference": mean}


# ---------------------------------------------------------------------------------------- part 2


def print_table(rows: list[dict], mean: dict[str, float]) -> None:
    cols = list(mean)
    width = max(10, *(len(r["image"]) for r in rows))
    print(f"{'image':<{width}} " + " ".join(f"{c:>15}" for c in cols))
    for r in rows + [{"image": "mean"} | mean]:
        print(f"{r['image']:<{width}} " + " ".join(f"{r[c]:>15.3f}" for c in cols))


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison; returns the results dict that is also written as JSON."""
    start = time.perf_counter()
    args = parse_args(argv)
    threads, why = choose_threads(args.threads)
    torch.set_num_threads(threads)
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: running on cpu")
        args.device = "cpu"
    train_imgs, test_imgs = load_images(args.data)
    study = None if args.no_study else evaluate_study(train_imgs + test_imgs, args.device, args.study_results)
    print("\npart 2: a tiny network trained here, to show the API at work")
    train_imgs = [(n, mod_crop(im, args.scale)) for n, im in train_imgs if min(im.shape[-2:]) >= args.patch]
    pairs = [(downsample(hr, args.scale), hr) for _, hr in train_imgs]  # LR computed once
    if not pairs:
        raise SystemExit(f"no training image is at least {args.patch}x{args.patch}")
    tests = [(n, mod_crop(im, args.scale, args.eval_crop)) for n, im in test_imgs]
    crop_note = f"centre-cropped to at most {args.eval_crop}x{args.eval_crop}" if args.eval_crop else "full size"
    print(f"x{args.scale} | train: {len(pairs)} images | test: {len(tests)} images ({crop_note}) | {args.device} | {why}")

    torch.manual_seed(args.seed)
    init = TinySR(args.scale)
    l1_only = CombinedLoss({"l1": 1.0})
    with_contrastive = CombinedLoss({"l1": 1.0, "pixel_contrastive": (args.weight, {"region": args.region})})
    models = {
        "l1": train(copy.deepcopy(init), pairs, args, l1_only, "L1"),
        "l1+contrastive": train(copy.deepcopy(init), pairs, args, with_contrastive, f"L1 + {args.weight:g} x contrastive"),
    }
    rows, first = evaluate(models, tests, args.scale, args.device)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "image"}
    print(f"\nPSNR-Y (dB, higher is better), crop_border={args.scale}, test images {crop_note}:")
    print_table(rows, mean)
    diff = mean["l1+contrastive"] - mean["l1"]
    print(
        f"L1 + contrastive - L1: {diff:+.3f} dB. Runs this short on a network this small differ by about {NOISE_DB} dB "
        "from seed to seed (L1 alone), so a difference of a few hundredths of a dB here is noise either way; the "
        "loss's measured effect is the loss study's (docs/choosing-a-loss.md)."
    )

    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / f"quickstart_x{args.scale}.png", args.out / f"quickstart_x{args.scale}.json"
    labels = {"HR": f"HR (ground truth), {tests[0][0]}\nPSNR-Y: higher is better"} | {
        k: f"{NAMES[k]}\nPSNR-Y {rows[0][k]:.2f} dB" for k in first if k != "HR"
    }
    save_panels(first, labels, png)
    wall = time.perf_counter() - start
    results = {
        "command": " ".join(["python examples/quickstart.py", *(sys.argv[1:] if argv is None else argv)]),
        "torch": torch.__version__,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_images": [n for n, _ in train_imgs],
        "test_images": [n for n, _ in tests],
        "psnr_y": {"per_image": rows, "mean": mean},
        "study": study,
        "wall_time_s": round(wall, 1),
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "load_average_at_start": load_at_start,
        "figure": str(png),
    }
    js.write_text(json.dumps(results, indent=2))
    print(f"\n{tests[0][0]}: HR | bicubic | L1 | L1 + contrastive, labelled -> {png}\nresults -> {js}")
    print(f"wall time {wall:.1f} s on {torch.get_num_threads()} thread(s), {machine()}, load average {load_at_start:.2f} at start")
    return results


if __name__ == "__main__":
    main()
