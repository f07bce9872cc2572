"""Evaluation for the example scripts: the SR protocol over test folders, tables, images, curves.

Protocol (:mod:`contrastive_sr_losses.metrics`): HR mod-cropped to the scale, LR = 8-bit MATLAB
bicubic, SR clamped to [0, 1]; PSNR-Y and SSIM-Y after rounding to 8 bits with ``crop_border = scale``,
LPIPS on the RGB images; per-image values averaged over each data set. "bicubic" is the LR image
upscaled with the same MATLAB bicubic (the papers' Bicubic rows). A grayscale test image (Set14's
``bridge.png``) goes through the network as three equal channels and is scored on one channel: the
HR's gray level against the SR's BT.601 luma on the gray scale (``rgb_to_gray``), as MATLAB's scripts
and BasicSR score a 1-channel image (scored as RGB, bridge reads 1.3 dB higher at x2 and Set14's
bicubic mean 0.09 dB above the published one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from contrastive_sr_losses.functional import imresize, quantize
from contrastive_sr_losses.functional.color import rgb_to_gray
from contrastive_sr_losses.metrics import SSIM_WINDOW, ReferenceY

from .data import Pair, to_float, write_rgb

Upscaler = Callable[[Tensor], Tensor]  # (1, 3, h, w) float LR on the device -> (1, 3, H, W) SR


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr: imresize(lr, scale)


def min_test_size(scale: int) -> int:
    """The smallest HR side the protocol can score: SSIM's 11x11 window after cropping ``scale``
    pixels at each border."""
    return SSIM_WINDOW + 2 * scale


def drop_small_images(
    test_sets: Mapping[str, Sequence[Pair]], scale: int, flag: str = "--test"
) -> tuple[dict[str, list[Pair]], list[str]]:
    """The test sets without the images too small for SSIM-Y (checked before any work, so that an
    evaluation never fails at its end), and the names of those left out. A set left empty is a
    one-line :class:`UsageError`."""
    from .runtime import UsageError

    size = min_test_size(scale)
    kept: dict[str, list[Pair]] = {}
    dropped: list[str] = []
    for name, pairs in test_sets.items():
        kept[name] = [p for p in pairs if min(p.hr.shape[-2:]) >= size]
        dropped += [f"{p.name} ({p.hr.shape[-2]}x{p.hr.shape[-1]})" for p in pairs if min(p.hr.shape[-2:]) < size]
        if not kept[name]:
            raise UsageError(
                f"{flag} {name}: every image is smaller than {size}x{size} pixels, the least SSIM-Y can score "
                f"at x{scale} (an 11x11 window after cropping {scale} pixels at each border)"
            )
    return kept, dropped


def describe_dropped(dropped: Sequence[str], scale: int) -> str:
    """One line naming the test images :func:`drop_small_images` left out."""
    shown = ", ".join(dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
    size = min_test_size(scale)
    return f"test: {len(dropped)} image(s) smaller than {size}x{size} (SSIM-Y at x{scale}) left out: {shown}"


@torch.no_grad()
def evaluate(
    methods: Mapping[str, Upscaler],
    test_sets: Mapping[str, Sequence[Pair]],
    scale: int,
    device: torch.device,
    *,
    lpips_metric: nn.Module | None = None,
    max_images: int = 0,
    save_dir: Path | None = None,
    progress: bool = False,
    round_y: bool = False,
) -> dict[str, dict[str, Any]]:
    """``{method: {set: {"psnr", "ssim", ["lpips"], "images": [per-image dicts]}}}``.

    ``max_images`` > 0 uses only the first images of each set (quick periodic validation).
    ``save_dir``: SR outputs as ``<dir>/<set>/<method>/<image>.png`` and a side-by-side crop
    ``<dir>/<set>/compare/<image>.png`` (HR | every method, the most textured square of the image).
    ``round_y``: PSNR / SSIM on Y rounded to 8 bits (MATLAB's uint8 ``rgb2ycbcr``; see ``ssim_y``).
    """
    from tqdm import tqdm

    results: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for set_name, pairs in test_sets.items():
        chosen = list(pairs)[:max_images] if max_images > 0 else list(pairs)
        per_image: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for pair in tqdm(chosen, desc=f"eval {set_name}", disable=None if progress else True, leave=False):
            lr = to_float(pair.lr)[None].to(device)
            hr = to_float(pair.hr)[None].to(device)
            # the HR side once for every method; a grayscale image is scored on its one channel
            reference = ReferenceY(hr[:, :1] if pair.gray else hr, crop_border=scale, round_y=round_y)
            outputs = {}
            for method, upscale in methods.items():
                sr = upscale(lr).float().clamp(0.0, 1.0)
                if sr.shape != hr.shape:
                    raise RuntimeError(f"{method} returned {tuple(sr.shape)} for HR {tuple(hr.shape)} ({pair.name})")
                sr_y = rgb_to_gray(sr) if pair.gray else sr
                row = {
                    "image": pair.name,
                    "psnr": reference.psnr(sr_y).item(),
                    "ssim": reference.ssim(sr_y).item(),
                }
                if lpips_metric is not None:
                    row["lpips"] = lpips_metric(sr, hr).item()
                per_image[method].append(row)
                outputs[method] = sr
            if save_dir is not None:
                stem = Path(pair.name).stem
                for method, sr in outputs.items():
                    write_rgb(sr[0], save_dir / set_name / method / f"{stem}.png")
                save_side_by_side({"HR": hr, **outputs}, save_dir / set_name / "compare" / f"{stem}.png")
        for method, rows in per_image.items():
            summary: dict[str, Any] = {"images": rows}
            for key in ("psnr", "ssim", "lpips"):
                if rows and key in rows[0]:
                    summary[key] = sum(r[key] for r in rows) / len(rows)
            results[method][set_name] = summary
    return results


def largest_error_crop(hr: Tensor, ref: Tensor, size: int) -> tuple[int, int, int]:
    """(top, left, size) of the square where ``ref`` is farthest from ``hr`` (mean absolute error):
    where reconstruction is hard, so where methods differ most. ``(1, 3, H, W)`` tensors."""
    size = min(size, *hr.shape[-2:])
    err = (ref.float() - hr.float()).abs().mean(1, keepdim=True)
    stride = max(1, size // 8)
    pooled = F.avg_pool2d(err, size, stride=stride)
    idx = int(pooled.flatten().argmax())
    return (idx // pooled.shape[-1]) * stride, (idx % pooled.shape[-1]) * stride, size


def save_side_by_side(images: Mapping[str, Tensor], path: Path, crop: int = 96, zoom: int = 3, gap: int = 6) -> None:
    """Crops of ``(1, 3, H, W)`` images side by side (dict order: HR first), nearest-neighbour zoomed,
    captioned; the crop is where the second image (bicubic) is worst."""
    from PIL import Image, ImageDraw

    tensors = list(images.values())
    top, left, size = largest_error_crop(tensors[0], tensors[min(1, len(tensors) - 1)], crop)
    side, caption = size * zoom, 14
    canvas = Image.new("RGB", (len(images) * (side + gap) - gap, side + caption), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, img) in enumerate(images.items()):
        tile = quantize(img[0, :, top : top + size, left : left + size].float().cpu())
        tile = tile.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2)
        arr = tile.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        canvas.paste(Image.fromarray(arr), (i * (side + gap), caption))
        draw.text((i * (side + gap) + 2, 1), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def format_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]], markdown: bool = False) -> str:
    """Rows: data sets; columns: PSNR-Y / SSIM-Y (/ LPIPS) of each method."""
    methods = list(results)
    sets = list(next(iter(results.values())))
    metrics = [k for k in ("psnr", "ssim", "lpips") if all(k in results[m][s] for m in methods for s in sets)]
    label = {"psnr": "PSNR-Y", "ssim": "SSIM-Y", "lpips": "LPIPS"}
    digits = {"psnr": 3, "ssim": 4, "lpips": 4}
    header = ["data set"] + [f"{m} {label[k]}" for m in methods for k in metrics]
    rows = []
    for s in sets:
        row = [f"{s} ({len(results[methods[0]][s]['images'])})"]
        row += [f"{results[m][s][k]:.{digits[k]}f}" for m in methods for k in metrics]
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


def json_safe(obj: object) -> object:
    """``obj`` with every non-finite float (a PSNR of inf for identical images, a NaN) as None,
    since JSON has no Infinity / NaN (``json.dumps`` would write them, and strict readers refuse)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(obj: object, path: Path) -> None:
    """Write JSON atomically (temporary file + rename); non-finite numbers are written as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False))
    tmp.replace(path)


def plot_curves(run_dirs: Sequence[Path], out_png: Path) -> Path | None:
    """Validation PSNR-Y against iterations for each run (``<run>/history.json``), one panel per data set.

    Returns the PNG path, or None (with no error) when matplotlib is missing or no run has validations.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = []
    for run in run_dirs:
        hist_file = Path(run) / "history.json"
        if hist_file.is_file():
            hist = json.loads(hist_file.read_text())
            if hist.get("validation"):
                runs.append((hist.get("label") or Path(run).name, hist["validation"]))
    if not runs:
        return None
    sets = sorted({s for _, val in runs for v in val for s in v["sets"]})
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.6), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        for label, val in runs:
            pts = [(v["iteration"], v["sets"][set_name]["psnr"]) for v in val if set_name in v["sets"]]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
        ax.set_title(f"{set_name}: validation PSNR-Y")
        ax.set_xlabel("iteration")
        ax.set_ylabel("dB")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def protocol_fingerprint() -> str:
    """A 12-hex fingerprint of what the evaluation protocol *computes*: runs that record the same
    fingerprint were scored the same way, whatever files the code lived in.

    It runs the protocol on fixed synthetic images (a colour and a grayscale one, sizes not multiples
    of the scale): :func:`~srkit.data.mod_crop` and :func:`~srkit.data.make_lr` (8-bit MATLAB bicubic),
    then :func:`evaluate` (x4, with and without ``round_y``) on the bicubic upscaler and on a perturbed
    copy of HR, and hashes the LR bytes and every score rounded to 1e-6 (so float noise below the
    reported precision does not count). LPIPS is not part of it: its definition is pinned by its own
    tests against the ``lpips`` package.

    Example:
        >>> len(protocol_fingerprint())
        12
    """
    import hashlib

    from .data import make_lr, mod_crop

    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 45), torch.linspace(0, 1, 50), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(17 * x + 5 * y) * torch.cos(11 * y)
    colour = torch.stack([base, base.flip(0), 1 - base]) + 0.05 * torch.randn(3, 45, 50, generator=g)
    colour = colour.clamp(0, 1).mul(255).round().to(torch.uint8)
    gray = colour[:1].expand(3, -1, -1).clone()
    digest = hashlib.sha1()
    pairs = []
    for name, img, is_gray in (("colour", colour, False), ("gray", gray, True)):
        hr = mod_crop(img, 4)
        lr = make_lr(hr, 4)
        digest.update(lr.numpy().tobytes())
        pairs.append(Pair(name, lr, hr, is_gray))
    noise = 0.03 * torch.randn(1, 3, 44, 48, generator=g)

    def perturbed(lr: Tensor) -> Tensor:
        hr = next(p.hr for p in pairs if p.lr.shape[-2:] == lr.shape[-2:] and torch.equal(to_float(p.lr)[None], lr))
        return (to_float(hr)[None] + noise).clamp(0, 1)

    methods = {"bicubic": bicubic_upscaler(4), "perturbed": perturbed}
    for round_y in (False, True):
        scores = evaluate(methods, {"synthetic": pairs}, 4, torch.device("cpu"), round_y=round_y)
        for method in methods:
            for row in scores[method]["synthetic"]["images"]:
                digest.update(f"{method}:{row['image']}:{row['psnr']:.6f}:{row['ssim']:.6f};".encode())
    return digest.hexdigest()[:12]
