"""PCL's GAN-like alternation (Wu et al., section 3.5): :class:`PCLTrainer` trains the wavelet
discriminator of a :class:`~contrastive_sr_losses.losses.pcl.FrequencyContrastiveLoss` with the
contrastive discriminator loss of eq 7, one step per generator step, with its own optimizer.

The loss itself (eqs 5-10), its functional twin and eq 7 live in :mod:`contrastive_sr_losses.losses.pcl`;
the module docstring there says where this implementation departs from the authors' released code.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._validation import (
    autocast_disabled,
    check_betas,
    check_bool,
    check_choice,
    check_eps,
    check_image_pair,
    check_positive_float,
    compute_dtype,
    module_dtype,
)
from ..utils import training_mode
from .pcl import DISCRIMINATOR_FORMS, FrequencyContrastiveLoss, contrastive_discriminator_loss

__all__ = ["PCLTrainer"]


def _finite_everywhere(loss: Tensor) -> bool:
    """Whether ``loss`` is finite, on every process of an initialised ``torch.distributed`` group
    (all of them then skip the step together: a synchronised optimizer would wait for the others)."""
    ok = torch.isfinite(loss).to(torch.float32)
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
    return bool(ok.item() == 1.0)


class PCLTrainer:
    r"""PCL's alternating training (Wu et al., section 3.5) in one call per step of the user's loop.

    ``trainer(sr, hr, lr=None)`` first makes one discriminator step on ``sr.detach()`` (fake) vs ``hr``
    (real) with the contrastive discriminator loss (eq 7) and the trainer's own optimizer, in training
    mode (BatchNorm on batch statistics, running statistics updated); then it returns the
    generator-side loss ``criterion(sr, hr, lr)`` (eqs 8-10) computed with the just-updated
    discriminator in eval mode, whose parameters get no gradient from it::

        pcl = PCLTrainer(FrequencyContrastiveLoss(WaveletDiscriminator()).to(device))
        for lr_img, hr in loader:
            sr = model(lr_img)
            loss = F.l1_loss(sr, hr) + 0.01 * pcl(sr, hr)  # eq 11 at alpha 0.01 (the paper's 1 lost several dB)
            optimizer.zero_grad(); loss.backward(); optimizer.step()

    Call ``pcl.criterion(sr, hr)`` instead (no discriminator step) to evaluate the loss on validation data.
    Under ``torch.autocast`` the discriminator's forward passes follow the autocast context and its backward
    runs outside it. Under float16 autocast the step needs loss scaling: give the trainer its own
    ``grad_scaler`` (not the generator's) to keep it in float16; without one (the framework adapters, whose
    frameworks have no scaler to hand over) the step runs in float32, autocast off. Call ``backward`` on the
    returned loss before the next trainer call: the next discriminator step changes the parameters the returned
    loss was computed with. The training-mode BatchNorm of the step needs more than one value per channel in the
    last block: a batch of 2, or one image of at least 33x33 pixels with the default discriminator.

    Args:
        criterion: the :class:`FrequencyContrastiveLoss` whose ``discriminator`` is trained (create
            them on the training device first).
        lr, betas, eps: of the default optimizer, ``Adam(discriminator.parameters(), lr=1e-4,
            betas=(0.9, 0.999), eps=1e-8)``: the paper's Adam settings (section 3.5) and EDSR's
            learning rate; the paper gives no learning rate for the discriminator. The authors' code
            builds the discriminator's Adam with the generator's learning rate and scheduler settings,
            but never steps that scheduler (its ``Loss.step`` looks for ``.scheduler`` on the loss
            module, which keeps it on its optimizer): their discriminator runs at the generator's
            *initial* learning rate throughout. Pass the generator's ``lr`` for that form.
        optimizer: an optimizer over the discriminator's parameters, to use instead of the default.
        grad_scaler: a ``torch.amp.GradScaler`` for the discriminator step under float16 autocast
            (``None``: that step runs in float32 instead).
        scheduler: ``None`` (default: a constant learning rate) or a function building a learning-rate
            scheduler over the trainer's optimizer, e.g. ``lambda opt: StepLR(opt, 200_000, 0.5)`` to
            follow the generator's schedule; stepped after every discriminator step (per iteration, as
            ``examples/train.py`` steps the generator's) and saved in :meth:`state_dict`.
        discriminator_form: ``'per_position'`` (default) or ``'flattened'`` (the authors' code):
            how patch logits are contrasted in eq 7 (:func:`contrastive_discriminator_loss`).
        augment_discriminator: also feed the discriminator the criterion's sharpened copies of ``hr``
            as reals and its blurred copies as fakes (the authors' RCAN script, ``--contras_D_train``;
            the LR negative is not used there). Default False: the paper's eq 7, HR against SR only.
            The copies are drawn for the step, independently of the generator-side ones (the released
            code reuses the same copies).

    Attributes:
        criterion: the :class:`FrequencyContrastiveLoss`; also ``discriminator``, ``optimizer``,
            ``grad_scaler`` and ``scheduler`` (or None), as given or built.
        steps: discriminator steps made.
        skipped_steps: steps skipped because the eq 7 loss was NaN or Inf.
        last_discriminator_loss: detached tensor of the last eq 7 value, None before the first.

    A batch whose discriminator loss is NaN or Inf (a NaN in ``sr``, a diverging generator) does not
    poison the discriminator: the step is skipped with a warning, and the discriminator's weights,
    its BatchNorm statistics and the optimizer are left as they were (this costs one host sync per
    step, as ``GradScaler.step`` does). The generator-side loss of that call is then NaN as well.

    Example:
        >>> from contrastive_sr_losses.embeddings import WaveletDiscriminator
        >>> disc = WaveletDiscriminator(channels=(8, 8, 16, 16), strides=(1, 2, 1, 2))
        >>> pcl = PCLTrainer(FrequencyContrastiveLoss(disc, layers=(0, 2)))
        >>> model = torch.nn.Conv2d(3, 3, 3, padding=1)
        >>> hr = torch.rand(2, 3, 16, 16)
        >>> sr = model(hr)
        >>> loss = torch.nn.functional.l1_loss(sr, hr) + pcl(sr, hr)
        >>> loss.backward()
        >>> pcl.steps
        1
        >>> checkpoint = pcl.state_dict()  # discriminator, optimizer, steps; pcl.load_state_dict(checkpoint)
    """

    def __init__(
        self,
        criterion: FrequencyContrastiveLoss,
        *,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        optimizer: torch.optim.Optimizer | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
        discriminator_form: str = "per_position",
        augment_discriminator: bool = False,
    ) -> None:
        if not isinstance(criterion, FrequencyContrastiveLoss):
            raise TypeError(f"criterion must be a FrequencyContrastiveLoss, got {type(criterion).__name__}")
        self.criterion = criterion
        self.discriminator = criterion.discriminator
        if not any(p.requires_grad for p in self.discriminator.parameters()):
            raise ValueError(
                "the discriminator has no trainable parameters: for a frozen embedding use the "
                "FrequencyContrastiveLoss alone, without PCLTrainer"
            )
        if optimizer is None:
            optimizer = torch.optim.Adam(
                self.discriminator.parameters(),
                lr=check_positive_float(lr, "lr"),
                betas=check_betas(betas),
                eps=check_eps(eps),
            )
        elif not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.grad_scaler = grad_scaler
        if scheduler is not None and not callable(scheduler):
            raise TypeError(f"scheduler must be a function optimizer -> LRScheduler, got {type(scheduler).__name__}")
        self.scheduler = scheduler(optimizer) if scheduler is not None else None
        self.discriminator_form = check_choice(discriminator_form, "discriminator_form", DISCRIMINATOR_FORMS)
        self.augment_discriminator = check_bool(augment_discriminator, "augment_discriminator", yaml_hint=False)
        self.steps = 0
        self.skipped_steps = 0
        self.last_discriminator_loss: Tensor | None = None

    def _augmented(self, sr: Tensor, hr: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Reals ``[hr, sharpened copies]`` and fakes ``[sr, blurred copies]`` stacked on the batch axis."""
        crit = self.criterion
        reals, fakes = [hr], [sr]
        with torch.no_grad():
            if crit.sharpen is not None:
                reals.append(crit.sharpen(hr, generator=generator).flatten(0, 1))
            if crit.blur is not None:
                fakes.append(crit.blur(hr, generator=generator).flatten(0, 1))
        return torch.cat(reals), torch.cat(fakes)

    def discriminator_step(self, sr: Tensor, hr: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """One optimizer step of the discriminator on eq 7 with ``hr`` real and ``sr.detach()`` fake
        (with ``augment_discriminator``, also the sharpened copies real and the blurred ones fake).

        Returns the detached loss. A NaN or Inf loss skips the step (``skipped_steps``, a warning) and
        restores the BatchNorm statistics that its forward passes updated."""
        check_image_pair(sr, hr)
        kind = sr.device.type
        float16_autocast = torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.float16
        # float16 without a GradScaler would underflow the discriminator's gradients (it would silently
        # stop learning): then its step runs in float32, autocast off (BasicSR, traiNNer-redux and neosr
        # call the loss under the generator's autocast and have no scaler to give it)
        full_precision = float16_autocast and self.grad_scaler is None
        disc = self.discriminator
        dtype = module_dtype(disc, compute_dtype(sr, hr))
        saved_buffers = [b.detach().clone() for b in disc.buffers()]  # BatchNorm statistics, small
        reals, fakes = hr.detach(), sr.detach()
        if self.augment_discriminator:
            reals, fakes = self._augmented(fakes, reals, generator)
        with torch.enable_grad(), training_mode(disc, True), (autocast_disabled(kind) if full_precision else contextlib.nullcontext()):
            real = disc(self.criterion.to_unit_range(reals.to(dtype)))
            fake = disc(self.criterion.to_unit_range(fakes.to(dtype)))
            loss = contrastive_discriminator_loss(real, fake, form=self.discriminator_form)
        self.last_discriminator_loss = loss.detach()
        if not _finite_everywhere(self.last_discriminator_loss):  # the one host sync of the step
            with torch.no_grad():
                for buf, saved in zip(disc.buffers(), saved_buffers):
                    buf.copy_(saved)
            self.skipped_steps += 1
            warnings.warn(
                f"PCLTrainer: the discriminator loss is {self.last_discriminator_loss.item()} (NaN or Inf in "
                f"sr or hr?): step skipped, the discriminator and its optimizer are unchanged "
                f"({self.skipped_steps} skipped so far)",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.last_discriminator_loss
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(sr.device.type, enabled=False):
            if self.grad_scaler is not None:
                self.grad_scaler.scale(loss).backward()
                self.grad_scaler.step(self.optimizer)
                self.grad_scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.steps += 1
        return self.last_discriminator_loss

    def __call__(
        self, sr: Tensor, hr: Tensor, lr: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        self.discriminator_step(sr, hr, generator=generator)
        return self.criterion(sr, hr, lr, generator=generator)

    def state_dict(self) -> dict[str, Any]:
        """Discriminator weights and buffers, optimizer state, grad scaler and scheduler states, step counts."""
        state: dict[str, Any] = {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
        }
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the discriminator first, so the optimizer state
        lands on its parameters' device). The optimizer state is copied: ``torch.optim`` would
        otherwise share its tensors with the trainer the state came from."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from PCLTrainer.state_dict(), got {type(state).__name__}")
        missing = {"discriminator", "optimizer", "steps"} - set(state)
        if missing:
            raise KeyError(f"state is missing {sorted(missing)}: not a PCLTrainer.state_dict()")
        own = self.discriminator.state_dict()
        theirs = state["discriminator"]
        if not isinstance(theirs, dict):
            raise TypeError(f"state['discriminator'] must be a state dict, got {type(theirs).__name__}")
        wrong = [k for k in own if k not in theirs or getattr(theirs[k], "shape", None) != own[k].shape]
        extra = [k for k in theirs if k not in own]
        if wrong or extra:
            k = (wrong or extra)[0]
            got = tuple(theirs[k].shape) if k in theirs and hasattr(theirs[k], "shape") else "absent"
            want = tuple(own[k].shape) if k in own else "absent"
            raise ValueError(
                f"state['discriminator'] is another discriminator's: {k} is {got} there, {want} here "
                f"({len(wrong) + len(extra)} tensor(s) differ); build the trainer with the same channels / strides"
            )
        saved = {k: v.detach().clone() for k, v in own.items()}
        self.discriminator.load_state_dict(theirs)
        try:
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        except (ValueError, KeyError, TypeError) as err:
            self.discriminator.load_state_dict(saved)  # all or nothing
            raise ValueError(f"state['optimizer'] does not fit this trainer's optimizer: {err}") from None
        self.steps = int(state["steps"])
        self.skipped_steps = int(state.get("skipped_steps", 0))  # absent in states saved before it existed
        if self.grad_scaler is not None and "grad_scaler" in state:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])

    def __repr__(self) -> str:
        return f"PCLTrainer(steps={self.steps}, optimizer={type(self.optimizer).__name__}, criterion={self.criterion!r})"
