"""Train an SR network (EDSR, RCAN, SwinIR-light, ...) with any loss of the library.

    python examples/train.py --arch edsr_baseline --scale 4 --loss 'l1+0.1*pixel_contrastive' \\
        --train DIV2K/DIV2K_train_HR --test Set5 Set14 B100 Urban100 --out runs/edsr_x4_pc

    torchrun --nproc_per_node 4 examples/train.py ...            # DistributedDataParallel, one GPU each

The loss is a spec string (``--loss``, grammar in ``examples/srkit/losses.py``; ``--list-losses``
prints every loss and recipe) or a paper's recipe (``--recipe prffn|pcl|gidrn|rrlfn``, which also sets
that paper's learning rate / batch / patch defaults unless given explicitly).

Data: folders of HR images; each is cropped to a multiple of the scale, its LR image made once with
MATLAB's bicubic (``contrastive_sr_losses.metrics.imresize``) and rounded to 8 bits (``--lr-cache
DIR`` keeps them on disk between runs); random LR patches (``--patch``, default 48) with their HR
patches, random flips and 90-degree rotations, loaded by a DataLoader with ``--workers`` processes.
Images smaller than the HR patch are skipped (the log says how many).

Training: Adam (0.9, 0.999, 1e-8), learning rate ``--lr`` multiplied by ``--lr-gamma`` every
``--lr-step`` iterations (EDSR: 1e-4 halved every 2e5), ``--batch`` is the global batch (split
over the processes), ``--amp bf16|fp16`` on CUDA, ``--clip-grad``. Every ``--val-every`` iterations
PSNR-Y / SSIM-Y on the ``--test`` folders; every ``--checkpoint-every`` iterations ``<out>/last.pt``
is replaced atomically (model, optimizer, scheduler, AMP scaler, the losses' state such as PCL's
discriminator and its optimizer, RNG states, the iteration, the validation history). ``--resume``
continues exactly where the checkpoint stopped (same patches, same random draws, same result).
``--init-from CKPT`` starts a new run from another run's weights (e.g. x4 from x2: tensors whose shape
differs, like the upsampler, keep their fresh initialisation) with a new optimizer: RRLFN's multi-stage
warm start. Outputs in ``--out``: ``train.log``, ``history.json``, ``last.pt``, ``val_psnr.png``
(with ``--plot-with OTHER_RUN ...`` the other runs' curves on the same axes).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/ (for ``srkit``) also under torchrun

from srkit.data import PatchDataset, StreamBatchSampler, load_pairs, load_test_sets  # noqa: E402
from srkit.evaluation import bicubic_upscaler, evaluate, plot_curves, write_json  # noqa: E402
from srkit.losses import RECIPES, CompositeLoss, describe_losses, parse_loss_spec  # noqa: E402
from srkit.runtime import (  # noqa: E402
    RunLog,
    UsageError,
    atomic_save,
    build_model,
    derive_seed,
    load_checkpoint,
    parse_kwargs,
    rng_state,
    run_cli,
    seed_everything,
    set_rng_state,
    setup_distributed,
    teardown_distributed,
)

from contrastive_sr_losses.archs import list_models  # noqa: E402

CHECKPOINT_FORMAT = "contrastive-sr-losses/train/1"
BASE_DEFAULTS = {"lr": 1e-4, "lr_step": 200_000, "batch": 16, "patch": 48, "iters": 300_000, "loss": "l1"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=describe_losses(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--list-losses", action="store_true", help="print the losses and recipes, then exit")
    p.add_argument("--arch", default="edsr_baseline", help=f"network name, one of: {', '.join(list_models())}")
    p.add_argument("--arch-kwargs", default="", help="constructor overrides, e.g. n_resblocks=8,n_feats=32")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--loss", default=None, help="loss spec, e.g. 'l1+0.1*pixel_contrastive' (default l1)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="a paper's loss and defaults")
    p.add_argument("--train", nargs="+", type=Path, default=[], help="folders of HR training images")
    p.add_argument("--test", nargs="*", type=Path, default=[], help="folders of HR validation images")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<arch>_x<scale>)")
    p.add_argument("--label", default=None, help="name of this run in plots (default: the folder name)")
    p.add_argument("--patch", type=int, default=None, help="LR patch size (48; HR patch = patch * scale)")
    p.add_argument("--batch", type=int, default=None, help="global batch size (16)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (300000)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (1e-4)")
    p.add_argument("--lr-step", type=int, default=None, help="multiply the lr by --lr-gamma every N iterations (200000)")
    p.add_argument("--lr-gamma", type=float, default=0.5)
    p.add_argument("--clip-grad", type=float, default=0.0, help="clip the gradient norm to this (0: off)")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="autocast on CUDA")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes (0: in the main process)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=5000, help="validate every N iterations (0: only at the end)")
    p.add_argument("--val-max-images", type=int, default=0, help="validate on the first N images of each set (0: all)")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--lr-cache", type=Path, default=None, help="folder that keeps the LR images between runs")
    p.add_argument("--resume", nargs="?", const="auto", default=None, help="continue from CKPT (default <out>/last.pt)")
    p.add_argument("--init-from", type=Path, default=None, help="start from another run's weights, fresh optimizer")
    p.add_argument("--plot-with", nargs="*", type=Path, default=[], help="other run folders to draw in val_psnr.png")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = p.parse_args(argv)
    if args.list_losses:
        return args
    recipe = RECIPES[args.recipe] if args.recipe else None
    for key, base in BASE_DEFAULTS.items():  # explicit flag > recipe > base default
        if getattr(args, key) is None:
            setattr(args, key, recipe.loss if (recipe and key == "loss") else (recipe.defaults.get(key, base) if recipe else base))
    if not args.train:
        p.error("--train: give at least one folder of HR training images")
    for name in ("patch", "batch", "iters", "lr_step", "checkpoint_every", "log_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.val_every < 0 or args.workers < 0 or args.val_max_images < 0:
        p.error("--val-every, --workers and --val-max-images must be >= 0")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be > 0")
    if args.resume and args.init_from:
        p.error("--resume continues a run; --init-from starts a new one: give only one")
    if args.out is None:
        args.out = Path("runs") / f"{args.arch}_x{args.scale}"
    return args


def describe_run(args: argparse.Namespace, arch_kwargs: dict[str, Any], loss_spec: str) -> dict[str, Any]:
    """What must match for ``--resume`` to continue a checkpoint."""
    return {"arch": args.arch, "scale": args.scale, "arch_kwargs": arch_kwargs, "loss": loss_spec}


def check_resume(ckpt: dict[str, Any], path: Path, run: dict[str, Any]) -> None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"--resume {path}: not a checkpoint of examples/train.py (use --init-from for plain weights)")
    saved = {k: ckpt.get(k) for k in run}
    if saved != run:
        diff = ", ".join(f"{k}: checkpoint {saved[k]!r} vs now {run[k]!r}" for k in run if saved[k] != run[k])
        raise UsageError(
            f"--resume {path} was trained with other settings ({diff}); use the same --arch/--scale/"
            "--arch-kwargs/--loss, or --init-from to start a new run from its weights"
        )


def init_from(model: nn.Module, path: Path, log: RunLog) -> None:
    """Copy every tensor of ``path`` whose name and shape match ``model``; report what stayed fresh.

    ``path`` is a checkpoint of this script or a public weights file: our layout, or BasicSR's or the
    original authors' for EDSR / RCAN / SwinIR (renamed by ``contrastive_sr_losses.archs.weights``),
    bare or under ``params`` / ``params_ema`` / ``state_dict``, ``module.`` prefixes stripped."""
    from contrastive_sr_losses.archs.weights import read_state_dict, to_our_layout

    ckpt = load_checkpoint(path, "--init-from")
    try:
        state, _ = read_state_dict(ckpt)
    except TypeError as err:
        raise UsageError(f"--init-from {path}: no model state dict in it ({err})") from None
    state, layout = to_our_layout(model, state)
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not matched:
        raise UsageError(f"--init-from {path}: none of its tensors matches {type(model).__name__} (another network?)")
    model.load_state_dict(matched, strict=False)
    fresh = [k for k in own if k not in matched]
    log(f"init from {path} ({layout} layout): {len(matched)}/{len(own)} tensors loaded" + (f"; fresh: {', '.join(fresh)}" if fresh else ""))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.list_losses:
        print(describe_losses())
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dist_info, device = setup_distributed(device_name)
    try:
        return train(args, dist_info, device)
    finally:
        teardown_distributed(dist_info)


def train(args: argparse.Namespace, dist_info: Any, device: torch.device) -> dict[str, Any]:
    out: Path = args.out
    log = RunLog(out / "train.log", enabled=dist_info.main)
    arch_kwargs = parse_kwargs(args.arch_kwargs, "--arch-kwargs")
    loss_spec = "+".join(str(t) for t in parse_loss_spec(args.loss))
    run = describe_run(args, arch_kwargs, loss_spec)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    if amp_dtype is not None and device.type != "cuda":
        raise UsageError(f"--amp {args.amp} is for CUDA; this run is on {device.type} (use --amp none)")

    ckpt = None
    if args.resume:
        path = out / "last.pt" if args.resume == "auto" else Path(args.resume)
        if args.resume != "auto" or path.is_file():
            ckpt = load_checkpoint(path, "--resume")
            check_resume(ckpt, path, run)
        else:
            log(f"--resume: no {path} yet, starting a new run")

    seed_everything(derive_seed(args.seed, "init"))  # the same initial weights on every process
    model = build_model(args.arch, args.scale, arch_kwargs).to(device)
    criterion = CompositeLoss(args.loss, device, distributed=dist_info.enabled, fp16_scaler=args.amp == "fp16")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    scaler = torch.amp.GradScaler("cuda") if args.amp == "fp16" else None
    history: dict[str, Any] = {"label": args.label or out.name, "run": run, "validation": [], "train": []}
    start_iter = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        criterion.load_state_dict(ckpt["criterion"])
        criterion.load_trainer_state(ckpt["criterion_trainers"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        history = ckpt["history"]
        start_iter = int(ckpt["iteration"])
        set_rng_state(ckpt["rng"])
        log(f"resumed from {args.resume if args.resume != 'auto' else out / 'last.pt'} at iteration {start_iter}")
    elif args.init_from is not None:
        init_from(model, args.init_from, log)

    pairs = load_pairs(args.train, args.scale, "--train", args.lr_cache)
    hr_patch = args.patch * args.scale
    usable = [p for p in pairs if min(p.hr.shape[-2:]) >= hr_patch]
    if not usable:
        raise UsageError(
            f"--train: every image is smaller than the {hr_patch}x{hr_patch} HR patch (--patch {args.patch} x "
            f"scale {args.scale}); use a smaller --patch"
        )
    tests = load_test_sets(args.test, args.scale) if (args.test and dist_info.main) else {}
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if dist_info.enabled else model

    log(
        f"{args.arch} x{args.scale} {sum(p.numel() for p in model.parameters()):,} parameters | loss {loss_spec} | "
        f"{len(usable)} training images" + (f" ({len(pairs) - len(usable)} smaller than the {hr_patch}px HR patch skipped)" if len(usable) < len(pairs) else "")
        + f" | test {', '.join(f'{k} ({len(v)})' for k, v in tests.items()) or 'none'} | {device}"
        + (f" x {dist_info.world} processes" if dist_info.enabled else "")
        + f" | iterations {start_iter}..{args.iters}, batch {args.batch}, LR patch {args.patch}, lr {args.lr:g}"
    )
    sampler = StreamBatchSampler(len(usable), args.batch, args.seed, start_iter, args.iters, dist_info.rank, dist_info.world)
    loader = DataLoader(
        PatchDataset(usable, args.scale, args.patch), batch_sampler=sampler, num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )

    def validate(iteration: int) -> None:
        if not tests:
            return
        model.eval()
        res = evaluate({"model": model}, tests, args.scale, device, max_images=args.val_max_images)["model"]
        model.train()
        history["validation"].append(
            {"iteration": iteration, "sets": {k: {"psnr": v["psnr"], "ssim": v["ssim"]} for k, v in res.items()}}
        )
        log(f"[val {iteration}] " + "  ".join(f"{k} {v['psnr']:.3f} dB / {v['ssim']:.4f}" for k, v in res.items()))

    def save(iteration: int) -> None:
        ckpt_out = {
            "format": CHECKPOINT_FORMAT,
            **run,
            "iteration": iteration,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "criterion": criterion.state_dict(),
            "criterion_trainers": criterion.trainer_state(),
            "rng": rng_state(),
            "history": history,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        }
        atomic_save(ckpt_out, out / "last.pt")
        write_json(history, out / "history.json")

    from tqdm import tqdm

    bar = tqdm(total=args.iters, initial=start_iter, disable=not dist_info.main or args.no_progress, dynamic_ncols=True)
    sums: dict[str, torch.Tensor] = {}
    count, tick = 0, time.perf_counter()
    model.train()
    criterion.train()
    iteration = start_iter
    for lr_img, hr_img in loader:
        seed_everything(derive_seed(args.seed, "step", iteration, dist_info.rank))  # losses' random draws
        lr_img, hr_img = lr_img.to(device, non_blocking=True), hr_img.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            sr = net(lr_img)
            loss, parts = criterion(sr, hr_img, lr_img)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        iteration += 1
        bar.update(1)
        for name, value in {"total": loss.detach(), **parts}.items():
            sums[name] = sums.get(name, 0) + value.float()
        count += 1
        last = iteration == args.iters
        if iteration % args.log_every == 0 or last:
            stacked = torch.stack([sums[k] for k in sorted(sums)]) / count
            dist_info.all_reduce_mean([stacked])  # the mean over every process's share of the batch
            means = dict(zip(sorted(sums), stacked.tolist()))
            means = {"total": means.pop("total"), **means}
            if not math.isfinite(means["total"]):
                raise UsageError(
                    f"the loss became {means['total']} near iteration {iteration}; {out / 'last.pt'} holds the last "
                    "good state (try a lower --lr or --clip-grad)"
                )
            rate = count / (time.perf_counter() - tick)
            history["train"].append({"iteration": iteration, **means, "lr": scheduler.get_last_lr()[0]})
            log(
                f"[{iteration}/{args.iters}] " + " ".join(f"{k} {v:.5f}" for k, v in means.items())
                + f" | lr {scheduler.get_last_lr()[0]:.3g} | {rate:.2f} it/s"
            )
            bar.set_postfix(loss=f"{means['total']:.4f}")
            sums, count, tick = {}, 0, time.perf_counter()
        if dist_info.main and ((args.val_every and iteration % args.val_every == 0) or last):
            validate(iteration)
        if dist_info.main and (iteration % args.checkpoint_every == 0 or last):
            save(iteration)
        if (args.val_every and iteration % args.val_every == 0) or iteration % args.checkpoint_every == 0 or last:
            dist_info.barrier()
    bar.close()

    result: dict[str, Any] = {"out": str(out), "iteration": iteration, "checkpoint": str(out / "last.pt")}
    if dist_info.main:
        if ckpt is not None and iteration == start_iter:
            log(f"nothing to do: the checkpoint is already at iteration {iteration} of --iters {args.iters}")
        write_json(history, out / "history.json")
        png = plot_curves([out, *args.plot_with], out / "val_psnr.png")
        if png is not None:
            log(f"validation curves -> {png}")
        if history["validation"]:
            result["validation"] = history["validation"][-1]
        if tests and history["validation"]:
            bic = evaluate({"bicubic": bicubic_upscaler(args.scale)}, tests, args.scale, device, max_images=args.val_max_images)
            result["bicubic"] = {k: {"psnr": v["psnr"], "ssim": v["ssim"]} for k, v in bic["bicubic"].items()}
            log("bicubic: " + "  ".join(f"{k} {v['psnr']:.3f} dB / {v['ssim']:.4f}" for k, v in result["bicubic"].items()))
    return result


if __name__ == "__main__":
    sys.exit(run_cli(main))
