"""Train an SR network (EDSR, RCAN, SwinIR-light, ...) with any loss of the library.

    python examples/train.py --arch edsr_baseline --scale 4 --loss 'l1+0.1*pixel_contrastive' \\
        --train DIV2K/DIV2K_train_HR --test Set5 Set14 B100 Urban100 --out runs/edsr_x4_pc

    torchrun --nproc_per_node 4 examples/train.py ...            # DistributedDataParallel, one GPU each
    python -m srkit.train ...                                     # the same from an installed wheel

The loss is a spec string (``--loss``, grammar in ``srkit/losses.py``; ``--list-losses``
prints every loss and recipe with its iterations) or a paper's recipe (``--recipe prffn|pcl|
pcl_finetune|gidrn|rrlfn``, which also sets that paper's iterations / learning rate and schedule /
batch / patch / augmentation defaults unless given explicitly; an "epoch" of a paper is read as 1000
iterations). ``--recipe pcl_finetune`` needs ``--init-from`` (a pretrained network). ``--recipe rrlfn``
runs RRLFN's warm-start stages from one command, each in ``<out>/stage_<k>_<name>`` (x2 from scratch,
x4 from it, 3 restarts, the contrastive loss in the last; ``--iters`` per stage, ``--loss`` replaces the
last stage's loss); rerunning the command resumes the unfinished stage and skips the finished ones.

Data: folders of HR images; each is cropped to a multiple of the scale, its LR image made once with
MATLAB's bicubic (``contrastive_sr_losses.functional.imresize``) and rounded to 8 bits (``--lr-cache
DIR`` keeps them on disk between runs); random LR patches (``--patch``, default 48) with their HR
patches, random flips and 90-degree rotations, loaded by a DataLoader with ``--workers`` processes.
Images smaller than the HR patch are skipped (the log says how many).

Training: Adam (0.9, 0.999, 1e-8), learning rate ``--lr`` multiplied by ``--lr-gamma`` every
``--lr-step`` iterations (EDSR: 1e-4 halved every 2e5), or with ``--lr-schedule cosine_restart``
cosine annealing restarted every ``--cosine-period`` iterations down to ``--cosine-eta-min``, each
restart at ``--cosine-restart-weight`` times the learning rate (BasicSR's CosineAnnealingRestartLR,
stepped per iteration), ``--channel-shuffle`` adds a random colour-channel permutation to the
augmentation, ``--batch`` is the global batch (split
over the processes), ``--amp bf16|fp16`` on CUDA (checked against float32 on the first batch:
``srkit/amp.py``), ``--clip-grad``. The loss and the gradients are checked at every step:
a NaN or Inf stops the run (``--skip-nonfinite N`` skips up to N such steps in a row instead, with no
update, and stops at the next one), and a checkpoint is never written with non-finite weights. Every
``--val-every`` iterations
PSNR-Y / SSIM-Y on the ``--test`` folders; every ``--checkpoint-every`` iterations ``<out>/last.pt``
is replaced atomically (model, optimizer, scheduler, AMP scaler, the losses' state such as PCL's
discriminator and its optimizer, RNG states, the iteration, the validation history). ``--resume``
continues exactly where the checkpoint stopped (same patches, same random draws, same result).
``--init-from CKPT`` starts a new run from another run's weights (e.g. x4 from x2: tensors whose shape
differs, like the upsampler, keep their fresh initialisation) with a new optimizer: RRLFN's multi-stage
warm start. Outputs in ``--out``: ``train.log``, ``history.json``, ``last.pt``, ``val_psnr.png``
(with ``--plot-with OTHER_RUN ...`` the other runs' curves on the same axes), and ``train.lock`` (pid
and host) while the run holds the folder: a second run on it (``--resume`` too) refuses, a lock left by
a dead process of this host is taken over (logged).

Checkpoints (format ``contrastive-sr-losses/train/2``) hold only tensors and plain values and a
SHA-256 of them; every one is read with ``torch.load(weights_only=True)``, so a file carrying a
pickled payload is refused, not run. ``--resume`` also refuses a checkpoint whose checksum does not
match (corrupted) or whose weights / optimizer state hold NaN/Inf. Format-1 checkpoints of earlier
versions are read through an allow-list of exactly their numpy / pathlib types and resume as before.

Term sizes: with more than one loss term, every log line also gives each term's gradient-norm ratio
to the first term's on the network's weights (``grad/l1 pixel_contrastive 0.12``; the library's
``gradient_balance``), stored as ``grad_ratio`` in ``history.json``; a term above 3x the first is
warned about once (it then steers the training, not the reconstruction term).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from contrastive_sr_losses import gradient_balance
from contrastive_sr_losses.archs import list_models

from .amp import check_amp_first_step
from .data import PatchDataset, StreamBatchSampler, load_pairs, load_test_sets
from .evaluation import (
    bicubic_upscaler,
    describe_dropped,
    drop_small_images,
    evaluate,
    plot_curves,
    write_json,
)
from .losses import RECIPES, CompositeLoss, Recipe, describe_losses, parse_loss_spec
from .runtime import (
    CHECKPOINT_FORMAT,
    RunLock,
    RunLog,
    UsageError,
    build_model,
    check_number,
    check_writable_dir,
    derive_seed,
    error_summary,
    last_logged_iteration,
    load_checkpoint,
    nonfinite_tensors,
    parse_device,
    parse_kwargs,
    plain_args,
    remove_stale_temporaries,
    rng_state,
    run_cli,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    setup_distributed,
    teardown_distributed,
)

BASE_DEFAULTS = {
    "lr": 1e-4, "lr_step": 200_000, "batch": 16, "patch": 48, "iters": 300_000, "loss": "l1",
    "lr_schedule": "step", "cosine_period": 200_000, "cosine_eta_min": 1e-7, "cosine_restart_weight": 1.0,
    "channel_shuffle": False,
}
LR_SCHEDULES = ("step", "cosine_restart")
SCHEDULE_FLAGS = ("lr", "lr_step", "lr_gamma")  # saved in a checkpoint's optimizer / scheduler state
RATIO_WARN = 3.0  # a term whose gradient is above this many times the first term's is warned about, once


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=describe_losses(BASE_DEFAULTS["iters"]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--lr-gamma", type=float, default=None, help="(0.5)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None, help="step (default) or cosine_restart")
    p.add_argument("--cosine-period", type=int, default=None, help="cosine_restart: iterations per period (200000)")
    p.add_argument("--cosine-eta-min", type=float, default=None, help="cosine_restart: the lowest lr (1e-7)")
    p.add_argument("--cosine-restart-weight", type=float, default=None, help="cosine_restart: lr factor of the restarts (1)")
    p.add_argument("--channel-shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="random colour-channel permutation of the training patches (RRLFN)")
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
    p.add_argument(
        "--skip-nonfinite", type=int, default=0, metavar="N",
        help="skip up to N steps in a row whose loss or gradient is NaN/Inf (no update) before stopping (0: stop at the first)",
    )
    p.add_argument("--lr-cache", type=Path, default=None, help="folder that keeps the LR images between runs")
    p.add_argument("--resume", nargs="?", const="auto", default=None, help="continue from CKPT (default <out>/last.pt)")
    p.add_argument("--init-from", type=Path, default=None, help="start from another run's weights, fresh optimizer")
    p.add_argument("--plot-with", nargs="*", type=Path, default=[], help="other run folders to draw in val_psnr.png")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = p.parse_args(argv)
    if args.list_losses:
        return args
    recipe = RECIPES[args.recipe] if args.recipe else None
    args.given = {k for k in SCHEDULE_FLAGS if getattr(args, k) is not None}  # set on the command line
    if args.lr_gamma is None:
        args.lr_gamma = 0.5
    args.explicit_loss = args.loss is not None
    for key, base in BASE_DEFAULTS.items():  # explicit flag > recipe > base default
        if getattr(args, key) is None:
            setattr(args, key, recipe.loss if (recipe and key == "loss") else (recipe.defaults.get(key, base) if recipe else base))
    if not args.train:
        p.error("--train: give at least one folder of HR training images")
    if recipe is not None and recipe.needs_init and args.init_from is None and not args.resume:
        p.error(f"--recipe {args.recipe} fine-tunes a pretrained network: give its weights with --init-from")
    if recipe is not None and recipe.stages and (args.init_from is not None or args.resume not in (None, "auto")):
        p.error(f"--recipe {args.recipe} runs its own stages (each from the previous one; rerun to resume): "
                "no --init-from or --resume CKPT")
    if args.lr_schedule == "cosine_restart" and not (0 <= args.cosine_eta_min < args.lr and args.cosine_restart_weight > 0):
        p.error("--cosine-eta-min must be in [0, --lr) and --cosine-restart-weight > 0")
    for name in ("patch", "batch", "iters", "lr_step", "cosine_period", "checkpoint_every", "log_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.val_every < 0 or args.workers < 0 or args.val_max_images < 0:
        p.error("--val-every, --workers and --val-max-images must be >= 0")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be > 0")
    if args.resume and args.init_from:
        p.error("--resume continues a run; --init-from starts a new one: give only one")
    check_number(args.lr_gamma, "--lr-gamma", strict=True)
    check_number(args.clip_grad, "--clip-grad")
    check_number(args.threads, "--threads")
    check_number(args.skip_nonfinite, "--skip-nonfinite")
    parse_device(args.device)
    if args.out is None:
        args.out = Path("runs") / f"{args.arch}_x{args.scale}"
    return args


def make_schedule(args: argparse.Namespace) -> Any:
    """A function ``optimizer -> LRScheduler`` for ``--lr-schedule`` (stepped once per iteration)."""
    if args.lr_schedule == "step":
        return lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step, gamma=args.lr_gamma)
    period, eta_min, weight = args.cosine_period, args.cosine_eta_min, args.cosine_restart_weight

    def make(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        bases = [group["lr"] for group in opt.param_groups]

        def factor(base: float) -> Any:
            def f(t: int) -> float:  # BasicSR: eta_min + w * (base - eta_min) * (1 + cos(pi * t' / period)) / 2
                w = 1.0 if t < period else weight
                return (eta_min + w * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (t % period) / period))) / base

            return f

        return torch.optim.lr_scheduler.LambdaLR(opt, [factor(b) for b in bases])

    return make


def run_stages(args: argparse.Namespace, recipe: Recipe, dist_info: Any, device: torch.device) -> dict[str, Any]:
    """A staged recipe from one command: stage k trains in ``<out>/stage_<k>_<name>`` from the weights
    of stage k - 1 (``--init-from``; the first from scratch); an interrupted stage resumes from its
    ``last.pt``, a finished one (``done.json``) is skipped."""
    out: Path = args.out
    results, previous = [], None
    for k, stage in enumerate(recipe.stages, start=1):
        stage_args = argparse.Namespace(**vars(args))
        last = k == len(recipe.stages)
        stage_args.loss = args.loss if (last and args.explicit_loss) else stage.loss
        stage_args.scale = stage.scale or args.scale
        stage_args.out = out / f"stage_{k}_{stage.name}"
        stage_args.init_from = previous
        stage_args.resume = "auto"
        stage_args.label = f"{args.label or out.name} {stage.name}"
        done = stage_args.out / "done.json"
        if done.is_file():
            result = json.loads(done.read_text())
            if dist_info.main:
                print(f"stage {k}/{len(recipe.stages)} {stage.name}: done in {stage_args.out}, skipped")
        else:
            result = train(stage_args, dist_info, device)
            dist_info.barrier()
            if dist_info.main:
                write_json(result, done)
        results.append({"stage": stage.name, **result})
        previous = Path(result["checkpoint"])
    return {"out": str(out), "stages": results, "checkpoint": results[-1]["checkpoint"]}


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


def check_schedule_flags(args: argparse.Namespace, ckpt: dict[str, Any], path: Path) -> None:
    """``--resume`` restores the optimizer and the scheduler, so a new ``--lr`` / ``--lr-step`` /
    ``--lr-gamma`` would be printed but not used: refuse it instead of ignoring it silently."""
    saved = ckpt.get("args", {})
    for key in sorted(args.given):
        if key in saved and saved[key] != getattr(args, key):
            flag = "--" + key.replace("_", "-")
            raise UsageError(
                f"{flag} {getattr(args, key):g}: --resume {path} continues with the saved {flag} {saved[key]:g} "
                f"(optimizer and scheduler state); leave {flag} out, or start a new run from its weights with --init-from"
            )


def nonfinite_message(iteration: int, streak: int, args: argparse.Namespace, saved_at: int | None) -> str:
    """Why the run stops after non-finite steps, and what is on disk (true in every case)."""
    where = args.out / "last.pt"
    kept = (
        f"{where} holds iteration {saved_at}, the last checkpoint (all its weights finite)"
        if saved_at is not None
        else (f"{where} was not written by this run" if where.exists() else f"no checkpoint was written ({where} does not exist)")
    )
    return (
        f"the loss or its gradient was NaN/Inf at iteration {iteration} ({streak} step(s) in a row, "
        f"--skip-nonfinite {args.skip_nonfinite}); {kept}. Try a lower --lr, --clip-grad, or --skip-nonfinite N"
    )


def step_is_finite(loss: torch.Tensor, model: nn.Module, check_grads: bool, dist_info: Any) -> bool:
    """Whether the loss (and, unless a GradScaler handles them, the gradients) is finite on every
    process: the one host sync the check adds per step."""
    flags = [torch.isfinite(loss.detach()).all()]
    grads = [p.grad for p in model.parameters() if p.grad is not None] if check_grads else []
    flags += [torch.isfinite(g).all() for g in grads]  # not a norm: it overflows for huge finite gradients
    ok = torch.stack(flags).all().float()
    dist_info.all_reduce_mean([ok])  # 1.0 only if every process is finite
    return bool(ok.item() == 1.0)


def term_ratios(terms: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float | None]:
    """Each term's gradient norm on the trainable weights over the first term's (``gradient_balance``;
    the graph stays for the step's backward, no ``.grad`` changes). None where it is undefined or not
    finite (a NaN step)."""
    balance = gradient_balance(terms, [p for p in model.parameters() if p.requires_grad])
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in balance.ratios().items()}


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def check_finite_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Refuse, in one line naming the first bad tensor, a checkpoint whose weights or optimizer /
    loss-trainer state hold a NaN or an Inf: resuming it would stop at the next step, or train on."""
    parts = ("model", "optimizer", "criterion", "criterion_trainers", "scaler", "train_sums")
    bad = nonfinite_tensors({k: ckpt.get(k) for k in parts if ckpt.get(k) is not None})
    if bad:
        raise UsageError(
            f"--resume {path}: refused: {bad[0]} holds NaN/Inf"
            + (f" ({len(bad) - 1} more tensor(s) too)" if len(bad) > 1 else "")
            + f" at iteration {ckpt.get('iteration')}; continue from an earlier checkpoint, or --init-from another run"
        )


def restore(ckpt: dict[str, Any], path: Path, run: dict[str, Any], loaders: dict[str, Any]) -> None:
    """Load each part of ``ckpt`` with its ``load_state_dict``; a part that does not fit this run (a
    checkpoint of another network under this one's name) is a one-line error naming it."""
    for part, load in loaders.items():
        try:
            load(ckpt[part])
        except KeyError as err:
            raise UsageError(f"--resume {path}: no {part} state in it ({err}); a truncated or foreign checkpoint?") from None
        except (RuntimeError, ValueError, TypeError, AttributeError) as err:
            first = error_summary(err)
            kwargs = f" {run['arch_kwargs']}" if run["arch_kwargs"] else ""
            raise UsageError(
                f"--resume {path}: its {part} state does not fit {run['arch']}{kwargs} x{run['scale']} "
                f"with loss {run['loss']} ({first})"
            ) from None


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
    bad = nonfinite_tensors(matched)
    if bad:
        more = f" ({len(bad) - 1} more tensor(s) too)" if len(bad) > 1 else ""
        raise UsageError(f"--init-from {path}: refused: {bad[0]} holds NaN/Inf" + more)
    model.load_state_dict(matched, strict=False)
    fresh = [k for k in own if k not in matched]
    log(f"init from {path} ({layout} layout): {len(matched)}/{len(own)} tensors loaded" + (f"; fresh: {', '.join(fresh)}" if fresh else ""))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.list_losses:
        print(describe_losses(BASE_DEFAULTS["iters"]))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = str(parse_device(args.device))
    dist_info, device = setup_distributed(device_name)
    recipe = RECIPES[args.recipe] if args.recipe else None
    try:
        if recipe is not None and recipe.stages:
            return run_stages(args, recipe, dist_info, device)
        return train(args, dist_info, device)
    finally:
        teardown_distributed(dist_info)


def train(args: argparse.Namespace, dist_info: Any, device: torch.device) -> dict[str, Any]:
    """One training run in ``args.out``, which it holds (:class:`RunLock`, on the main process) from
    before the first file is touched until it returns or raises."""
    out: Path = args.out
    if not dist_info.main:
        return _train(args, dist_info, device, None)
    check_writable_dir(out, "--out")  # before any work, not as an OSError at the first checkpoint
    with RunLock(out) as lock:
        return _train(args, dist_info, device, lock)


def _train(args: argparse.Namespace, dist_info: Any, device: torch.device, lock: RunLock | None) -> dict[str, Any]:
    out: Path = args.out
    log = RunLog(out / "train.log", enabled=dist_info.main)
    if lock is not None and lock.note:
        log(lock.note)
    if dist_info.main:
        for name in ("last.pt", "history.json"):
            for tmp in remove_stale_temporaries(out / name):
                log(f"removed {tmp}, left by a run killed while writing {name}")
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
            check_finite_checkpoint(ckpt, path)
            check_schedule_flags(args, ckpt, path)
        else:
            log(f"--resume: no {path} yet, starting a new run")

    seed_everything(derive_seed(args.seed, "init"))  # the same initial weights on every process
    model = build_model(args.arch, args.scale, arch_kwargs).to(device)
    schedule = make_schedule(args)
    criterion = CompositeLoss(
        args.loss, device, distributed=dist_info.enabled, fp16_scaler=args.amp == "fp16",
        generator_lr=args.lr, generator_schedule=schedule,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = schedule(optimizer)
    scaler = torch.amp.GradScaler("cuda") if args.amp == "fp16" else None
    history: dict[str, Any] = {"label": args.label or out.name, "run": run, "validation": [], "train": []}
    start_iter = 0
    saved_at: int | None = None  # the iteration <out>/last.pt holds, as far as this run knows
    sums: dict[str, torch.Tensor] = {}  # running sums of the logged losses since the last log line
    count = 0
    if ckpt is not None:
        restore(ckpt, path, run, {
            "model": model.load_state_dict, "optimizer": optimizer.load_state_dict,
            "scheduler": scheduler.load_state_dict, "criterion": criterion.load_state_dict,
            "criterion_trainers": criterion.load_trainer_state,
        })
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        history = ckpt["history"]
        start_iter = int(ckpt["iteration"])
        saved_at = start_iter if path.resolve() == (out / "last.pt").resolve() else None
        sums = {k: v.to(device) for k, v in ckpt.get("train_sums", {}).items()}
        count = int(ckpt.get("train_count", 0))
        set_rng_state(ckpt["rng"])
        logged = last_logged_iteration(out / "train.log")
        rerun = (
            f"; iterations {start_iter + 1}..{logged} logged above by the interrupted run are re-run"
            if logged is not None and logged > start_iter
            else ""
        )
        log(f"=== resumed from {args.resume if args.resume != 'auto' else out / 'last.pt'} at iteration {start_iter}{rerun}")
        if ckpt.get("migrated_from"):
            log(f"{path} is in the older format {ckpt['migrated_from']} (read safely: tensors, plain values and its numpy / "
                f"pathlib RNG and argument types only); the next checkpoint is written in {CHECKPOINT_FORMAT}")
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
    if tests:  # now, not as an ssim_y error after the training
        tests, dropped = drop_small_images(tests, args.scale)
        if dropped:
            log(describe_dropped(dropped, args.scale))
    criterion.check_terms((1, 3, hr_patch, hr_patch), args.scale, device)
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if dist_info.enabled else model

    log(
        f"{args.arch} x{args.scale} {sum(p.numel() for p in model.parameters()):,} parameters | loss {loss_spec} | "
        f"{len(usable)} training images"
        + (f" ({len(pairs) - len(usable)} smaller than the {hr_patch}px HR patch skipped)" if len(usable) < len(pairs) else "")
        + f" | test {', '.join(f'{k} ({len(v)})' for k, v in tests.items()) or 'none'} | {device}"
        + (f" x {dist_info.world} processes" if dist_info.enabled else "")
        + f" | iterations {start_iter}..{args.iters}, batch {args.batch}, LR patch {args.patch}, lr {optimizer.param_groups[0]['lr']:g}"
    )
    sampler = StreamBatchSampler(len(usable), args.batch, args.seed, start_iter, args.iters, dist_info.rank, dist_info.world)
    loader = DataLoader(
        PatchDataset(usable, args.scale, args.patch, args.channel_shuffle), batch_sampler=sampler, num_workers=args.workers,
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
        nonlocal saved_at
        kept = f"{out / 'last.pt'} keeps iteration {saved_at}" if saved_at is not None else "no checkpoint written"
        bad = nonfinite_tensors(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict()["state"],
             "criterion_trainers": criterion.trainer_state()}
        )
        if bad:  # never replace a good checkpoint with a poisoned one
            raise UsageError(
                f"the weights or the optimizer state are NaN/Inf at iteration {iteration} "
                f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); {kept}"
            )
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
            "train_sums": {k: v.detach().cpu() for k, v in sums.items()},  # so the next log line, and
            "train_count": count,  # history.json, are the same after a --resume
            "args": plain_args(vars(args)),  # plain values only: the file loads with weights_only=True
        }
        save_checkpoint(ckpt_out, out / "last.pt", kept)
        saved_at = iteration
        try:
            write_json(history, out / "history.json")
        except OSError as err:
            raise UsageError(
                f"cannot write {out / 'history.json'}: {err.strerror or err}; {out / 'last.pt'} holds iteration "
                f"{iteration} (its history included)"
            ) from err

    from tqdm import tqdm

    bar = tqdm(total=args.iters, initial=start_iter, disable=True if not dist_info.main or args.no_progress else None,
               dynamic_ncols=True)  # None: quiet when the output is not a terminal
    tick = time.perf_counter()
    streak = skipped = 0  # non-finite steps in a row / since the last log line
    warned: set[str] = set()  # terms already warned about as too heavy
    model.train()
    criterion.train()
    iteration = start_iter
    for lr_img, hr_img in loader:
        seed_everything(derive_seed(args.seed, "step", iteration, dist_info.rank))  # losses' random draws
        lr_img, hr_img = lr_img.to(device, non_blocking=True), hr_img.to(device, non_blocking=True)
        if amp_dtype is not None and iteration == start_iter:  # stop before an AMP path trains wrong
            log(check_amp_first_step(model, criterion, lr_img, hr_img, amp_dtype))
        # at a log point of a multi-term loss: each term's gradient on the weights next to the first's
        measure = len(criterion.weights) > 1 and ((iteration + 1) % args.log_every == 0 or iteration + 1 == args.iters)
        terms: dict[str, torch.Tensor] | None = {} if measure else None
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            sr = net(lr_img)
            loss, parts = criterion(sr, hr_img, lr_img, terms=terms)
        if terms:
            ratios = term_ratios(terms, model)
            heavy = {k: v for k, v in ratios.items() if v is not None and v > RATIO_WARN and k not in warned}
            for name, ratio in heavy.items():
                warned.add(name)
                log(f"warning: the {name} term's gradient is {ratio:.3g}x the {next(iter(terms))} term's on the weights "
                    f"(iteration {iteration + 1}); above {RATIO_WARN:g}x it decides the direction of training, not "
                    "the reconstruction term. Lower its weight (contrastive_sr_losses.suggest_weight) unless that is meant")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        # every step (with a GradScaler, which skips steps with Inf gradients itself, the loss only)
        finite = step_is_finite(loss, model, scaler is None, dist_info)
        if finite:
            streak = 0
            if scaler is not None:
                scaler.unscale_(optimizer)
            if args.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
        else:  # no update: the weights stay those of the last good step
            optimizer.zero_grad(set_to_none=True)
            streak += 1
            skipped += 1
            if streak > args.skip_nonfinite:
                raise UsageError(nonfinite_message(iteration + 1, streak, args, saved_at))
            log(f"[{iteration + 1}/{args.iters}] loss {loss.item():g}: NaN/Inf loss or gradient, step skipped "
                f"({streak} in a row, --skip-nonfinite {args.skip_nonfinite})")
        scheduler.step()
        iteration += 1
        bar.update(1)
        if finite:
            for name, value in {"total": loss.detach(), **parts}.items():
                sums[name] = sums.get(name, 0) + value.float()
            count += 1
        last = iteration == args.iters
        if (iteration % args.log_every == 0 or last) and count:
            stacked = torch.stack([sums[k] for k in sorted(sums)]) / count
            dist_info.all_reduce_mean([stacked])  # the mean over every process's share of the batch
            means = dict(zip(sorted(sums), stacked.tolist()))
            means = {"total": means.pop("total"), **means}
            rate = (count + skipped) / (time.perf_counter() - tick)
            entry = {"iteration": iteration, **means, "lr": scheduler.get_last_lr()[0]}
            if terms:
                entry["grad_ratio"] = ratios
            history["train"].append(entry)
            log(
                f"[{iteration}/{args.iters}] " + " ".join(f"{k} {v:.5f}" for k, v in means.items())
                + (f" | grad/{next(iter(terms))} " + " ".join(f"{k} {_fmt_ratio(v)}" for k, v in ratios.items()) if terms else "")
                + f" | lr {scheduler.get_last_lr()[0]:.3g} | {rate:.2f} it/s"
                + (f" | {skipped} non-finite step(s) skipped" if skipped else "")
            )
            bar.set_postfix(loss=f"{means['total']:.4f}")
            sums, count, skipped, tick = {}, 0, 0, time.perf_counter()
        checkpoint_now = iteration % args.checkpoint_every == 0 or last
        if dist_info.main and ((args.val_every and iteration % args.val_every == 0) or last):
            try:
                validate(iteration)
            except BaseException:
                save(iteration)  # a late error (a bad test image, a full disk) never costs the trained weights
                raise
        if dist_info.main and checkpoint_now:
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


def cli(argv: list[str] | None = None) -> int:
    """The command line: ``main(argv)``, a usage error as ``error: ...`` and exit status 2 (``python -m
    srkit.train``, ``python examples/train.py``)."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
