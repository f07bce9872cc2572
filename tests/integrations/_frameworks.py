"""Minimal stand-ins for BasicSR, traiNNer-redux and neosr: the parts the integration adapters meet,
reproducing each framework's calling convention as its source has it (read from BasicSR 1.4.2,
traiNNer-redux and neosr at the commits named in README's "Training frameworks" section).

``install(name, monkeypatch)`` puts a fake package of that name into ``sys.modules`` with the module
paths the adapters import (``<pkg>.utils.registry``, and the model module), so ``register_*`` runs
against it as it would against the real one. The real BasicSR runs in the integration environment
(``tests/integrations/real_frameworks/``); traiNNer-redux and neosr are not on PyPI and their training scripts need CUDA.
"""

from __future__ import annotations

import copy
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn


class Registry:
    """BasicSR's / neosr's registry (exact names); ``lower=True``: traiNNer-redux's, which lower-cases
    the name in ``register``, ``get`` and ``__contains__``. Duplicate names are an error in all three."""

    def __init__(self, name: str, lower: bool = False) -> None:
        self._name, self._lower, self._obj_map = name, lower, {}

    def _key(self, name: str) -> str:
        return name.lower() if self._lower else name

    def register(self, obj: Any = None) -> Any:
        name = self._key(obj.__name__)
        assert name not in self._obj_map, f"An object named '{name}' was already registered in '{self._name}' registry!"
        self._obj_map[name] = obj

    def get(self, name: str) -> Any:
        ret = self._obj_map.get(self._key(name))
        if ret is None:
            raise KeyError(f"No object named '{name}' found in '{self._name}' registry!")
        return ret

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._obj_map


def build_loss(registry: Registry, opt: dict[str, Any]) -> nn.Module:
    """``build_loss`` of all three: copy, pop ``type``, ``cls(**opt)``."""
    opt = copy.deepcopy(opt)
    return registry.get(opt.pop("type"))(**opt)


class Opt(types.SimpleNamespace):
    """traiNNer-redux's typed options (attribute access)."""


class BaseModel:
    """The save / resume of the three ``BaseModel``s: a ``<iter>.state`` file with the optimizers'
    and schedulers' states, written by rank 0; ``resume_training`` checks the counts and loads them."""

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.device = torch.device("cpu")
        self.net_g = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))  # a x2 network
        self.optimizer_g = torch.optim.Adam(self.net_g.parameters(), lr=1e-3)
        self.optimizers = [self.optimizer_g]
        self.schedulers = [torch.optim.lr_scheduler.StepLR(self.optimizer_g, 10)]

    def _states_dir(self) -> Path:
        return Path(self.opt["path"]["training_states"] if isinstance(self.opt, dict) else self.opt.path.training_states)

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter != -1:
            state = {"epoch": epoch, "iter": current_iter, "optimizers": [], "schedulers": []}
            for o in self.optimizers:
                state["optimizers"].append(o.state_dict())
            for s in self.schedulers:
                state["schedulers"].append(s.state_dict())
            torch.save(state, self._states_dir() / f"{current_iter}.state")

    def resume_training(self, resume_state: dict[str, Any]) -> None:
        assert len(resume_state["optimizers"]) == len(self.optimizers), "Wrong lengths of optimizers"
        assert len(resume_state["schedulers"]) == len(self.schedulers), "Wrong lengths of schedulers"
        for i, o in enumerate(resume_state["optimizers"]):
            self.optimizers[i].load_state_dict(o)
        for i, s in enumerate(resume_state["schedulers"]):
            self.schedulers[i].load_state_dict(s)

    def feed_data(self, lq: torch.Tensor, gt: torch.Tensor) -> None:
        self.lq, self.gt = lq, gt


class BasicSRModel(BaseModel):
    """``basicsr/models/sr_model.py``: ``pixel_opt`` and ``perceptual_opt`` built with ``build_loss``
    and ``.to(device)``; ``cri_pix(output, gt)`` is a tensor, ``cri_perceptual(output, gt)`` unpacks
    to ``(l_percep, l_style)``, either may be None; the total is their plain sum."""

    registry: Registry

    def __init__(self, opt: dict[str, Any]) -> None:
        super().__init__(opt)
        train = opt["train"]
        self.cri_pix = build_loss(self.registry, train["pixel_opt"]).to(self.device) if train.get("pixel_opt") else None
        self.cri_perceptual = (
            build_loss(self.registry, train["perceptual_opt"]).to(self.device) if train.get("perceptual_opt") else None
        )

    def optimize_parameters(self, current_iter: int) -> torch.Tensor:
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        l_total = 0
        self.log_dict = OrderedDict()
        if self.cri_pix:
            l_pix = self.cri_pix(self.output, self.gt)
            l_total += l_pix
            self.log_dict["l_pix"] = l_pix
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            if l_percep is not None:
                l_total += l_percep
                self.log_dict["l_percep"] = l_percep
            if l_style is not None:
                l_total += l_style
                self.log_dict["l_style"] = l_style
        l_total.backward()
        self.optimizer_g.step()
        return l_total.detach()


class TraiNNerModel(BaseModel):
    """``traiNNer/models/sr_model.py``: every ``train.losses`` entry must have ``type`` and
    ``loss_weight``, is skipped at weight 0, labelled ``l_g_<type lower-cased without 'loss'>``, built
    with ``build_loss(...).to(device, memory_format=channels_last, non_blocking=True)``; in
    ``optimize_parameters`` the output is computed and each loss called as ``loss(output, gt)`` inside
    ``torch.autocast``, and the model multiplies by ``abs(loss.loss_weight)`` (a dict return: each
    positive entry, logged as ``<label>_<key>``)."""

    registry: Registry

    def __init__(self, opt: Opt) -> None:
        super().__init__(opt)
        self.memory_format = torch.channels_last if opt.use_amp and opt.use_channels_last else torch.preserve_format
        self.losses = {}
        for loss in opt.train.losses:
            assert "type" in loss, "all losses must define type"
            assert "loss_weight" in loss, f"{loss['type']} must define loss_weight"
            if float(loss["loss_weight"]) != 0:
                label = "l_g_" + loss["type"].lower().replace("loss", "")
                self.losses[label] = build_loss(self.registry, loss).to(
                    self.device, memory_format=self.memory_format, non_blocking=True
                )

    def optimize_parameters(self, current_iter: int) -> torch.Tensor:
        self.log_dict = OrderedDict()
        self.optimizer_g.zero_grad()
        lq = self.lq.to(memory_format=self.memory_format)
        # traiNNer-redux: amp_dtype = bfloat16 if opt.amp_bf16 else float16 (its template's default)
        amp_dtype = torch.bfloat16 if getattr(self.opt, "amp_bf16", False) else torch.float16
        with torch.autocast(device_type=self.device.type, dtype=amp_dtype, enabled=self.opt.use_amp):
            self.output = self.net_g(lq)
            l_g_total = torch.tensor(0.0)
            for label, loss in self.losses.items():
                l_g_loss = loss(self.output, self.gt)
                if isinstance(l_g_loss, dict):
                    for sublabel, loss_val in l_g_loss.items():
                        if loss_val > 0:
                            weighted = loss_val * abs(loss.loss_weight)
                            l_g_total += weighted
                            self.log_dict[f"{label}_{sublabel}"] = weighted
                else:
                    weighted = l_g_loss * abs(loss.loss_weight)
                    l_g_total += weighted
                    self.log_dict[label] = weighted
        l_g_total.backward()
        self.optimizer_g.step()
        return l_g_total.detach()


#: neosr's fixed loss slots, in the order ``neosr/models/image.py`` sums them (those a user of ours fills).
NEOSR_SLOTS = ("pixel_opt", "mssim_opt", "fdl_opt", "ncc_opt", "perceptual_opt", "dists_opt", "ff_opt")


class NeosrImageModel(BaseModel):
    """``neosr/models/image.py`` (class ``image``): each slot of ``train`` built with ``build_loss``
    and ``.to(device, memory_format=torch.channels_last, non_blocking=True)``; in ``closure`` the
    output is clamped to [1/255, 1] (``clamp``, default on) and each slot called as ``cri(output, gt)``
    inside ``torch.autocast``, the values summed as returned into ``torch.zeros(1)``."""

    registry: Registry

    def __init__(self, opt: dict[str, Any]) -> None:
        super().__init__(opt)
        train = opt["train"]
        for slot in NEOSR_SLOTS:  # cri_pix, cri_mssim, ..., cri_perceptual, ...: None where unset
            cri = build_loss(self.registry, train[slot]).to(self.device, memory_format=torch.channels_last, non_blocking=True) if train.get(slot) else None
            setattr(self, self.attribute(slot), cri)

    @staticmethod
    def attribute(slot: str) -> str:
        return "cri_" + slot.replace("_opt", "").replace("pixel", "pix")

    def optimize_parameters(self, current_iter: int) -> torch.Tensor:
        self.log_dict = OrderedDict()
        self.optimizer_g.zero_grad()
        # neosr: amp_dtype = bfloat16 if opt["bfloat16"] else float16
        amp_dtype = torch.bfloat16 if self.opt.get("bfloat16", False) else torch.float16
        with torch.autocast(device_type=self.device.type, dtype=amp_dtype, enabled=self.opt["use_amp"]):
            self.output = torch.clamp(self.net_g(self.lq), 1 / 255, 1)
            l_g_total = torch.zeros(1)
            for slot in NEOSR_SLOTS:
                cri = getattr(self, self.attribute(slot))
                if not cri:
                    continue
                value = cri(self.output, self.gt)
                l_g_total += value
                self.log_dict["l_g_" + slot.replace("_opt", "")] = value
        l_g_total.backward()
        self.optimizer_g.step()
        return l_g_total.detach()


def install(name: str, monkeypatch: Any) -> types.SimpleNamespace:
    """Put the stand-in package ``name`` ('basicsr', 'traiNNer', 'neosr') into ``sys.modules``;
    return its registries and model class (the class ``build_model`` makes)."""
    losses = Registry("loss", lower=name == "traiNNer")
    models = Registry("model", lower=name == "traiNNer")
    model_cls = {"basicsr": BasicSRModel, "traiNNer": TraiNNerModel, "neosr": NeosrImageModel}[name]
    model_cls = type({"basicsr": "SRModel", "traiNNer": "SRModel", "neosr": "image"}[name], (model_cls,), {"registry": losses})
    registry_module = types.ModuleType(f"{name}.utils.registry")
    registry_module.LOSS_REGISTRY, registry_module.MODEL_REGISTRY = losses, models
    model_path = {"basicsr": "basicsr.models.sr_model", "traiNNer": "traiNNer.models", "neosr": "neosr.models.image"}[name]
    modules = {}
    for path in (f"{name}.utils.registry", model_path):  # each module and its parent packages
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    modules[f"{name}.utils.registry"].LOSS_REGISTRY = losses
    modules[f"{name}.utils.registry"].MODEL_REGISTRY = models
    model_module = modules[model_path]
    setattr(model_module, model_cls.__name__, model_cls)
    for module_name, module in modules.items():
        monkeypatch.setitem(sys.modules, module_name, module)
    for module_name in modules:  # parents expose their children as attributes, as real packages do
        parent, _, child = module_name.rpartition(".")
        if parent:
            monkeypatch.setattr(sys.modules[parent], child, sys.modules[module_name], raising=False)
    return types.SimpleNamespace(losses=losses, models=models, model_module=model_module, model=model_cls)
