"""Quickstart: train a tiny x2 SR network with L1 and with L1 + 0.1 * PixelContrastiveLoss.

Both runs start from the same initial weights and see the same sequence of random patches, so
the only difference is the loss. The held-out images are scored with PSNR on the Y channel
(crop_border = scale), and a side-by-side crop HR | bicubic | L1 | L1+contrastive is saved.

Run (about 2 minutes on 2 CPU cores; needs ``pip install -e .[examples]``)::

    python examples/quickstart.py                             # photos bundled with scikit-image
    python examples/quickstart.py --data ../shared/data/T91   # any folder of HR images

Outputs: ``examples/output/quickstart_x{scale}.png`` and ``.json`` (change with ``--out``).
A run this short is a smoke test of the loss, not a reproduction of the paper's numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from contrastive_sr_losses import PixelContrastiveLoss
from contrastive_sr_losses.metrics import imresize, psnr_y, quantize

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
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output")
    args = p.parse_args(argv)
    if args.patch % args.scale or args.patch < 2 * args.scale:
        p.error(f"--patch must be a multiple of --scale={args.scale} and >= {2 * args.scale}")
    if min(args.steps, args.batch) < 1:
        p.error("--steps and --batch must be >= 1")
    return args


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


def train(
    model: nn.Module, pairs: Pairs, args: argparse.Namespace, contrastive: nn.Module | None, desc: str
) -> nn.Module:
    """Adam + cosine decay on random patches; the patch sequence depends only on ``--seed``."""
    device = torch.device(args.device)
    model.to(device).train()
    gen = torch.Generator().manual_seed(args.seed)  # same patch sequence for every run
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=args.lr * 0.01)
    running = None
    with tqdm(range(args.steps), desc=desc, dynamic_ncols=True) as bar:
        for _ in bar:
            lr, hr = (t.to(device) for t in sample_batch(pairs, args, gen))
            sr = model(lr)
            loss = F.l1_loss(sr, hr)
            if contrastive is not None:
                loss = loss + args.weight * contrastive(sr, hr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            bar.set_postfix(loss=f"{running:.4f}")
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


def save_panels(images: dict[str, Tensor], path: Path, crop: int = 96, zoom: int = 3, gap: int = 8) -> None:
    """Save crops side by side (left to right in dict order), nearest-neighbour zoomed, white gaps."""
    top, left, size = textured_crop(images["HR"], crop)
    tiles = [quantize(v[0, :, top : top + size, left : left + size]) for v in images.values()]
    tiles = [t.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2) for t in tiles]
    side = size * zoom
    canvas = torch.ones(3, side, len(tiles) * side + (len(tiles) - 1) * gap)
    for i, t in enumerate(tiles):
        canvas[:, :, i * (side + gap) : i * (side + gap) + side] = t
    Image.fromarray(canvas.mul(255).round().byte().permute(1, 2, 0).numpy()).save(path)


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
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: running on cpu")
        args.device = "cpu"
    train_imgs, test_imgs = load_images(args.data)
    train_imgs = [(n, mod_crop(im, args.scale)) for n, im in train_imgs if min(im.shape[-2:]) >= args.patch]
    pairs = [(downsample(hr, args.scale), hr) for _, hr in train_imgs]  # LR computed once
    if not pairs:
        raise SystemExit(f"no training image is at least {args.patch}x{args.patch}")
    tests = [(n, mod_crop(im, args.scale, args.eval_crop)) for n, im in test_imgs]
    crop_note = f"centre-cropped to at most {args.eval_crop}x{args.eval_crop}" if args.eval_crop else "full size"
    print(f"x{args.scale} | train: {len(pairs)} images | test: {len(tests)} images ({crop_note}) | {args.device}")

    torch.manual_seed(args.seed)
    init = TinySR(args.scale)
    contrastive = PixelContrastiveLoss(region=args.region)
    models = {
        "l1": train(copy.deepcopy(init), pairs, args, None, "L1"),
        "l1+contrastive": train(copy.deepcopy(init), pairs, args, contrastive, f"L1+{args.weight:g}*contrastive"),
    }
    rows, first = evaluate(models, tests, args.scale, args.device)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "image"}
    print(f"\nPSNR-Y (dB), crop_border={args.scale}, test images {crop_note}:")
    print_table(rows, mean)

    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / f"quickstart_x{args.scale}.png", args.out / f"quickstart_x{args.scale}.json"
    save_panels(first, png)
    wall = time.perf_counter() - start
    results = {
        "command": " ".join(["python examples/quickstart.py", *(sys.argv[1:] if argv is None else argv)]),
        "torch": torch.__version__,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_images": [n for n, _ in train_imgs],
        "test_images": [n for n, _ in tests],
        "psnr_y": {"per_image": rows, "mean": mean},
        "wall_time_s": round(wall, 1),
        "figure": str(png),
    }
    js.write_text(json.dumps(results, indent=2))
    print(f"\n{tests[0][0]}: HR | bicubic | L1 | L1+contrastive -> {png}\nresults -> {js}\nwall time {wall:.1f} s")
    return results


if __name__ == "__main__":
    main()
