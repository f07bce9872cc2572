"""Losses with training state (PCL's discriminator and its optimizer) in the frameworks' resume files.

BasicSR, traiNNer-redux and neosr save a training state ``<iter>.state`` holding the optimizers and
schedulers of the model, and save the networks apart; a loss's own state is in neither. The model
types made with :func:`with_loss_state` add ``state[LOSS_STATE_KEY] = {attribute: loss state}`` to
that same file after the framework wrote it, and give it back to the losses in ``resume_training``,
so the framework's own resume (``--auto_resume`` / ``resume_state``) restores them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from .adapters import PCLAdapter, register_classes

__all__ = ["LOSS_STATE_KEY", "stateful_losses", "with_loss_state", "register_model"]

#: Key of the losses' states in a framework's training-state file.
LOSS_STATE_KEY = "contrastive_sr_losses"


def stateful_losses(model: object) -> dict[str, PCLAdapter]:
    """The adapters with training state held by ``model``: its attributes (``cri_perceptual``) and
    the entries of its dict attributes (traiNNer-redux's ``losses``), by ``name`` or ``name.key``."""
    found = {}
    for name, value in vars(model).items():
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for key, loss in entries:
            if isinstance(loss, PCLAdapter):
                found[name if key is None else f"{name}.{key}"] = loss
    return found


def _states_dir(model: Any) -> str:
    """The framework's ``training_states`` folder: ``opt['path']`` (BasicSR, neosr: dicts) or
    ``opt.path`` (traiNNer-redux: a typed struct)."""
    opt = model.opt
    return opt["path"]["training_states"] if isinstance(opt, dict) else opt.path.training_states


def _is_main(model: Any) -> bool:
    """Rank 0, the process that writes the training state (``rank`` unset: one process)."""
    opt = model.opt
    rank = opt.get("rank") if isinstance(opt, dict) else getattr(opt, "rank", None)
    return not rank


def with_loss_state(base: type, name: str) -> type:
    """Subclass of the framework model ``base`` named ``name`` that keeps its losses' state in the
    training-state file.

    Example:
        >>> class SRModel:  # the framework's: __init__(opt), save_training_state, resume_training
        ...     def __init__(self, opt): self.opt = opt
        ...     def save_training_state(self, epoch, current_iter): pass
        ...     def resume_training(self, resume_state): pass
        >>> CSRSRModel = with_loss_state(SRModel, "CSRSRModel")
        >>> model = CSRSRModel({"path": {"training_states": "."}})
        >>> isinstance(model, SRModel), stateful_losses(model)
        (True, {})
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        for loss in stateful_losses(self).values():
            loss.state_saved_by = name

    def save_training_state(self: Any, epoch: int, current_iter: int) -> None:
        base.save_training_state(self, epoch, current_iter)
        losses = stateful_losses(self)
        path = Path(_states_dir(self)) / f"{int(current_iter)}.state"
        if not losses or current_iter == -1 or not _is_main(self) or not path.is_file():
            return  # nothing to add, or the framework could not write its file (it said so)
        state = torch.load(path, map_location="cpu", weights_only=False)
        state[LOSS_STATE_KEY] = {key: loss.training_state() for key, loss in losses.items()}
        torch.save(state, path)

    def resume_training(self: Any, resume_state: dict[str, Any]) -> None:
        base.resume_training(self, resume_state)
        saved = resume_state.get(LOSS_STATE_KEY, {})
        for key, loss in stateful_losses(self).items():
            if key in saved:
                loss.load_training_state(saved[key])
            else:
                warnings.warn(f"{name}: the resume state holds no state for {key}; it starts afresh", stacklevel=2)

    doc = f"{base.__name__} whose losses' training state (PCL's discriminator) is saved and resumed with its own."
    methods = {"__init__": __init__, "save_training_state": save_training_state, "resume_training": resume_training}
    return type(name, (base,), {**methods, "__doc__": doc, "__module__": __name__, "__qualname__": name})


def register_model(registry: Any, base: type, name: str, framework: str) -> type:
    """Register :func:`with_loss_state` of ``base`` as ``name`` in a framework's model registry, once:
    a second call returns the class registered by the first."""
    if name in registry and getattr(registry.get(name), "__module__", None) == __name__:
        return registry.get(name)
    cls = with_loss_state(base, name)
    register_classes(registry, {name: cls}, framework)
    return cls
