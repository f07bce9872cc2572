"""Time ``metrics.ssim_y`` against BasicSR's ``calculate_ssim`` algorithm on one real test image.

    python benchmarks/bench_ssim.py [--image ../shared/data/Urban100/img_001.png] [--repeat 7]

BasicSR's ``calculate_ssim(img, img2, crop_border, test_y_channel=True)`` converts uint8 BGR images to
Y (float, range 255) and filters five maps with ``cv2.filter2D`` and the 11x11 Gaussian window
(sigma 1.5), keeping the valid region. That algorithm is written out here from its description (it
needs OpenCV: ``pip install opencv-python-headless``; without it only ours is timed), on the same
image, so that the two timings and the two values can be compared. Both sides start from the 8-bit
images (ours: float tensors holding 8-bit levels, as the evaluation holds them). Results:
``benchmarks/results/ssim_cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from _harness import RESULTS_DIR, environment, markdown_table, text_table, time_ms, write_report

from contrastive_sr_losses.functional import imresize
from contrastive_sr_losses.metrics import ssim_y

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "Urban100" / "img_001.png"


def basicsr_style_ssim(sr_rgb_u8: np.ndarray, hr_rgb_u8: np.ndarray, crop_border: int) -> float:
    """SSIM on Y as BasicSR computes it: BT.601 Y of the 8-bit images in float64 (range 255), crop,
    five ``cv2.filter2D`` passes with the 11x11 Gaussian window, valid region, mean of the map."""
    import cv2

    def y_of(img: np.ndarray) -> np.ndarray:
        rgb = img.astype(np.float32) / 255.0
        y = np.dot(rgb, [65.481, 128.553, 24.966]) + 16.0
        return y.astype(np.float64)

    a, b = y_of(sr_rgb_u8), y_of(hr_rgb_u8)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1 * mu1, filt(b * b) - mu2 * mu2, filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="an HR test image (PNG)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch / OpenCV threads (0: default)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "ssim_cpu.json")
    args = p.parse_args(argv)
    from PIL import Image

    if not args.image.is_file():
        p.error(f"--image: {args.image} does not exist")
    if args.threads:
        torch.set_num_threads(args.threads)
    hr_u8 = np.array(Image.open(args.image).convert("RGB"))
    h, w = (s - s % args.scale for s in hr_u8.shape[:2])
    hr_u8 = np.ascontiguousarray(hr_u8[:h, :w])
    hr = torch.from_numpy(hr_u8).permute(2, 0, 1)[None].double().div(255.0)
    sr = imresize(imresize(hr, 1.0 / args.scale), float(args.scale)).clamp(0, 1).mul(255).round().div(255).float()
    hr = hr.float()
    sr_u8 = sr[0].permute(1, 2, 0).mul(255).round().byte().numpy()
    device = torch.device("cpu")
    rows, cases = [], []
    ours = time_ms(lambda: ssim_y(sr, hr, crop_border=args.scale), device, args.repeat, 1)
    value = ssim_y(sr, hr, crop_border=args.scale).item()
    cases.append({"method": "contrastive_sr_losses.metrics.ssim_y", "ssim": value, **ours})
    try:
        import cv2

        if args.threads:
            cv2.setNumThreads(args.threads)
        theirs = time_ms(lambda: basicsr_style_ssim(sr_u8, hr_u8, args.scale), device, args.repeat, 1)
        cases.append({"method": f"BasicSR calculate_ssim algorithm (cv2 {cv2.__version__})",
                      "ssim": basicsr_style_ssim(sr_u8, hr_u8, args.scale), **theirs})
    except ImportError:
        print("OpenCV is not installed: only ssim_y is timed (pip install opencv-python-headless)", file=sys.stderr)
    header = ["method", "SSIM-Y", "median ms", "min ms"]
    rows = [[c["method"], f"{c['ssim']:.8f}", f"{c['median_ms']:.1f}", f"{c['min_ms']:.1f}"] for c in cases]
    print(f"{args.image.name} {w}x{h}, x{args.scale} bicubic vs HR, crop {args.scale}")
    print(text_table(header, rows, left={0}))
    report = {
        "benchmark": "ssim",
        "image": args.image.name,
        "size": [h, w],
        "scale": args.scale,
        "environment": environment(device),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "cases": cases,
    }
    md = f"SSIM-Y of {args.image.name} ({w}x{h}, x{args.scale} bicubic vs HR)\n\n" + markdown_table(header, rows, left={0})
    write_report(report, args.out, md, args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
