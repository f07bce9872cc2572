"""The ``--loss`` spec grammar over the library's one loss registry
(:data:`contrastive_sr_losses.losses.registry.LOSSES`), and the papers' recipes.

Grammar (spaces are ignored; quote the spec in the shell because of ``*`` and parentheses)::

    spec  := term ('+' term)*
    term  := [weight '*'] name ['(' key=value (',' key=value)* ')']

``weight`` is a number (``0.1``, ``1e-3``; default 1, but 0.001 for ``random_conv`` and 0.01 for
``pcl``, whose weight 1 the loss study measured as harmful), ``name`` one of :data:`LOSSES`, and the
key=value pairs are the loss's constructor arguments (numbers, ``true``/``false``, ``none``, tuples
like ``(0.5,0.5)``, or bare strings). Examples::

    l1
    l1+0.1*pixel_contrastive
    l1+0.1*pixel_contrastive(region=4,temperature=0.5)
    0.4*l1+0.6*high_pass(sigma=1.5,mode=fft)
    l1+0.001*random_conv(channels=32)

Terms marked "lr" in :func:`describe_losses` also receive the LR input batch (their negative is the
bicubic-upsampled LR image).

``pcl`` trains its embedding, a wavelet discriminator, alternately with the SR network: every training
call makes one discriminator step (eq 7, its own Adam, learning rate ``d_lr``, default 1e-4) and then
returns the generator-side loss (:class:`~contrastive_sr_losses.losses.pcl_trainer.PCLTrainer`).
Its discriminator keys: ``d_lr`` (a number, or ``same``: the generator's ``--lr``, as the authors'
code), ``d_schedule`` (``constant``, default, as the authors' code in effect; or ``same``: the
generator's schedule), ``d_form`` (``per_position``, default, or ``flattened``: the authors' eq 7 on
patch logits), ``d_augment`` (``true``: sharpened copies as reals and blurred ones as fakes, the
authors' ``--contras_D_train``); the other keys go to ``FrequencyContrastiveLoss`` (e.g.
``sample_form=authors``, ``layers=(4,)``).
Under ``torchrun`` the discriminator's gradients are averaged over the processes before its step and
its BatchNorm statistics are broadcast from rank 0 after it (what DDP does for a wrapped module).
Its state (discriminator, optimizer, step count) is saved in the checkpoints.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from contrastive_sr_losses.losses.combined import CombinedLoss
from contrastive_sr_losses.losses.registry import LOSSES, build_trainer  # the one registry

from .runtime import UsageError, parse_kwargs, split_top_level


@dataclass(frozen=True)
class Stage:
    """One stage of a staged recipe: a name (its sub-folder ``<out>/stage_<k>_<name>``), its loss and
    its scale (None: the run's ``--scale``). Every stage after the first starts from the previous
    stage's weights (``--init-from``: fresh optimizer, the same schedule from its start)."""

    name: str
    loss: str
    scale: int | None = None


@dataclass(frozen=True)
class Recipe:
    """A paper's loss with its published weights, and its training defaults where they differ.

    An "epoch" in the papers is read as 1000 iterations: PCL says so ("200,000 iterations (200
    epochs)"), G-IDRN too ("each epoch 1000 iterations"), and it is the EDSR code's ``--test_every
    1000`` on which PRFFN's and PCL's code build. ``stages``: run one after the other from one command
    (``examples/train.py`` resumes an interrupted stage and skips finished ones); ``needs_init``: the
    recipe fine-tunes a pretrained network given with ``--init-from``.
    """

    loss: str
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    needs_init: bool = False


RECIPES: dict[str, Recipe] = {
    "prffn": Recipe(
        "l1+0.1*pixel_contrastive(region=8)",
        "Zhou et al. eq 11: L1 + 0.1 * L_cntr with 8x8 regions (S = 64); 1000 epochs, lr 1e-4 halved every "
        "200 epochs, batch 16, LR patch 48",
        {"iters": 1_000_000, "lr": 1e-4, "lr_step": 200_000},
    ),
    "pcl": Recipe(
        "l1+0.01*pcl",
        "Wu et al. eq 11 from scratch: L1 + alpha * L_CL with alpha 0.01, not the paper's 1 (the loss study: "
        "alpha 1 lost 1 to 10 dB PSNR-Y against L1, 0.01 a few hundredths of a dB; write l1+1*pcl for the "
        "paper's), layers 0,2,4,6, HR + 3 sharpened positives, 4 blurred negatives, eq 7 per patch position, "
        "discriminator Adam 1e-4 constant; 200k iterations (200 epochs), batch 16, LR patch 48 (the paper gives "
        "no learning rate: EDSR's 1e-4 halved every 2e5). The authors' released scripts instead fine-tune "
        "pretrained networks with the contrastive term sending no gradient: --recipe pcl_finetune",
        {"iters": 200_000, "lr": 1e-4, "lr_step": 200_000},
    ),
    "pcl_finetune": Recipe(
        "l1+5*pcl(layers=(4,),lr_negative=true,sample_form=authors,d_form=flattened,d_augment=true,d_lr=same,"
        "generator_gradient=false)",
        "the PCL authors' RCAN x4 script (src/scripts/RCAN_scripts/rcanx4_PCL.sh), as their code runs it: their "
        "generator-side features are computed under torch.no_grad(), so the weight 5 term is logged but the "
        "network fine-tunes on L1 alone (generator_gradient=false; with a live gradient the paper's alpha 1 lost "
        "1 to 10 dB PSNR-Y from scratch in the loss study). Fine-tune a pretrained "
        "network (--init-from) with L1 + 5 * L_CL on layer 4, negatives LR + 3 blurred, positives HR + 3 "
        "sharpened (the NLSN script's; in the RCAN script a missing line continuation drops them), the authors' "
        "sampling, flattened patch eq 7, sharpened / blurred copies also in the discriminator step, the "
        "discriminator at the generator's initial lr 5e-5, constant (their scheduler for it is never stepped); "
        "generator lr 5e-5 on cosine restarts (3 periods of 200 epochs, restart weight 1, eta_min 1e-8) for "
        "600 epochs, batch 16, LR patch 48",
        {
            "iters": 600_000, "lr": 5e-5, "lr_schedule": "cosine_restart", "cosine_period": 200_000,
            "cosine_eta_min": 1e-8, "cosine_restart_weight": 1.0,
        },
        needs_init=True,
    ),
    "gidrn": Recipe(
        "0.4*l1+0.6*high_pass",
        "Wang et al. table 3: 0.4 * L1 + 0.6 * L_hf; 1000 epochs of 1000 iterations, Adam lr 5e-4 halved every "
        "2e5 iterations, batch 32, LR patch 64",
        {"iters": 1_000_000, "lr": 5e-4, "lr_step": 200_000, "batch": 32, "patch": 64},
    ),
    "rrlfn": Recipe(
        "l1+0.001*random_conv",
        "Guo et al. section 2.2, one command for the multi-stage warm start: x2 from scratch, x4 (--scale) from "
        "it, then 3 restarts from the previous stage's weights (fresh optimizer, same schedule), eq 9 added to "
        "L1 only in the last (its weight is not published: 0.001 here, the least harmful weight of the loss "
        "study's sweep; 1 lost 4-7 dB PSNR-Y, 0.01 0.25-0.63 dB); 800k iterations per stage (the 800k of table 3's "
        "RRLFN_80w2t_cls, half its 1.6M single run), lr 5e-4 halved every 2e5 iterations, flips, rotations and "
        "channel shuffle",
        {"iters": 800_000, "lr": 5e-4, "lr_step": 200_000, "channel_shuffle": True},
        stages=(
            Stage("x2", "l1", scale=2),
            Stage("x4", "l1"),
            Stage("restart1", "l1"),
            Stage("restart2", "l1"),
            Stage("restart3_cl", "l1+0.001*random_conv"),
        ),
    ),
}


def recipe_iterations(recipe: Recipe, base_iters: int) -> str:
    """How long a recipe trains, for ``--list-losses``."""
    iters = int(recipe.defaults.get("iters", base_iters))
    if not recipe.stages:
        return f"{iters:,} iterations"
    names = ", ".join(
        f"{st.name} (x{st.scale}, {st.loss})" if st.scale else f"{st.name} ({st.loss})" for st in recipe.stages
    )
    return f"{len(recipe.stages)} stages x {iters:,} = {len(recipe.stages) * iters:,} iterations: {names}"


@dataclass(frozen=True)
class Term:
    weight: float
    name: str
    kwargs: dict[str, Any]

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.weight:g}*{self.name}" + (f"({args})" if args else "")


_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?"  # 2, 0.1, .5, 1e-3 (not 1.2.3)
_TERM = re.compile(rf"^(?:(?P<w>{_NUMBER})\*)?(?P<name>[a-z_][a-z0-9_]*)(?:\((?P<args>.*)\))?$", re.I)


def parse_loss_spec(spec: str) -> list[Term]:
    """Parse ``'l1+0.1*pixel_contrastive(region=4)'`` into terms; unknown names list the known ones."""
    text = "".join(spec.split())
    if not text:
        raise UsageError("--loss: empty loss spec")
    terms = []
    for raw in split_top_level(text, "+"):
        match = _TERM.match(raw)
        if match is None:
            raise UsageError(f"--loss: cannot parse term {raw!r} of {spec!r} (expected [weight*]name[(key=value,...)])")
        name = match["name"].lower()
        if name not in LOSSES:
            raise UsageError(f"--loss: unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
        weight = float(match["w"]) if match["w"] else LOSSES[name].default_weight
        if not (math.isfinite(weight) and weight > 0):
            raise UsageError(f"--loss: the weight of {raw!r} must be a finite number > 0, got {weight:g}")
        kwargs = parse_kwargs(match["args"] or "", f"--loss {name}(...)")
        terms.append(Term(weight, name, kwargs))
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise UsageError(f"--loss: a loss appears twice in {spec!r}")
    return terms


def _check_importable(term: Term) -> None:
    """A one-line error when the module holding ``term``'s loss cannot be imported here."""
    entry = LOSSES[term.name]
    try:
        importlib.import_module(entry.module)
    except ImportError as err:
        raise UsageError(
            f"--loss {term.name}: this installation has no {entry.module} ({err}); known losses that work here: "
            + ", ".join(n for n in LOSSES if _available(n))
        ) from err


def _available(name: str) -> bool:
    try:
        return importlib.util.find_spec(LOSSES[name].module) is not None
    except ImportError:
        return False


def describe_losses(base_iters: int = 300_000) -> str:
    """The registry and the recipes (with their iterations) as text, for ``--help`` and ``--list-losses``."""
    lines = ["losses (--loss):"]
    for name, entry in LOSSES.items():
        flags = " [gets lr]" if entry.needs_lr else ""
        missing = "" if _available(name) else " [not in this installation]"
        lines.append(f"  {name:<18} {entry.summary}{flags}{missing}")
    lines.append("recipes (--recipe):")
    for name, recipe in RECIPES.items():
        lines.append(f"  {name:<18} --loss '{recipe.loss}'  [{recipe_iterations(recipe, base_iters)}]  ({recipe.summary})")
    return "\n".join(lines)


class _SyncedAdam(torch.optim.Adam):
    """Adam that first averages the gradients over the ``torchrun`` processes and, after its step,
    broadcasts the module's buffers (BatchNorm statistics) from rank 0: DDP's behaviour for a
    module whose forward calls are not made through a DDP wrapper (PCLTrainer calls the discriminator
    directly)."""

    def __init__(self, module: nn.Module, lr: float) -> None:
        super().__init__(module.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self._module = module

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        import torch.distributed as dist

        world = dist.get_world_size()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
        out = super().step(closure)
        for buf in self._module.buffers():
            dist.broadcast(buf, 0)
        return out


class CompositeLoss(CombinedLoss):
    """The ``--loss`` spec as a :class:`~contrastive_sr_losses.CombinedLoss`;
    ``forward(sr, hr, lr)`` -> ``(total, {name: value})``.

    Args:
        spec: the ``--loss`` string.
        device: where the losses (and PCL's discriminator) live.
        distributed: True under ``torchrun`` (PCL's discriminator gradients are averaged).
        fp16_scaler: give PCL's discriminator step its own GradScaler (float16 autocast on CUDA).
    """

    def __init__(
        self, spec: str, device: torch.device, *, distributed: bool = False, fp16_scaler: bool = False,
        generator_lr: float | None = None, generator_schedule: Callable[[Any], Any] | None = None,
    ) -> None:
        terms_spec = parse_loss_spec(spec)
        kwargs = {t.name: dict(t.kwargs) for t in terms_spec}
        pcl_kwargs = kwargs.get("pcl", {})
        d_lr, d_schedule = pcl_kwargs.pop("d_lr", 1e-4), pcl_kwargs.pop("d_schedule", "constant")
        d_form, d_augment = pcl_kwargs.pop("d_form", "per_position"), pcl_kwargs.pop("d_augment", False)
        if d_lr == "same":
            if generator_lr is None:
                raise UsageError("--loss pcl(d_lr=same): no generator learning rate was given to the loss")
            d_lr = generator_lr
        if isinstance(d_lr, bool) or not isinstance(d_lr, (int, float)) or not (math.isfinite(d_lr) and d_lr > 0):
            raise UsageError(f"--loss pcl(d_lr=...): the discriminator's learning rate must be a finite number > 0 or 'same', got {d_lr!r}")
        if d_schedule not in ("constant", "same") or (d_schedule == "same" and generator_schedule is None):
            raise UsageError(f"--loss pcl(d_schedule=...): 'constant' or 'same' (with a generator schedule), got {d_schedule!r}")
        for t in terms_spec:
            _check_importable(t)

        def make_trainer(pcl: nn.Module) -> Any:
            optimizer = _SyncedAdam(pcl.discriminator, float(d_lr)) if distributed else None
            scaler = torch.amp.GradScaler(device.type) if fp16_scaler else None
            try:
                return build_trainer(
                    "pcl", pcl, lr=float(d_lr), optimizer=optimizer, grad_scaler=scaler,  # type: ignore[arg-type]
                    scheduler=generator_schedule if d_schedule == "same" else None,
                    discriminator_form=d_form, augment_discriminator=d_augment,
                )
            except (TypeError, ValueError) as err:
                raise UsageError(f"--loss pcl(...): {err}") from err

        try:
            super().__init__({t.name: (t.weight, kwargs[t.name]) for t in terms_spec}, pcl_trainer=make_trainer,
                             device=device)
        except (TypeError, ValueError, KeyError, FileNotFoundError, RuntimeError) as err:
            if isinstance(err, UsageError):
                raise
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            for t in terms_spec:
                prefix = f"CombinedLoss term {t.name!r}: "
                if message.startswith(prefix):
                    raise UsageError(f"--loss {t}: {message[len(prefix):]}") from err
            raise UsageError(f"--loss {spec}: {message}") from err
        self.terms_spec = terms_spec
        self.spec = "+".join(str(t) for t in terms_spec)

    def forward(  # type: ignore[override]
        self, sr: Tensor, hr: Tensor, lr: Tensor, terms: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted total (float32) and each term's unweighted value (detached, on the device:
        no host sync here; the caller converts them when it logs). In training mode PCL first makes
        its discriminator step. ``terms``, when given, is filled with each term's weighted value with
        its graph (for :func:`contrastive_sr_losses.gradient_balance`)."""
        total = super().forward(sr, hr, lr, terms=terms)
        return total, dict(self.last_values)

    @torch.no_grad()
    def check_terms(self, hr_shape: tuple[int, int, int, int], scale: int, device: torch.device) -> None:
        """Run every term once on random data of the training shape (eval mode: no discriminator
        step, no state changed), so a bad argument (``region`` larger than the patch, a kernel wider
        than the image, ``reduction=bad``) is a one-line :class:`UsageError` before training, not a
        traceback at the first step. The RNG states are restored afterwards."""
        gen = torch.Generator().manual_seed(0)
        n, c, h, w = hr_shape
        hr = torch.rand(hr_shape, generator=gen).to(device)
        sr = torch.rand(hr_shape, generator=gen).to(device)
        lr = torch.rand((n, c, h // scale, w // scale), generator=gen).to(device)
        was_training = self.training
        self.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for term in self.terms_spec:
                    loss = self.losses[term.name]
                    try:
                        if term.name == "pcl":
                            loss(sr, hr, lr if loss.lr_negative else None)
                        elif LOSSES[term.name].needs_lr:
                            loss(sr, hr, lr=lr)
                        else:
                            loss(sr, hr)
                    except (TypeError, ValueError, RuntimeError) as err:
                        first = str(err).splitlines()[0] if str(err) else type(err).__name__
                        raise UsageError(f"--loss {term}: {first} (on a {h}x{w} HR training patch)") from err
        finally:
            self.train(was_training)
