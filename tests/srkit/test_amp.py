"""Tests of the first-step AMP check of examples/train.py (``srkit/amp.py``) and of PCLTrainer's
float16 guard, on the CPU (``torch.autocast('cpu')`` has bfloat16 and float16), with simulated
disagreements between the autocast and float32 paths."""

from __future__ import annotations

import doctest

import pytest
import torch

from srkit import amp
from srkit.losses import CompositeLoss
from srkit.runtime import UsageError, build_model

SPEC = "l1+0.1*pixel_contrastive(region=4)+pcl(disc_channels=(8,8,16,16),disc_strides=(1,2,1,2),layers=(0,2))"


def _setup(spec=SPEC):
    torch.manual_seed(0)
    model = build_model("edsr_baseline", 2, {"n_resblocks": 1, "n_feats": 8})
    criterion = CompositeLoss(spec, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    lr = torch.rand(2, 3, 12, 12, generator=g)
    hr = torch.rand(2, 3, 24, 24, generator=g)
    return model, criterion, lr, hr


class _WrongUnderAutocast(torch.nn.Module):
    """The network, with its output changed only under CPU autocast: a broken low-precision path."""

    def __init__(self, model, change):
        super().__init__()
        self.model, self.change = model, change

    def forward(self, x):
        out = self.model(x)
        return self.change(out) if torch.is_autocast_enabled("cpu") else out


def _state(model, criterion):
    disc = criterion.trainers["pcl"].discriminator
    return {
        "rng": torch.get_rng_state(),
        "weights": {k: v.clone() for k, v in {**model.state_dict(), **disc.state_dict()}.items()},
        "training": [m.training for m in (*model.modules(), *criterion.modules())],
        "steps": criterion.trainers["pcl"].steps,
    }


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_agreeing_paths_pass_and_change_nothing(dtype):
    model, criterion, lr, hr = _setup()
    model.train()
    criterion.train()
    before = _state(model, criterion)
    line = amp.check_amp_first_step(model, criterion, lr, hr, dtype)
    name = amp.AMP_NAMES[dtype]
    assert line.startswith(f"amp check: {name} autocast agrees with float32 on the first batch")
    assert "compared: total loss, l1 loss, pixel_contrastive loss, pcl loss, pcl discriminator (eq 7)" in line
    after = _state(model, criterion)
    assert torch.equal(before["rng"], after["rng"])  # the run's random draws are not shifted
    assert all(torch.equal(before["weights"][k], after["weights"][k]) for k in before["weights"])  # BN stats too
    assert before["training"] == after["training"] and after["steps"] == 0  # no discriminator step
    assert all(p.grad is None for p in model.parameters())


def test_disagreement_stops_the_run_with_one_line():
    model, criterion, lr, hr = _setup()
    wrong = _WrongUnderAutocast(model, lambda out: out + 0.5)
    with pytest.raises(UsageError) as info:
        amp.check_amp_first_step(wrong, criterion, lr, hr, torch.bfloat16)
    message = str(info.value)
    assert message.startswith("--amp bf16: the first batch's total loss is ")
    assert "under autocast but" in message and "in float32 (relative difference" in message
    assert "train with --amp none" in message and "\n" not in message


def test_small_disagreement_in_one_term_is_caught():
    model, criterion, lr, _ = _setup("l1")
    with torch.no_grad():
        hr = model.eval()(lr) + 0.1  # L1 = 0.1 in float32
    assert "agrees" in amp.check_amp_first_step(model, criterion, lr, hr, torch.float16)
    wrong = _WrongUnderAutocast(model, lambda out: out + 0.005)  # L1 moves by 5 %
    with pytest.raises(UsageError, match=r"--amp fp16: the first batch's total loss is .*> 0.01\)"):
        amp.check_amp_first_step(wrong, criterion, lr, hr, torch.float16)


def test_non_finite_under_autocast_stops_the_run():
    model, criterion, lr, hr = _setup("l1")
    wrong = _WrongUnderAutocast(model, lambda out: out * float("inf"))
    with pytest.raises(UsageError, match=r"--amp bf16: the first batch's total loss is inf under autocast but [0-9.]+ in float32"):
        amp.check_amp_first_step(wrong, criterion, lr, hr, torch.bfloat16)


def test_docstring_example():
    result = doctest.testmod(amp, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_pcl_trainer_runs_its_step_in_float32_under_float16_autocast_without_a_grad_scaler():
    _, criterion, _, hr = _setup()
    trainer = criterion.trainers["pcl"]
    sr = hr + 0.1
    disc = trainer.discriminator
    seen = []
    hook = disc.register_forward_hook(lambda m, args, out: seen.append(args[0].dtype))
    with torch.autocast("cpu", dtype=torch.float16):
        trainer.discriminator_step(sr, hr)
    assert trainer.steps == 1 and trainer.last_discriminator_loss.dtype == torch.float32
    # the same step outside autocast gives the same discriminator (float32 both times)
    _, again, _, _ = _setup()
    other = again.trainers["pcl"]
    other.discriminator_step(sr, hr)
    for p, q in zip(disc.parameters(), other.discriminator.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 has float32's range: it stays in autocast
        trainer(sr, hr)
    hook.remove()
    assert trainer.steps == 2 and seen[:2] == [torch.float32, torch.float32]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("flag", ["bf16", "fp16"])
def test_train_checks_amp_on_the_first_cuda_step(tmp_path, flag):
    np = pytest.importorskip("numpy")
    image = pytest.importorskip("PIL.Image")
    import srkit.train as train

    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    out = tmp_path / "run"
    train.main([
        "--arch", "edsr_baseline", "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2", "--train", str(folder),
        "--patch", "8", "--batch", "2", "--workers", "0", "--iters", "2", "--val-every", "0", "--no-progress",
        "--loss", SPEC, "--amp", flag, "--device", "cuda", "--out", str(out),
    ])  # fmt: skip
    assert f"amp check: {flag} autocast agrees with float32 on the first batch" in (out / "train.log").read_text()
