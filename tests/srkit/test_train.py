"""Tests of the training kit srkit: srkit.train (examples/train.py) and its modules (tiny models on tiny generated images)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
pytest.importorskip("tqdm")
from PIL import Image  # noqa: E402

import srkit.train as train  # noqa: E402
from contrastive_sr_losses.archs import TINY_OVERRIDES  # noqa: E402
from contrastive_sr_losses.functional import imresize, quantize  # noqa: E402
from srkit.data import StreamBatchSampler, load_pairs, make_lr  # noqa: E402
from srkit.losses import LOSSES, RECIPES, CompositeLoss, parse_loss_spec  # noqa: E402
from srkit.runtime import UsageError, parse_kwargs, run_cli  # noqa: E402
from tests._paths import EXAMPLES  # noqa: E402


def _image(seed: int, h: int, w: int, gray: bool = False) -> np.ndarray:
    """Smooth structure plus a little noise, so that an SR network has something to learn."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.3 * np.sin(2 * np.pi * (3 + seed) * x + 5 * y) * np.cos(2 * np.pi * 2 * y)
    img = np.stack([base, base[::-1], 1 - base], -1) + 0.05 * rng.standard_normal((h, w, 3))
    img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return img[..., 0] if gray else img


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    (root / "train").mkdir()
    (root / "test").mkdir()
    for i in range(4):
        Image.fromarray(_image(i, 40, 44)).save(root / "train" / f"im{i}.png")
    Image.fromarray(_image(9, 30, 34, gray=True)).save(root / "test" / "gray.png")  # grayscale: converted
    Image.fromarray(_image(8, 29, 33)).save(root / "test" / "odd.png")  # not a multiple of the scale
    return {"train": root / "train", "test": root / "test", "root": root}


def _args(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "--arch", "edsr_baseline", "--arch-kwargs", "n_resblocks=1,n_feats=8", "--scale", "2",
        "--train", str(data["train"]), "--patch", "8", "--batch", "4", "--workers", "0", "--lr", "1e-3",
        "--val-every", "0", "--checkpoint-every", "3", "--log-every", "2", "--no-progress", "--threads", "1",
        "--out", str(out), *extra,
    ]


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------- smoke


def test_train_smoke_writes_checkpoint_log_history_and_plot(data, tmp_path):
    out = tmp_path / "run"
    result = train.main(_args(data, out, "--iters", "4", "--loss", "l1+0.1*pixel_contrastive", "--test", str(data["test"]), "--val-every", "2"))
    assert result["iteration"] == 4
    ckpt = _ckpt(out / "last.pt")
    assert ckpt["iteration"] == 4 and ckpt["arch"] == "edsr_baseline" and ckpt["scale"] == 2
    assert ckpt["loss"] == "1*l1+0.1*pixel_contrastive"
    assert {"model", "optimizer", "scheduler", "criterion", "criterion_trainers", "rng", "history"} <= set(ckpt)
    history = json.loads((out / "history.json").read_text())
    assert [v["iteration"] for v in history["validation"]] == [2, 4]
    assert all(np.isfinite(v["sets"]["test"]["psnr"]) for v in history["validation"])
    assert [t["iteration"] for t in history["train"]] == [2, 4]
    assert {"total", "l1", "pixel_contrastive", "lr"} <= set(history["train"][0])
    log = (out / "train.log").read_text()
    assert "[val 4] test" in log and "bicubic: test" in log
    assert 10 < result["bicubic"]["test"]["psnr"] < 60
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "val_psnr.png").stat().st_size > 1000


def test_resume_continues_exactly(data, tmp_path):
    train.main(_args(data, tmp_path / "full", "--iters", "6", "--loss", "l1+0.1*pixel_contrastive"))
    train.main(_args(data, tmp_path / "part", "--iters", "3", "--loss", "l1+0.1*pixel_contrastive"))
    train.main(_args(data, tmp_path / "part", "--iters", "6", "--loss", "l1+0.1*pixel_contrastive", "--resume"))
    full, part = _ckpt(tmp_path / "full" / "last.pt"), _ckpt(tmp_path / "part" / "last.pt")
    assert part["iteration"] == 6
    assert _same_weights(full["model"], part["model"])
    assert torch.equal(full["optimizer"]["state"][0]["exp_avg"], part["optimizer"]["state"][0]["exp_avg"])
    assert full["history"]["train"][-1] == part["history"]["train"][-1]  # the same logged losses at the end
    # and training really changed the weights
    fresh = _ckpt(tmp_path / "part" / "last.pt")["model"]
    train.main(_args(data, tmp_path / "one", "--iters", "1"))
    assert not _same_weights(fresh, _ckpt(tmp_path / "one" / "last.pt")["model"])


def test_kill_and_resume_gives_the_uninterrupted_result(data, tmp_path):
    iters = 100
    args = _args(data, tmp_path / "killed", "--iters", str(iters), "--checkpoint-every", "10", "--log-every", "10")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "train.py"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "train.log"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (tmp_path / "killed" / "last.pt").exists() and "[20/" in (log.read_text() if log.exists() else ""):
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up, no final checkpoint
    finally:
        proc.wait(timeout=30)
    stopped_at = _ckpt(tmp_path / "killed" / "last.pt")["iteration"]
    assert 10 <= stopped_at < iters, "the process was not killed in the middle of training"
    rc = subprocess.run([sys.executable, str(EXAMPLES / "train.py"), *args, "--resume"], env=env,
                        capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    assert f"resumed from {tmp_path / 'killed' / 'last.pt'} at iteration {stopped_at}" in log.read_text()
    train.main(_args(data, tmp_path / "straight", "--iters", str(iters), "--checkpoint-every", "10", "--log-every", "10"))
    resumed, straight = _ckpt(tmp_path / "killed" / "last.pt"), _ckpt(tmp_path / "straight" / "last.pt")
    assert resumed["iteration"] == straight["iteration"] == iters
    assert _same_weights(resumed["model"], straight["model"])


def test_term_ratios_are_logged_and_do_not_change_the_training(data, tmp_path):
    loss = "l1+0.1*pixel_contrastive(region=4)"
    train.main(_args(data, tmp_path / "every", "--iters", "4", "--loss", loss, "--log-every", "1"))
    train.main(_args(data, tmp_path / "never", "--iters", "4", "--loss", loss, "--log-every", "1000"))
    every = _ckpt(tmp_path / "every" / "last.pt")
    # measuring (extra autograd.grad calls at the log points) leaves the weights bit-identical
    assert _same_weights(every["model"], _ckpt(tmp_path / "never" / "last.pt")["model"])
    entries = json.loads((tmp_path / "every" / "history.json").read_text())["train"]
    assert [e["iteration"] for e in entries] == [1, 2, 3, 4]
    assert all(set(e["grad_ratio"]) == {"pixel_contrastive"} and 0 < e["grad_ratio"]["pixel_contrastive"] < 3 for e in entries)
    log = (tmp_path / "every" / "train.log").read_text()
    assert "| grad/l1 pixel_contrastive " in log and "warning" not in log
    # a single-term loss has nothing to compare
    train.main(_args(data, tmp_path / "l1", "--iters", "2"))
    assert "grad_ratio" not in json.loads((tmp_path / "l1" / "history.json").read_text())["train"][-1]


def test_a_term_above_3x_the_first_is_warned_about_once(data, tmp_path):
    train.main(_args(data, tmp_path / "heavy", "--iters", "4", "--loss", "l1+50*high_pass", "--log-every", "1"))
    log = (tmp_path / "heavy" / "train.log").read_text()
    assert log.count("warning: the high_pass term's gradient is") == 1
    assert "the l1 term's on the weights (iteration 1)" in log and "suggest_weight" in log
    ratios = [e["grad_ratio"]["high_pass"] for e in json.loads((tmp_path / "heavy" / "history.json").read_text())["train"]]
    assert len(ratios) == 4 and min(ratios) > 3


def test_dataloader_workers_do_not_change_the_result(data, tmp_path):
    train.main(_args(data, tmp_path / "w0", "--iters", "3"))
    train.main([*_args(data, tmp_path / "w2", "--iters", "3"), "--workers", "2"])
    assert _same_weights(_ckpt(tmp_path / "w0" / "last.pt")["model"], _ckpt(tmp_path / "w2" / "last.pt")["model"])


def test_torchrun_two_processes_gloo_match_one_process(data, tmp_path):
    # --batch is the global batch: 2 processes x 2 patches see the same patches as 1 x 4, and DDP
    # averages the gradients, so the weights agree up to float rounding.
    args = _args(data, tmp_path / "ddp", "--iters", "3", "--loss", "l1+0.1*pixel_contrastive")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(EXAMPLES / "train.py"), *args]
    rc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert rc.returncode == 0, rc.stderr[-3000:]
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert "cpu x 2 processes" in log and log.count("[2/3]") == 1  # rank 0 logs alone
    train.main(_args(data, tmp_path / "single", "--iters", "3", "--loss", "l1+0.1*pixel_contrastive"))
    ddp, single = _ckpt(tmp_path / "ddp" / "last.pt")["model"], _ckpt(tmp_path / "single" / "last.pt")["model"]
    for k in single:
        assert torch.allclose(ddp[k], single[k], atol=1e-6), k


def test_pcl_discriminator_alternates_and_is_checkpointed(data, tmp_path):
    loss = "l1+pcl(disc_channels=(4,4,8,8),disc_strides=(1,2,1,2),layers=(0,2),num_positives=2,num_negatives=2)"
    train.main(_args(data, tmp_path / "full", "--iters", "4", "--loss", loss))
    full = _ckpt(tmp_path / "full" / "last.pt")
    assert full["criterion_trainers"]["pcl"]["steps"] == 4  # one discriminator step per generator step
    train.main(_args(data, tmp_path / "part", "--iters", "2", "--loss", loss))
    train.main(_args(data, tmp_path / "part", "--iters", "4", "--loss", loss, "--resume"))
    part = _ckpt(tmp_path / "part" / "last.pt")
    assert _same_weights(full["model"], part["model"])
    assert _same_weights(full["criterion_trainers"]["pcl"]["discriminator"], part["criterion_trainers"]["pcl"]["discriminator"])


def test_init_from_loads_matching_tensors_with_a_fresh_optimizer(data, tmp_path):
    train.main(_args(data, tmp_path / "x2", "--iters", "2"))
    out = tmp_path / "x4"
    args = _args(data, out, "--iters", "1", "--init-from", str(tmp_path / "x2" / "last.pt"))
    args[args.index("--scale") + 1] = "4"
    args[args.index("--patch") + 1] = "4"
    train.main(args)
    log = (out / "train.log").read_text()
    assert "tensors loaded; fresh: " in log and "tail" in log.split("fresh: ")[1]  # the x4 upsampler differs
    x4 = _ckpt(out / "last.pt")
    assert x4["iteration"] == 1 and x4["scale"] == 4
    assert x4["optimizer"]["state"][0]["step"].item() == 1  # not the x2 run's optimizer


# ------------------------------------------------------------------------------------------- bad input


def _error(argv: list[str], capsys) -> str:
    assert run_cli(train.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_input_gives_one_line_errors(data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = _args(data, tmp_path / "run", "--iters", "1")
    i = args.index("--train") + 1
    assert "no such folder" in _error(args[:i] + [str(tmp_path / "nope")] + args[i + 1 :], capsys)
    assert "no images found" in _error(args[:i] + [str(empty)] + args[i + 1 :], capsys)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"this is not a png")
    assert f"cannot read image {bad / 'broken.png'}" in _error(args[:i] + [str(bad)] + args[i + 1 :], capsys)
    err = _error(args + ["--arch", "nosuchnet"], capsys)
    assert "unknown network 'nosuchnet'; known: edsr_baseline" in err
    err = _error(args + ["--loss", "l1+focal"], capsys)
    assert "unknown loss 'focal'; known losses: l1, mse, pixel_contrastive" in err
    err = _error(args + ["--patch", "64"], capsys)
    assert "every image is smaller than the 128x128 HR patch" in err
    assert "is for CUDA" in _error(args + ["--amp", "bf16", "--device", "cpu"], capsys)
    assert "unexpected keyword argument 'n_blocks'" in _error(args + ["--arch-kwargs", "n_blocks=3"], capsys)


def test_resume_from_another_arch_is_refused_and_keeps_the_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    train.main(_args(data, out, "--iters", "1"))
    before = (out / "last.pt").read_bytes()
    args = _args(data, out, "--iters", "2", "--resume")
    args[args.index("--arch-kwargs") + 1] = "n_resblocks=2,n_feats=8"
    err = _error(args, capsys)
    assert "was trained with other settings (arch_kwargs: checkpoint {'n_resblocks': 1" in err
    assert "--init-from" in err
    err = _error(_args(data, out, "--iters", "2", "--resume", "--loss", "l1+0.1*pixel_contrastive"), capsys)
    assert "loss: checkpoint '1*l1' vs now '1*l1+0.1*pixel_contrastive'" in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "cannot read it as a checkpoint" in _error(_args(data, out, "--resume", str(tmp_path / "junk.pt")), capsys)
    assert (out / "last.pt").read_bytes() == before


# ------------------------------------------------------------------------------------------- pieces


def test_recipes_set_the_papers_defaults_unless_given():
    args = train.parse_args(["--train", "x", "--recipe", "gidrn"])
    assert (args.loss, args.lr, args.batch, args.patch, args.lr_step) == ("0.4*l1+0.6*high_pass", 5e-4, 32, 64, 200_000)
    args = train.parse_args(["--train", "x", "--recipe", "gidrn", "--batch", "8", "--loss", "l1"])
    assert (args.loss, args.batch, args.lr) == ("l1", 8, 5e-4)
    args = train.parse_args(["--train", "x"])
    assert (args.loss, args.lr, args.batch, args.patch, args.iters) == ("l1", 1e-4, 16, 48, 300_000)
    assert train.parse_args(["--train", "x", "--recipe", "prffn"]).loss == "l1+0.1*pixel_contrastive(region=8)"
    for recipe in RECIPES.values():
        parse_loss_spec(recipe.loss)


def test_loss_spec_grammar():
    terms = parse_loss_spec(" 0.4*l1 + 0.6*high_pass(sigma=1.5, mode=fft) ")
    assert [(t.weight, t.name, t.kwargs) for t in terms] == [(0.4, "l1", {}), (0.6, "high_pass", {"sigma": 1.5, "mode": "fft"})]
    terms = parse_loss_spec("l1+1e-3*random_conv(layer_weights=(0.5,0.5),normalize=false)")
    assert terms[1].weight == 1e-3 and terms[1].kwargs == {"layer_weights": (0.5, 0.5), "normalize": False}
    for bad, match in [("", "empty loss spec"), ("l1+", "cannot parse term ''"), ("l1+l1", "appears twice"),
                       ("2*x", "unknown loss 'x'"), ("l1(3)", "expected key=value")]:
        with pytest.raises(UsageError, match=match):
            parse_loss_spec(bad)
    assert parse_kwargs("n_resblocks=2,n_feats=16,name=abc,flag=true,x=none", "f") == {
        "n_resblocks": 2, "n_feats": 16, "name": "abc", "flag": True, "x": None}


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_registered_loss_trains(name):
    kwargs = {
        "vgg_contrastive": "(weights=none)",
        "pcl": "(disc_channels=(4,4),disc_strides=(1,2),layers=(0,),num_positives=2,num_negatives=2)",
    }.get(name, "")
    criterion = CompositeLoss(f"l1+0.5*{name}{kwargs}" if name != "l1" else "l1", torch.device("cpu")).train()
    lr = torch.rand(2, 3, 8, 8)
    sr = imresize(lr, 2).clamp(0, 1).requires_grad_(True)
    hr = torch.rand(2, 3, 16, 16)
    total, parts = criterion(sr, hr, lr)
    total.backward()
    assert torch.isfinite(total) and sr.grad is not None and sr.grad.abs().sum() > 0
    assert set(parts) == ({"l1", name} if name != "l1" else {"l1"})
    expected = sum(criterion.weights[k] * v for k, v in parts.items())
    assert torch.allclose(total, expected)


def test_sampler_shards_the_same_stream_and_resumes_mid_epoch():
    full = list(StreamBatchSampler(5, 4, seed=1, start_iter=0, total_iters=6))
    rank0 = list(StreamBatchSampler(5, 4, seed=1, start_iter=0, total_iters=6, rank=0, world=2))
    rank1 = list(StreamBatchSampler(5, 4, seed=1, start_iter=0, total_iters=6, rank=1, world=2))
    assert [a + b for a, b in zip(rank0, rank1)] == full
    assert list(StreamBatchSampler(5, 4, seed=1, start_iter=3, total_iters=6)) == full[3:]
    images = [i for batch in full for i, _ in batch]
    for epoch in range(4):  # every image once per epoch
        assert sorted(images[epoch * 5 : epoch * 5 + 5]) == list(range(5))
    assert len({s for batch in full for _, s in batch}) == 24  # a distinct crop seed per sample
    assert list(StreamBatchSampler(5, 4, seed=2, start_iter=0, total_iters=6)) != full
    with pytest.raises(UsageError, match="must be a multiple of the number of processes 3"):
        StreamBatchSampler(5, 4, seed=1, start_iter=0, total_iters=6, world=3)


def test_pairs_use_matlab_bicubic_grayscale_to_rgb_and_the_lr_cache(data, tmp_path):
    pairs = load_pairs([data["test"]], 2, "--test", cache_dir=tmp_path / "cache")
    gray = next(p for p in pairs if p.name.endswith("gray.png"))
    assert gray.hr.shape == (3, 30, 34) and torch.equal(gray.hr[0], gray.hr[1])  # gray -> RGB
    odd = next(p for p in pairs if p.name.endswith("odd.png"))
    assert odd.hr.shape == (3, 28, 32) and odd.lr.shape == (3, 14, 16)  # mod-crop to the scale
    expected = quantize(imresize(odd.hr.double() / 255, 0.5)).mul(255).round().to(torch.uint8)
    assert torch.equal(odd.lr, expected) and torch.equal(make_lr(odd.hr, 2), expected)
    cached = sorted((tmp_path / "cache" / "x2").glob("*.png"))
    assert len(cached) == 2
    again = load_pairs([data["test"]], 2, "--test", cache_dir=tmp_path / "cache")
    assert all(torch.equal(a.lr, b.lr) for a, b in zip(pairs, again))
    for f in cached:  # the cache is what is read: overwrite it and see the change
        Image.fromarray(np.zeros_like(np.asarray(Image.open(f)))).save(f)
    assert all(int(p.lr.sum()) == 0 for p in load_pairs([data["test"]], 2, "--test", cache_dir=tmp_path / "cache"))


@pytest.mark.parametrize("arch", sorted(TINY_OVERRIDES))
def test_every_registered_network_trains_and_resumes(arch, data, tmp_path):
    kwargs = ",".join(f"{k}={v}" for k, v in TINY_OVERRIDES[arch].items()).replace(" ", "")
    args = _args(data, tmp_path / arch, "--iters", "1", "--patch", "16", "--batch", "2")
    args[args.index("--arch") + 1] = arch
    args[args.index("--arch-kwargs") + 1] = kwargs
    train.main(args)
    ckpt = _ckpt(tmp_path / arch / "last.pt")
    assert ckpt["arch"] == arch and ckpt["iteration"] == 1
    train.main([*args[: args.index("--iters")], "--iters", "2", *args[args.index("--iters") + 2 :], "--resume"])
    assert _ckpt(tmp_path / arch / "last.pt")["iteration"] == 2


# ------------------------------------------------------------------------------------------- paper fidelity (issue 14)


def test_rrlfn_recipe_runs_its_warm_start_stages_from_one_command(data, tmp_path, capsys):
    out = tmp_path / "rrlfn"
    args = _args(data, out, "--recipe", "rrlfn", "--iters", "1")
    args[args.index("--scale") + 1] = "4"
    args[args.index("--patch") + 1] = "4"
    result = train.main(args)
    names = ["stage_1_x2", "stage_2_x4", "stage_3_restart1", "stage_4_restart2", "stage_5_restart3_cl"]
    assert [Path(s["out"]).name for s in result["stages"]] == names
    ckpts = [_ckpt(out / n / "last.pt") for n in names]
    assert [c["scale"] for c in ckpts] == [2, 4, 4, 4, 4]
    assert [c["loss"] for c in ckpts] == ["1*l1"] * 4 + ["1*l1+0.001*random_conv"]  # contrastive only in the last
    assert all(c["iteration"] == 1 and c["args"]["channel_shuffle"] for c in ckpts)
    assert all(c["optimizer"]["state"][0]["step"].item() == 1 for c in ckpts)  # a fresh optimizer each stage
    for k in range(1, 5):  # every stage after the first starts from the previous one's weights
        assert f"init from {out / names[k - 1] / 'last.pt'}" in (out / names[k] / "train.log").read_text()
    assert "init from" not in (out / names[0] / "train.log").read_text()
    # rerun: finished stages are skipped; an interrupted stage (no done.json) resumes from its last.pt
    (out / names[-1] / "done.json").unlink()
    before = (out / names[0] / "last.pt").stat().st_mtime_ns
    args[args.index("--iters") + 1] = "2"
    capsys.readouterr()
    result = train.main(args)
    assert "stage 1/5 x2: done" in capsys.readouterr().out
    assert (out / names[0] / "last.pt").stat().st_mtime_ns == before
    assert _ckpt(out / names[-1] / "last.pt")["iteration"] == 2
    assert "resumed from" in (out / names[-1] / "train.log").read_text()
    assert result["checkpoint"] == str(out / names[-1] / "last.pt")


def test_list_losses_states_every_recipes_iterations(capsys):
    train.main(["--list-losses"])
    text = capsys.readouterr().out
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert "[1,000,000 iterations]" in lines["prffn"] and "[1,000,000 iterations]" in lines["gidrn"]
    assert "[200,000 iterations]" in lines["pcl"] and "[600,000 iterations]" in lines["pcl_finetune"]
    assert "[5 stages x 800,000 = 4,000,000 iterations: x2 (x2, l1)" in lines["rrlfn"]


def test_pcl_finetune_recipe_needs_a_pretrained_network_and_sets_the_scripts_schedule(capsys):
    def usage_error(argv: list[str]) -> str:
        with pytest.raises(SystemExit):
            train.parse_args(argv)
        return capsys.readouterr().err

    assert "fine-tunes a pretrained network: give its weights with --init-from" in usage_error(
        ["--train", "x", "--recipe", "pcl_finetune"])
    args = train.parse_args(["--train", "x", "--recipe", "pcl_finetune", "--init-from", "w.pt"])
    assert (args.lr, args.lr_schedule, args.cosine_period, args.cosine_eta_min, args.iters) == (
        5e-5, "cosine_restart", 200_000, 1e-8, 600_000)
    assert args.loss.startswith("l1+5*pcl(layers=(4,),lr_negative=true,sample_form=authors,d_form=flattened")
    assert "runs its own stages" in usage_error(["--train", "x", "--recipe", "rrlfn", "--init-from", "w.pt"])


def test_cosine_restart_schedule_by_hand():
    args = train.parse_args(["--train", "x", "--lr", "1.0", "--lr-schedule", "cosine_restart", "--cosine-period", "4",
                             "--cosine-eta-min", "0.1", "--cosine-restart-weight", "0.5"])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = train.make_schedule(args)(opt)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # BasicSR's CosineAnnealingRestartLR: eta_min + w * (base - eta_min) * (1 + cos(pi * t' / period)) / 2
    expected = [0.1 + w * 0.45 * (1 + np.cos(np.pi * (t % 4) / 4)) for t, w in zip(range(9), [1] * 4 + [0.5] * 5)]
    assert lrs == pytest.approx(expected)


def test_channel_shuffle_permutes_lr_and_hr_alike_and_keeps_the_crop():
    from srkit.data import Pair, random_patch

    hr = torch.from_numpy(_image(3, 16, 16)).permute(2, 0, 1).contiguous()
    pair = Pair("p", make_lr(hr, 2), hr)
    plain = random_patch(pair, 4, 2, torch.Generator().manual_seed(7))
    shuffled = random_patch(pair, 4, 2, torch.Generator().manual_seed(7), channel_shuffle=True)
    perm = [int(((plain[1][None] - shuffled[1][c, None, None]).abs().sum((-1, -2)) == 0).nonzero()[0, 1]) for c in range(3)]
    assert sorted(perm) == [0, 1, 2]
    torch.testing.assert_close(shuffled[0], plain[0][perm])
    torch.testing.assert_close(shuffled[1], plain[1][perm])


def test_pcl_discriminator_keys_select_the_authors_forms():
    spec = ("l1+pcl(d_lr=same,d_schedule=same,d_form=flattened,d_augment=true,layers=(0,2),"
            "disc_channels=(8,8,16,16),disc_strides=(1,2,1,2),sample_form=authors)")
    make = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10, 0.5)  # noqa: E731
    crit = CompositeLoss(spec, torch.device("cpu"), generator_lr=3e-4, generator_schedule=make)
    pcl = crit.trainers["pcl"]
    assert pcl.optimizer.param_groups[0]["lr"] == 3e-4 and isinstance(pcl.scheduler, torch.optim.lr_scheduler.StepLR)
    assert pcl.discriminator_form == "flattened" and pcl.augment_discriminator
    assert crit.losses["pcl"].sample_form == "authors"
    default = CompositeLoss("l1+pcl(layers=(0,2),disc_channels=(8,8,16,16),disc_strides=(1,2,1,2))", torch.device("cpu"))
    assert default.trainers["pcl"].optimizer.param_groups[0]["lr"] == 1e-4 and default.trainers["pcl"].scheduler is None
    with pytest.raises(UsageError, match="d_lr=same"):
        CompositeLoss("l1+pcl(d_lr=same)", torch.device("cpu"))


def test_pcl_and_random_conv_default_to_their_least_harmful_measured_weight():
    # the loss study measured weight 1 as harmful for both (random-conv -4 to -7 dB, PCL -1 to -10 dB)
    terms = {t.name: t.weight for t in parse_loss_spec("l1+random_conv+pcl+high_pass")}
    assert terms == {"l1": 1.0, "random_conv": 0.001, "pcl": 0.01, "high_pass": 1.0}
    assert [t.weight for t in parse_loss_spec("l1+1*random_conv+0.5*pcl")] == [1.0, 1.0, 0.5]  # written: kept
    assert parse_loss_spec(RECIPES["pcl"].loss)[1].weight == 0.01
    finetune = parse_loss_spec(RECIPES["pcl_finetune"].loss)[1]
    assert finetune.kwargs["generator_gradient"] is False  # the authors' released code: no gradient to the network
    for recipe in RECIPES.values():
        for spec in [recipe.loss, *(st.loss for st in recipe.stages)]:
            for t in parse_loss_spec(spec):
                if t.name == "random_conv":
                    assert t.weight <= 0.001, (spec, t)
                if t.name == "pcl" and t.kwargs.get("generator_gradient", True):
                    assert t.weight <= 0.01, (spec, t)
