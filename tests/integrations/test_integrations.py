"""The framework adapters (``contrastive_sr_losses.integrations``) against stand-ins reproducing the
calling conventions of BasicSR, traiNNer-redux and neosr (``tests/integrations/_frameworks.py``). The real BasicSR
runs in the integration step of ``.ci/run`` (``tests/integrations/real_frameworks/run_integration.py``)."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pytest
import torch
import torch.nn.functional as F

import contrastive_sr_losses.losses as core
import tests.integrations._frameworks as fw
from contrastive_sr_losses import GaussianHighPassLoss, PixelContrastiveLoss, RandomConvContrastiveLoss
from contrastive_sr_losses.functional import imresize
from contrastive_sr_losses.integrations import (
    adapters,
    basicsr,
    neosr,
    register_basicsr,
    register_neosr,
    register_traiNNer,
    traiNNer,
)
from contrastive_sr_losses.integrations.state import LOSS_STATE_KEY, load_loss_state, loss_state_path

TINY_PCL = {"channels": [8, 8, 16, 16], "strides": [1, 2, 1, 2], "layers": [0, 2]}
REGISTER = {"basicsr": register_basicsr, "traiNNer": register_traiNNer, "neosr": register_neosr}


def batch(seed: int = 0, n: int = 2, size: int = 16, scale: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, size, size, generator=g)
    return imresize(gt, 1 / scale).clamp(0, 1), gt


def test_importing_the_package_and_integrations_imports_no_framework():
    code = (
        "import sys, contrastive_sr_losses\n"
        "assert 'contrastive_sr_losses.integrations' not in sys.modules\n"
        "import contrastive_sr_losses.integrations.basicsr, contrastive_sr_losses.integrations.traiNNer\n"
        "import contrastive_sr_losses.integrations.neosr\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('basicsr', 'traiNNer', 'neosr', 'torchvision')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_loss_of_the_library_has_an_adapter_under_a_name_unique_ignoring_case():
    wrapped = {c.__name__ for c in (PixelContrastiveLoss, GaussianHighPassLoss, RandomConvContrastiveLoss,
                                    core.RatioContrastiveLoss, core.FrequencyContrastiveLoss, core.PCLTrainer,
                                    core.CombinedLoss)}
    assert {n for n in core.__all__ if n[0].isupper()} == wrapped  # a new loss needs an adapter too
    names = list(adapters.ADAPTERS)
    assert len({n.lower() for n in names}) == len(names) == 7
    for module in (basicsr, traiNNer, neosr):
        assert all(getattr(module, n).__name__ == n and getattr(module, n).__module__ == module.__name__ for n in names)


@pytest.mark.parametrize("name", ["basicsr", "traiNNer", "neosr"])
def test_registration_is_idempotent_and_refuses_a_foreign_duplicate(name, monkeypatch):
    stand_in = fw.install(name, monkeypatch)
    first = REGISTER[name]()
    second = REGISTER[name]()
    assert first == second
    for n in adapters.ADAPTERS:
        assert stand_in.losses.get(n.lower() if name == "traiNNer" else n) is first[n]
    other = fw.install(name, monkeypatch)
    other.losses.register(type("CSRPCLLoss", (), {}))
    with pytest.raises(ValueError, match="CSRPCLLoss: the .* registry already holds another object"):
        REGISTER[name]()


# ------------------------------------------------------------------------------------------------
# the weight is applied exactly once, in each framework's loop
# ------------------------------------------------------------------------------------------------
def core_value(loss_type: str, output: torch.Tensor, gt: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """What the library's own module computes for the adapter ``loss_type`` with default options."""
    with torch.no_grad():
        if loss_type == "CSRPixelContrastiveLoss":
            return PixelContrastiveLoss(region=8)(output, gt)
        if loss_type == "CSRGaussianHighPassLoss":
            return GaussianHighPassLoss()(output, gt)
        return RandomConvContrastiveLoss()(output, gt, lr=imresize(gt, 1 / 2))


LOSS_OPTS = {
    "CSRPixelContrastiveLoss": {"region": 8},
    "CSRGaussianHighPassLoss": {},
    "CSRRandomConvContrastiveLoss": {"scale": 2},
}


@pytest.mark.parametrize("loss_type", list(LOSS_OPTS))
def test_basicsr_perceptual_slot_weighs_once_and_returns_the_tuple(loss_type, monkeypatch):
    stand_in = fw.install("basicsr", monkeypatch)
    register_basicsr()
    opt = {"train": {"pixel_opt": None, "perceptual_opt": {"type": loss_type, "loss_weight": 0.25, **LOSS_OPTS[loss_type]}}}
    model = stand_in.models.get("CSRSRModel")(opt)
    lq, gt = batch()
    model.feed_data(lq, gt)
    output = model.net_g(lq).detach()
    total = model.optimize_parameters(1)
    assert set(model.log_dict) == {"l_percep"}
    torch.testing.assert_close(total, 0.25 * core_value(loss_type, output, gt, lq), rtol=1e-5, atol=1e-7)


def test_basicsr_pixel_slot_returns_a_tensor_and_both_slots_add_up(monkeypatch):
    stand_in = fw.install("basicsr", monkeypatch)
    register_basicsr()
    opt = {"train": {"pixel_opt": {"type": "CSRGaussianHighPassLoss", "loss_weight": 0.6, "slot": "pixel"},
                     "perceptual_opt": {"type": "CSRPixelContrastiveLoss", "loss_weight": 0.1}}}
    model = stand_in.model(opt)  # plain SRModel: the losses do not need CSRSRModel
    lq, gt = batch(1)
    model.feed_data(lq, gt)
    output = model.net_g(lq).detach()
    total = model.optimize_parameters(1)
    expected = 0.6 * GaussianHighPassLoss()(output, gt) + 0.1 * PixelContrastiveLoss()(output, gt)
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="slot must be one of"):
        basicsr.CSRPixelContrastiveLoss(slot="gan")


BEST_TERMS = {"l1": 1.0, "pixel_contrastive": 0.1, "high_pass": [1.5, {"sigma": 1.0}]}  # as a YAML / TOML list


def best_objective(output: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output, gt) + 0.1 * PixelContrastiveLoss()(output, gt) + 1.5 * GaussianHighPassLoss()(output, gt)


@pytest.mark.parametrize("framework", ["basicsr", "traiNNer", "neosr"])
def test_the_study_best_objective_fits_one_slot_of_each_framework(framework, monkeypatch):
    stand_in = fw.install(framework, monkeypatch)
    REGISTER[framework]()
    lq, gt = batch(2)
    if framework == "basicsr":
        opt = {"train": {"pixel_opt": {"type": "CSRCombinedLoss", "slot": "pixel", "loss_weight": 2.0, "terms": BEST_TERMS},
                         "perceptual_opt": None}}
        model = stand_in.model(opt)
        key = "l_pix"
    elif framework == "traiNNer":
        opt = fw.Opt(use_amp=False, use_channels_last=False, path=None,
                     train=fw.Opt(losses=[{"type": "CSRCombinedLoss", "loss_weight": 2.0, "terms": BEST_TERMS}]))
        model = stand_in.model_module.SRModel(opt)
        key = "l_g_csrcombined"
    else:
        opt = {"use_amp": False, "train": {"pixel_opt": {"type": "CSRCombinedLoss", "loss_weight": 2.0, "terms": BEST_TERMS}}}
        model = stand_in.models.get("csr_image")(opt)
        key = "l_g_pixel"
    model.feed_data(lq, gt)
    output = model.net_g(lq).detach()
    if framework == "neosr":
        output = torch.clamp(output, 1 / 255, 1)
    total = model.optimize_parameters(1)
    torch.testing.assert_close(model.log_dict[key].float(), 2.0 * best_objective(output, gt), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(total)


def test_combined_adapter_refuses_pcl_and_other_reductions():
    with pytest.raises(ValueError, match="use CSRPCLLoss for the pcl term"):
        basicsr.CSRCombinedLoss(terms={"l1": 1.0, "pcl": 0.01})
    with pytest.raises(ValueError, match="only 'mean' applies"):
        basicsr.CSRCombinedLoss(terms={"l1": 1.0}, reduction="sum")
    with pytest.raises(KeyError, match="unknown loss 'pixel'"):
        neosr.CSRCombinedLoss(terms={"pixel": 1.0})
    lq, gt = batch(1)
    loss = traiNNer.CSRCombinedLoss(terms={"l1": 1.0, "random_conv": 0.001}, scale=2)
    expected = F.l1_loss(gt * 0.9, gt) + 0.001 * RandomConvContrastiveLoss()(gt * 0.9, gt, lr=lq)
    torch.testing.assert_close(loss(gt * 0.9, gt, lq=lq), expected)


@pytest.mark.parametrize("amp", [False, True])
def test_traiNNer_model_weighs_once_under_autocast_and_channels_last(amp, monkeypatch):
    stand_in = fw.install("traiNNer", monkeypatch)
    register_traiNNer()
    losses = [{"type": t.lower() if i == 0 else t, "loss_weight": w, **LOSS_OPTS[t]}  # any case finds it
              for i, (t, w) in enumerate(zip(LOSS_OPTS, (0.5, 2.0, 0.1)))]
    opt = fw.Opt(use_amp=amp, use_channels_last=True, train=fw.Opt(losses=losses), path=None)
    model = stand_in.model_module.SRModel(opt)
    lq, gt = batch(2)
    model.feed_data(lq, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        output = model.net_g(lq.to(memory_format=torch.channels_last))
    total = model.optimize_parameters(1)
    assert set(model.log_dict) == {"l_g_csrpixelcontrastive", "l_g_csrgaussianhighpass", "l_g_csrrandomconvcontrastive"}
    for label, t, w in zip(model.log_dict, LOSS_OPTS, (0.5, 2.0, 0.1)):
        assert model.losses[label].loss_weight == w
        # unweighted from the loss, weighted by the model: exactly once
        tol = dict(rtol=2e-2, atol=1e-3) if amp else dict(rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(model.log_dict[label].float(), w * core_value(t, output.float(), gt, lq), **tol)
    assert torch.isfinite(total)


def test_neosr_slots_weigh_once_under_autocast(monkeypatch):
    stand_in = fw.install("neosr", monkeypatch)
    register_neosr()
    opt = {"use_amp": True, "train": {"pixel_opt": {"type": "CSRGaussianHighPassLoss", "loss_weight": 0.6},
                                      "perceptual_opt": {"type": "CSRPixelContrastiveLoss", "loss_weight": 0.1}}}
    model = stand_in.models.get("csr_image")(opt)
    lq, gt = batch(3)
    model.feed_data(lq, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = torch.clamp(model.net_g(lq), 1 / 255, 1)
    model.optimize_parameters(1)
    torch.testing.assert_close(model.log_dict["l_g_pixel"], 0.6 * GaussianHighPassLoss()(output.float(), gt), rtol=2e-2, atol=1e-4)
    torch.testing.assert_close(model.log_dict["l_g_perceptual"], 0.1 * PixelContrastiveLoss()(output.float(), gt), rtol=2e-2, atol=1e-4)
    with pytest.raises(ValueError, match="slot: neosr has no loss slots"):
        neosr.CSRPixelContrastiveLoss(slot="pixel")


# ------------------------------------------------------------------------------------------------
# forward signature, the LR image of the ratio losses
# ------------------------------------------------------------------------------------------------
def test_ratio_negative_comes_from_lq_when_passed_else_from_the_target_downscaled():
    lq, gt = batch(4, scale=2)
    sr = torch.rand_like(gt)
    loss = neosr.CSRRandomConvContrastiveLoss(loss_weight=1.0, scale=2)
    other_lq = torch.rand_like(lq)
    ref = RandomConvContrastiveLoss()
    torch.testing.assert_close(loss(sr, gt, lq=other_lq), ref(sr, gt, lr=other_lq))
    torch.testing.assert_close(loss(sr, gt), ref(sr, gt, lr=imresize(gt, 0.5)))
    assert not torch.allclose(loss(sr, gt), loss(sr, gt, lq=other_lq))
    with pytest.raises(ValueError, match="scale: CSRRandomConvContrastiveLoss needs the LR image"):
        neosr.CSRRandomConvContrastiveLoss()(sr, gt)
    with pytest.raises(ValueError, match="scale must be >= 2"):
        neosr.CSRRandomConvContrastiveLoss(scale=1)
    vgg = basicsr.CSRRatioContrastiveLoss(loss_weight=2.0, scale=2, vgg_weights=None, slot="pixel")
    torch.testing.assert_close(vgg(sr, gt, None, lq), 2.0 * vgg.loss(sr, gt, lr=lq))


def test_forward_refuses_elementwise_weights_and_bad_loss_weights():
    lq, gt = batch(5)
    with pytest.raises(ValueError, match="weight: element-wise loss weights are not supported"):
        neosr.CSRPixelContrastiveLoss()(gt, gt, torch.ones_like(gt))
    with pytest.raises(TypeError, match="loss_weight must be a number"):
        traiNNer.CSRPixelContrastiveLoss(loss_weight="0.1")
    with pytest.raises(ValueError, match="reduction must be one of"):
        traiNNer.CSRGaussianHighPassLoss(loss_weight=1, reduction="avg")


def test_frequency_contrastive_reads_a_frozen_discriminator_file(tmp_path):
    from contrastive_sr_losses.embeddings import WaveletDiscriminator

    torch.manual_seed(0)
    disc = WaveletDiscriminator(channels=TINY_PCL["channels"], strides=TINY_PCL["strides"])
    torch.save(disc.state_dict(), tmp_path / "disc.pth")
    loss = basicsr.CSRFrequencyContrastiveLoss(loss_weight=0.5, slot="pixel", discriminator_weights=str(tmp_path / "disc.pth"),
                                               channels=TINY_PCL["channels"], strides=TINY_PCL["strides"], layers=TINY_PCL["layers"])
    assert not any(p.requires_grad for p in loss.parameters())
    lq, gt = batch(6)
    sr = torch.rand_like(gt, requires_grad=True)
    ref = core.FrequencyContrastiveLoss(disc.requires_grad_(False), layers=TINY_PCL["layers"])
    torch.manual_seed(1)
    value = loss(sr, gt)
    torch.manual_seed(1)
    torch.testing.assert_close(value, 0.5 * ref(sr, gt))
    value.backward()
    assert sr.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------
# PCL: the discriminator trains in the loop and its state rides in the training state
# ------------------------------------------------------------------------------------------------
def pcl_opt(name: str, tmp_path, weight: float = 1.0, amp: bool = False, bf16: bool = True):
    loss = {"type": "CSRPCLLoss", "loss_weight": weight, **TINY_PCL}
    if name == "traiNNer":
        return fw.Opt(use_amp=amp, amp_bf16=bf16, use_channels_last=True, train=fw.Opt(losses=[loss]),
                      path=fw.Opt(training_states=str(tmp_path)), rank=0)
    return {"use_amp": amp, "bfloat16": bf16, "rank": 0, "path": {"training_states": str(tmp_path)},
            "train": {"perceptual_opt": loss}}


def build(name: str, stand_in: types.SimpleNamespace, opt):
    if name == "traiNNer":
        return stand_in.model_module.SRModel(opt)
    return stand_in.models.get({"basicsr": "CSRSRModel", "neosr": "csr_image"}[name])(opt)


def pcl_of(model):
    (loss,) = [v for v in (list(vars(model).values()) + list(getattr(model, "losses", {}).values()))
               if isinstance(v, adapters.PCLAdapter)][:1]
    return loss


@pytest.mark.parametrize("name", ["basicsr", "traiNNer", "neosr"])
def test_pcl_state_is_saved_in_the_training_state_and_resumed(name, tmp_path, monkeypatch):
    stand_in = fw.install(name, monkeypatch)
    REGISTER[name]()
    torch.manual_seed(0)
    model = build(name, stand_in, pcl_opt(name, tmp_path))
    for it in range(1, 4):
        model.feed_data(*batch(it))
        model.optimize_parameters(it)
    model.save_training_state(epoch=0, current_iter=3)
    state = torch.load(tmp_path / "3.state", weights_only=False)  # the framework's own file, untouched
    assert len(state["optimizers"]) == 1 and LOSS_STATE_KEY not in state
    ours = load_loss_state(tmp_path / f"3.state.{LOSS_STATE_KEY}")  # weights_only=True
    assert list(ours.values())[0]["steps"] == 3

    torch.manual_seed(123)  # a fresh discriminator, then the framework's resume
    resumed = build(name, stand_in, pcl_opt(name, tmp_path))
    before, after = pcl_of(model), pcl_of(resumed)
    assert not torch.equal(next(before.parameters()), next(after.parameters()))
    resumed.resume_training(state)
    assert after.trainer.steps == 3
    for p, q in zip(before.trainer.discriminator.state_dict().values(), after.trainer.discriminator.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert after.trainer.optimizer.state_dict()["state"][0]["step"] == before.trainer.optimizer.state_dict()["state"][0]["step"]
    resumed.feed_data(*batch(9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a saving model type: no warning
        resumed.optimize_parameters(4)
    assert after.trainer.steps == 4


def test_pcl_weight_is_applied_once_and_the_discriminator_survives_channels_last(tmp_path, monkeypatch):
    stand_in = fw.install("traiNNer", monkeypatch)
    register_traiNNer()
    opt = pcl_opt("traiNNer", tmp_path, weight=3.0, amp=True)  # autocast bf16 + channels_last
    torch.manual_seed(0)
    model = build("traiNNer", stand_in, opt)
    pcl = pcl_of(model)
    conv = next(p for p in pcl.loss.discriminator.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert pcl.trainer.optimizer.param_groups[0]["params"][0] is next(pcl.loss.discriminator.parameters())
    first = next(pcl.loss.discriminator.parameters()).detach().clone()
    returned = []
    pcl.register_forward_hook(lambda module, args, out: returned.append(out.detach()))
    model.feed_data(*batch(0))
    model.optimize_parameters(1)
    assert not torch.equal(first, next(pcl.loss.discriminator.parameters()))  # the discriminator stepped
    torch.testing.assert_close(model.log_dict["l_g_csrpcl"].detach(), 3.0 * returned[0])  # the model weighs, once
    assert torch.isfinite(returned[0]) and torch.isfinite(pcl.trainer.last_discriminator_loss)
    pcl.eval()
    steps = pcl.trainer.steps
    value = pcl(model.output.detach(), model.gt)
    assert pcl.trainer.steps == steps  # eval mode: the loss only, no discriminator step
    assert value.ndim == 0


@pytest.mark.parametrize("name", ["basicsr", "traiNNer", "neosr"])
def test_pcl_trains_under_float16_autocast_through_every_adapter(name, tmp_path, monkeypatch):
    # traiNNer-redux's template default is float16 autocast and no adapter can hand PCLTrainer a
    # GradScaler: the discriminator step then runs in float32 (it would underflow in float16)
    stand_in = fw.install(name, monkeypatch)
    REGISTER[name]()
    torch.manual_seed(0)
    if name == "basicsr":  # BasicSR has no AMP of its own: call its loss as a user's autocast would
        model = build(name, stand_in, pcl_opt(name, tmp_path))
        pcl = pcl_of(model)
        lq, gt = batch(0)
        with torch.autocast("cpu", dtype=torch.float16):
            sr = model.net_g(lq)
            value, _ = pcl(sr, gt)  # BasicSR's perceptual_opt slot returns (percep, style)
        value.backward()
        assert sr.dtype == torch.float16 and model.net_g[0].weight.grad is not None
    else:
        model = build(name, stand_in, pcl_opt(name, tmp_path, amp=True, bf16=False))
        pcl = pcl_of(model)
        model.feed_data(*batch(0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            total = model.optimize_parameters(1)
        assert model.output.dtype == torch.float16 and torch.isfinite(total).all()
    assert pcl.trainer.steps == 1 and pcl.trainer.skipped_steps == 0
    assert torch.isfinite(pcl.trainer.last_discriminator_loss)
    assert pcl.trainer.last_discriminator_loss.dtype == torch.float32  # the step ran in float32
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in pcl.trainer.discriminator.parameters())


def test_pcl_warns_once_where_the_model_type_would_not_save_its_state(monkeypatch):
    stand_in = fw.install("basicsr", monkeypatch)
    register_basicsr()
    model = stand_in.model({"train": {"perceptual_opt": {"type": "CSRPCLLoss", **TINY_PCL}}})  # plain SRModel
    with pytest.warns(UserWarning, match="use model_type: CSRSRModel"):
        model.feed_data(*batch(0))
        model.optimize_parameters(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.optimize_parameters(2)


def test_resume_from_a_state_without_loss_state_warns_and_keeps_going(tmp_path, monkeypatch):
    stand_in = fw.install("neosr", monkeypatch)
    register_neosr()
    model = build("neosr", stand_in, pcl_opt("neosr", tmp_path))
    plain = {"epoch": 0, "iter": 5, "optimizers": [model.optimizer_g.state_dict()], "schedulers": [model.schedulers[0].state_dict()]}
    with pytest.warns(UserWarning, match="holds no state for cri_perceptual"):
        model.resume_training(plain)


# ------------------------------------------------------------------------------------------------
# the framework's resume file is never rewritten; our file beside it is loaded safely
# ------------------------------------------------------------------------------------------------
def _trained_pcl_model(name: str, tmp_path, monkeypatch):
    stand_in = fw.install(name, monkeypatch)
    REGISTER[name]()
    torch.manual_seed(0)
    model = build(name, stand_in, pcl_opt(name, tmp_path))
    model.feed_data(*batch(1))
    model.optimize_parameters(1)
    return stand_in, model


@pytest.mark.parametrize("name", ["basicsr", "traiNNer", "neosr"])
def test_a_failed_loss_state_write_leaves_the_framework_state_byte_identical(name, tmp_path, monkeypatch):
    _, model = _trained_pcl_model(name, tmp_path, monkeypatch)
    real, seen = torch.save, {}

    def full_disk(obj, f, *args, **kwargs):  # ours fails midway (disk full); the framework's writes
        if LOSS_STATE_KEY in str(getattr(f, "name", f)):
            seen["framework"] = (tmp_path / "7.state").read_bytes()
            f.write(b"half of the losses' state")
            raise OSError(28, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.save_training_state(epoch=0, current_iter=7)
    assert (tmp_path / "7.state").read_bytes() == seen["framework"]  # as the framework wrote it
    monkeypatch.setattr(torch, "save", real)
    torch.load(tmp_path / "7.state", weights_only=False)  # and still readable
    assert not loss_state_path(tmp_path / "7.state").exists() and not list(tmp_path.glob(".*tmp*"))


def test_an_old_state_with_the_losses_inside_the_framework_file_still_resumes(tmp_path, monkeypatch):
    stand_in, model = _trained_pcl_model("basicsr", tmp_path, monkeypatch)
    old = {"epoch": 0, "iter": 1, "optimizers": [o.state_dict() for o in model.optimizers],
           "schedulers": [s.state_dict() for s in model.schedulers],
           LOSS_STATE_KEY: {"cri_perceptual": pcl_of(model).training_state()}}
    torch.manual_seed(5)
    resumed = build("basicsr", stand_in, pcl_opt("basicsr", tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.resume_training(old)
    assert pcl_of(resumed).trainer.steps == 1
    for p, q in zip(pcl_of(model).parameters(), pcl_of(resumed).parameters()):
        assert torch.equal(p, q)


class _Payload:
    """Unpickling it would create the file ``target``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("name", ["basicsr", "traiNNer", "neosr"])
def test_a_crafted_loss_state_file_is_refused_and_runs_nothing(name, tmp_path, monkeypatch):
    stand_in, model = _trained_pcl_model(name, tmp_path, monkeypatch)
    model.save_training_state(epoch=0, current_iter=2)
    target = tmp_path / "pwned"
    ours = loss_state_path(tmp_path / "2.state")
    torch.save({"cri_perceptual": _Payload(target)}, ours)
    framework_state = torch.load(tmp_path / "2.state", weights_only=False)
    resumed = build(name, stand_in, pcl_opt(name, tmp_path))
    with pytest.raises(ValueError, match="refused") as err:
        resumed.resume_training(framework_state)
    assert str(ours) in str(err.value) and "\n" not in str(err.value)
    assert not target.exists()


def test_the_loss_state_is_found_beside_an_explicit_resume_state(tmp_path, monkeypatch):
    stand_in, model = _trained_pcl_model("basicsr", tmp_path, monkeypatch)
    model.save_training_state(epoch=0, current_iter=4)
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    for f in ("4.state", f"4.state.{LOSS_STATE_KEY}"):
        (tmp_path / f).rename(elsewhere / f)
    opt = pcl_opt("basicsr", tmp_path / "new")
    opt["path"]["resume_state"] = str(elsewhere / "4.state")
    resumed = build("basicsr", stand_in, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.resume_training(torch.load(elsewhere / "4.state", weights_only=False))
    assert pcl_of(resumed).trainer.steps == 1


# ------------------------------------------------------------------------------------------------
# every config value is checked when the loss is built (issue 22)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [float("nan"), float("inf"), 1e39, -1.0])
@pytest.mark.parametrize("name", ["CSRPixelContrastiveLoss", "CSRGaussianHighPassLoss"])
def test_loss_weight_must_be_finite_and_not_negative(name, weight):
    with pytest.raises(ValueError, match=r"loss_weight must be a finite number in \[0, 1e\+06\]"):
        getattr(basicsr, name)(loss_weight=weight)


def test_loss_weight_zero_computes_the_term_but_adds_nothing():
    loss = basicsr.CSRGaussianHighPassLoss(loss_weight=0.0, slot="pixel")
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    value = loss(sr, torch.rand(1, 3, 16, 16))
    assert value.item() == 0.0
    value.backward()
    assert sr.grad.abs().sum().item() == 0.0


@pytest.mark.parametrize("option, make", [
    ("normalize", lambda v: basicsr.CSRRandomConvContrastiveLoss(scale=2, normalize=v)),
    ("lr_negative", lambda v: neosr.CSRPCLLoss(lr_negative=v, **TINY_PCL)),
])
def test_a_quoted_boolean_is_an_error_naming_the_option(option, make):
    for value in ("false", "true", 0, 1):
        with pytest.raises(TypeError, match=f"{option} must be a bool"):
            make(value)
    make(False)


@pytest.mark.parametrize("betas, error", [([0.9], ValueError), ([0.9, 0.999, 0.5], ValueError), ("ab", TypeError),
                                          ([2.0, 0.999], ValueError), (None, TypeError)])
def test_disc_betas_must_be_a_pair_in_0_1(betas, error):
    with pytest.raises(error, match="disc_betas must be"):
        neosr.CSRPCLLoss(disc_betas=betas, **TINY_PCL)


def test_discriminator_weights_are_required_and_must_fit(tmp_path):
    from contrastive_sr_losses.embeddings import WaveletDiscriminator

    for value in (None, 3, True):  # `discriminator_weights: ~` in YAML is None
        with pytest.raises(TypeError, match="discriminator_weights must be the path of a WaveletDiscriminator state dict"):
            basicsr.CSRFrequencyContrastiveLoss(discriminator_weights=value)
    with pytest.raises(FileNotFoundError, match="discriminator_weights: no such file"):
        basicsr.CSRFrequencyContrastiveLoss(discriminator_weights=str(tmp_path / "missing.pth"))
    torch.save(WaveletDiscriminator().state_dict(), tmp_path / "big.pth")
    with pytest.raises(ValueError, match=r"big.pth: not a state dict of a WaveletDiscriminator with channels=\[8, 8, 16, 16\]"):
        basicsr.CSRFrequencyContrastiveLoss(discriminator_weights=str(tmp_path / "big.pth"), **TINY_PCL)


def test_vgg_weights_must_be_a_path_imagenet_or_none():
    with pytest.raises(TypeError, match="vgg_weights must be 'imagenet', a path or None"):
        basicsr.CSRRatioContrastiveLoss(scale=2, vgg_weights=5)


def test_a_null_loss_state_in_a_resume_state_is_an_error_naming_it(tmp_path, monkeypatch):
    stand_in, model = _trained_pcl_model("basicsr", tmp_path, monkeypatch)
    state = {"epoch": 0, "iter": 1, "optimizers": [o.state_dict() for o in model.optimizers],
             "schedulers": [s.state_dict() for s in model.schedulers], LOSS_STATE_KEY: {"cri_perceptual": None}}
    with pytest.raises(TypeError, match="state must be a dict from PCLTrainer.state_dict"):
        model.resume_training(state)


def test_our_state_files_follow_the_framework_files_that_are_pruned(tmp_path, monkeypatch):
    _, model = _trained_pcl_model("neosr", tmp_path, monkeypatch)
    model.save_training_state(epoch=0, current_iter=1)
    model.save_training_state(epoch=0, current_iter=2)
    (tmp_path / "1.state").unlink()  # the framework keeps only its last state
    model.save_training_state(epoch=0, current_iter=3)
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "2.state", f"2.state.{LOSS_STATE_KEY}", "3.state", f"3.state.{LOSS_STATE_KEY}"]
