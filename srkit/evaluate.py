"""Evaluate SR networks with the standard protocol: PSNR-Y / SSIM-Y / LPIPS per test set, plus bicubic.

    python examples/evaluate.py --checkpoint runs/l1/last.pt runs/l1_pc/last.pt \\
        --test Set5 Set14 B100 Urban100 [--lpips squeeze] [--save-images out/images]

    python examples/evaluate.py --arch edsr_baseline --weights edsr_x4.pth --scale 4 --test Set5
    python examples/evaluate.py --scale 4 --test Set5 Set14           # bicubic only
    python examples/evaluate.py --curves runs/l1 runs/l1_pc --plot cmp.png   # validation curves only
    python -m srkit.evaluate ...                                  # the same from an installed wheel

Protocol (``contrastive_sr_losses.metrics``): HR cropped to a multiple of the scale, LR = MATLAB
bicubic rounded to 8 bits; PSNR-Y and SSIM-Y on the BT.601 Y channel of 8-bit images with
``crop_border = scale``; per-image values averaged per set; grayscale test images (Set14's
``bridge.png``) on their one channel; ``--round-y`` rounds Y to 8 bits first (MATLAB's uint8
``rgb2ycbcr``, the RCAN / EDSR ``.m`` scripts). LPIPS (``--lpips``, default ``auto``: the
first of alex, vgg, squeeze whose weight files are present, otherwise none) never downloads: put
torchvision's backbone file in ``$TORCH_HOME/hub/checkpoints/`` or pass ``--lpips-backbone``.
``--save-images DIR`` writes every SR output and a side-by-side crop per image (HR | bicubic | ...).
The table is printed and written as JSON / markdown with ``--json`` / ``--markdown``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from contrastive_sr_losses.archs import list_models
from contrastive_sr_losses.metrics import LPIPS, LPIPS_NETS

from .data import load_test_sets
from .evaluation import (
    Upscaler,
    bicubic_upscaler,
    describe_dropped,
    drop_small_images,
    evaluate,
    format_table,
    plot_curves,
    write_json,
)
from .runtime import (
    UsageError,
    build_model,
    check_number,
    check_writable_dir,
    check_writable_file,
    error_summary,
    load_checkpoint,
    parse_device,
    parse_kwargs,
    run_cli,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", type=Path, default=[], help="checkpoints written by examples/train.py")
    p.add_argument("--arch", default=None, help=f"a network name ({', '.join(list_models())}) with --weights")
    p.add_argument("--arch-kwargs", default="", help="constructor overrides for --arch")
    p.add_argument("--weights", type=Path, default=None, help="state dict for --arch (a train.py checkpoint works too)")
    p.add_argument("--scale", type=int, default=None, choices=(2, 3, 4), help="default: the checkpoints' scale")
    p.add_argument("--test", nargs="*", type=Path, default=[], help="folders of HR test images")
    p.add_argument("--lpips", default="auto", choices=("auto", "none", *LPIPS_NETS), help="LPIPS backbone")
    p.add_argument("--lpips-backbone", type=Path, default=None, help="torchvision backbone file for --lpips")
    p.add_argument("--no-bicubic", action="store_true", help="leave the bicubic baseline out")
    p.add_argument("--round-y", action="store_true", help="PSNR / SSIM on Y rounded to 8 bits (MATLAB uint8)")
    p.add_argument("--save-images", type=Path, default=None, help="write SR images and side-by-side crops here")
    p.add_argument("--json", type=Path, default=None, help="write the results (per image too) as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the table as markdown")
    p.add_argument("--curves", nargs="*", type=Path, default=[], help="run folders whose validation curves to plot")
    p.add_argument("--plot", type=Path, default=Path("val_psnr.png"), help="PNG for --curves")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.test and not args.curves:
        p.error("give --test folders to evaluate (or --curves run folders to plot)")
    if args.weights is not None and args.arch is None:
        p.error("--weights needs --arch (the network to load them into)")
    check_number(args.threads, "--threads")
    parse_device(args.device)
    # every output is checked before the evaluation, not written into a traceback after it
    for flag, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot if args.curves else None)):
        if path is not None:
            check_writable_file(path, flag)
    if args.save_images is not None:
        check_writable_dir(args.save_images, "--save-images")
    return args


def _state_dict(obj: dict[str, Any]) -> dict[str, Any]:
    for key in ("model", "state_dict", "params"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    return obj


def load_models(args: argparse.Namespace, device: torch.device) -> tuple[dict[str, nn.Module], int | None]:
    """``{label: model}`` in eval mode, and the scale they share."""
    models: dict[str, nn.Module] = {}
    scale = args.scale
    for path in args.checkpoint:
        ckpt = load_checkpoint(path, "--checkpoint")
        if "arch" not in ckpt or "scale" not in ckpt:
            raise UsageError(f"--checkpoint {path}: not written by examples/train.py (use --arch NAME --weights {path})")
        if scale is not None and ckpt["scale"] != scale:
            raise UsageError(f"--checkpoint {path} is a x{ckpt['scale']} model, but the evaluation is x{scale}")
        scale = ckpt["scale"]
        model = build_model(ckpt["arch"], scale, ckpt.get("arch_kwargs", {}), f"--checkpoint {path}")
        if not isinstance(ckpt.get("model"), dict):
            raise UsageError(f"--checkpoint {path}: no 'model' state dict in it (a truncated or foreign checkpoint?)")
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as err:
            first = error_summary(err)
            raise UsageError(f"--checkpoint {path}: its 'model' does not fit {ckpt['arch']} x{scale}: {first}") from err
        label = ckpt.get("history", {}).get("label") or path.parent.name
        while label in models:
            label += "'"
        models[label] = model
    if args.arch is not None:
        if scale is None:
            raise UsageError("--arch needs --scale")
        model = build_model(args.arch, scale, parse_kwargs(args.arch_kwargs, "--arch-kwargs"))
        if args.weights is not None:
            state = _state_dict(load_checkpoint(args.weights, "--weights"))
            try:
                model.load_state_dict(state)
            except RuntimeError as err:
                first = error_summary(err)
                raise UsageError(f"--weights {args.weights} does not fit {args.arch} x{scale}: {first}") from err
        models[args.arch] = model
    return {k: m.to(device).eval() for k, m in models.items()}, scale


def make_lpips(choice: str, backbone: Path | None, device: torch.device) -> tuple[nn.Module | None, str]:
    """The LPIPS metric asked for, or for ``auto`` the first whose weights are present."""
    if choice == "none":
        return None, "off"
    nets = LPIPS_NETS if choice == "auto" else (choice,)
    errors = []
    for net in nets:
        try:
            return LPIPS(net, backbone_path=backbone).to(device), net
        except (FileNotFoundError, RuntimeError) as err:
            errors.append(str(err))
    if choice == "auto":
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        return None, f"off (no backbone weights in {hub}/; use --lpips NET --lpips-backbone FILE)"
    raise UsageError(f"--lpips {choice}: {errors[-1]}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    if args.curves:
        png = plot_curves(args.curves, args.plot)
        print(f"validation curves -> {png}" if png else "no validation history (or no matplotlib) in --curves")
        results["plot"] = str(png) if png else None
    if not args.test:
        return results
    device = parse_device(args.device)
    models, scale = load_models(args, device)
    if scale is None:
        raise UsageError("--scale is needed for a bicubic-only evaluation")
    if args.no_bicubic and not models:
        raise UsageError("nothing to evaluate: --no-bicubic and no --checkpoint / --arch")
    lpips_metric, lpips_note = make_lpips(args.lpips, args.lpips_backbone, device)
    tests, dropped = drop_small_images(load_test_sets(args.test, scale), scale)
    if dropped:
        print(describe_dropped(dropped, scale), file=sys.stderr)
    methods: dict[str, Upscaler] = {} if args.no_bicubic else {"bicubic": bicubic_upscaler(scale)}
    methods.update(models)
    table = evaluate(
        methods, tests, scale, device, lpips_metric=lpips_metric, save_dir=args.save_images,
        progress=not args.no_progress, round_y=args.round_y,
    )
    rounding = ", Y rounded to 8 bits" if args.round_y else ""
    print(f"x{scale}, PSNR-Y (dB) / SSIM-Y with crop_border={scale}{rounding}, LPIPS: {lpips_note}")
    print(format_table(table))
    results.update({"scale": scale, "lpips": lpips_note, "results": table})
    if args.json:
        write_json(results, args.json)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_table(table, markdown=True) + "\n")
    if args.save_images:
        print(f"images -> {args.save_images}")
    return results


def cli(argv: list[str] | None = None) -> int:
    """The command line: ``main(argv)``, a usage error as ``error: ...`` and exit status 2 (``python -m
    srkit.evaluate``, ``python examples/evaluate.py``)."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
