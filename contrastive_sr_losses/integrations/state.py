"""Losses with training state (PCL's discriminator and its optimizer) beside the frameworks' resume files.

BasicSR, traiNNer-redux and neosr save a training state ``<iter>.state`` holding the optimizers and
schedulers of the model, and save the networks apart; a loss's own state is in neither. The model
types made with :func:`with_loss_state` write ``{attribute: loss state}`` to a file of their own next
to it, ``<iter>.state.contrastive_sr_losses`` (:func:`loss_state_path`; atomically: a temporary file
in the same folder, fsync, rename), and give it back to the losses in ``resume_training``, so the
framework's own resume (``--auto_resume`` / ``resume_state``) restores them. The framework's file is
never opened, let alone rewritten: whatever happens while ours is written, the framework's resume
state stays byte for byte what the framework wrote. Our file is read with
``torch.load(weights_only=True)``: one holding pickled Python objects is refused, not run. (Older
versions added ``state[LOSS_STATE_KEY]`` inside the framework's file; such a state still resumes.)
Copy both files when moving a resume state: without ours, the losses start afresh (with a warning).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..serialization import atomic_save, load_tensors_file
from .adapters import PCLAdapter, register_classes

__all__ = ["LOSS_STATE_KEY", "stateful_losses", "with_loss_state", "register_model", "loss_state_path",
           "load_loss_state"]

#: Suffix of the losses' state file beside a framework's ``<iter>.state`` (and the key of the
#: losses' states inside the framework's file, as older versions wrote it).
LOSS_STATE_KEY = "contrastive_sr_losses"


def loss_state_path(framework_state: str | os.PathLike[str]) -> Path:
    """The losses' state file that goes with the framework's ``<iter>.state`` file: the same name
    followed by ``.contrastive_sr_losses`` (the frameworks' ``--auto_resume``, which reads the
    iteration as the part of each name before ``.state``, picks the same iteration with it there)."""
    path = Path(framework_state)
    return path.with_name(f"{path.name}.{LOSS_STATE_KEY}")


def _remove_orphans(folder: Path) -> None:
    """Delete our state files whose framework file is gone (a framework that keeps only its last N
    states): they could not be resumed from and PCL's are tens of MB each."""
    suffix = f".{LOSS_STATE_KEY}"
    for ours in folder.glob(f"*.state{suffix}"):
        if not ours.with_name(ours.name[: -len(suffix)]).exists():
            ours.unlink(missing_ok=True)


def load_loss_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a losses' state file (:func:`loss_state_path`) with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: one line naming ``path`` when it holds pickled Python objects (refused: nothing of
            it runs), cannot be read, or is not a dict.
    """
    path = Path(path)
    state = load_tensors_file(path, "losses' training state")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of losses' training states, got {type(state).__name__}")
    return state


def _resume_path(model: Any, resume_state: dict[str, Any]) -> Path | None:
    """The framework state file this resume came from: ``opt['path']['resume_state']`` when set,
    else ``<training_states>/<iter>.state``."""
    opt = model.opt
    paths = opt.get("path", {}) if isinstance(opt, dict) else getattr(opt, "path", None)
    given = paths.get("resume_state") if isinstance(paths, dict) else getattr(paths, "resume_state", None)
    if given:
        return Path(given)
    if "iter" not in resume_state:
        return None
    try:
        return Path(_states_dir(model)) / f"{int(resume_state['iter'])}.state"
    except (KeyError, AttributeError, TypeError, ValueError):
        return None


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
        # ours beside the framework's file, which is never opened: a failure here leaves it intact
        atomic_save({key: loss.training_state() for key, loss in losses.items()}, loss_state_path(path))
        _remove_orphans(path.parent)

    def resume_training(self: Any, resume_state: dict[str, Any]) -> None:
        base.resume_training(self, resume_state)
        saved = resume_state.get(LOSS_STATE_KEY)  # written inside the framework's file by older versions
        if saved is None:
            source = _resume_path(self, resume_state)
            ours = loss_state_path(source) if source is not None else None
            saved = load_loss_state(ours) if ours is not None and ours.is_file() else {}
        if not isinstance(saved, dict):
            raise TypeError(f"resume_state[{LOSS_STATE_KEY!r}] must be a dict of losses' states, got {type(saved).__name__}")
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
