"""Checkpoints as an attacker or a careless disk would hand them over (issue 22): no code runs from a
checkpoint on any load route, old checkpoints still resume, corrupted / NaN / forged ones are refused
in one line, a failed write keeps the previous one, and two runs never share an output folder."""

from __future__ import annotations

import json
import os
import socket
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

import srkit.evaluate as evaluate  # noqa: E402
import srkit.train as train  # noqa: E402
from srkit import runtime  # noqa: E402
from srkit.runtime import CHECKPOINT_FORMAT, UsageError, run_cli, seal_checkpoint  # noqa: E402
from tests._paths import EXAMPLES, ROOT  # noqa: E402


class Payload:
    """A pickle whose loading would create the file ``target`` (``open(target, "w")``): the stand-in
    for a ``__reduce__`` that runs a shell command."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("safety_data")
    for name in ("train", "test"):
        (root / name).mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        y, x = np.mgrid[0:32, 0:36] / 36
        base = 0.5 + 0.3 * np.sin(2 * np.pi * (3 + i) * x + 5 * y)
        img = np.stack([base, base[::-1], 1 - base], -1) + 0.05 * rng.standard_normal((32, 36, 3))
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / "train" / f"im{i}.png")
    Image.open(root / "train" / "im0.png").save(root / "test" / "im0.png")
    return {"train": root / "train", "test": root / "test"}


def _args(data: dict[str, Path], out: Path, *extra: str, feats: int = 8) -> list[str]:
    return [
        "--arch", "edsr_baseline", "--arch-kwargs", f"n_resblocks=1,n_feats={feats}", "--scale", "2",
        "--train", str(data["train"]), "--patch", "8", "--batch", "2", "--workers", "0", "--lr", "1e-3",
        "--val-every", "0", "--checkpoint-every", "3", "--log-every", "3", "--no-progress", "--threads", "1",
        "--out", str(out), *extra,
    ]


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # the new format needs nothing else


def _error(main, argv: list[str], capsys) -> str:
    """Run a script's ``main`` as its command line does: exit code 2 and one line on stderr."""
    assert run_cli(main, argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in "\n".join(lines), lines
    return lines[-1]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """A finished 3-iteration run's checkpoint (format 2)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train.main(_args(data, out, "--iters", "3"))
    return out / "last.pt"


# ------------------------------------------------------------------- 1. crafted pickles, every route


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """``(crafted checkpoint, the file its payload would create)``."""
    target = tmp_path / "payload_ran"
    path = tmp_path / "shared.pt"
    torch.save({"format": "contrastive-sr-losses/train/1", "arch": "edsr_baseline", "scale": 2,
                "model": {"head.0.weight": Payload(target)}}, path)
    return path, target


ROUTES = {
    "train --resume CKPT": lambda d, out, p: train.main(_args(d, out, "--iters", "3", "--resume", str(p))),
    "train --init-from": lambda d, out, p: train.main(_args(d, out, "--iters", "3", "--init-from", str(p))),
    "evaluate --checkpoint": lambda d, out, p: evaluate.main(["--checkpoint", str(p), "--test", str(d["test"]), "--no-progress"]),
    "evaluate --weights": lambda d, out, p: evaluate.main(
        ["--arch", "edsr_baseline", "--scale", "2", "--weights", str(p), "--test", str(d["test"]), "--no-progress"]),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_crafted_pickle_is_refused_on_every_script_route(route, data, evil, tmp_path, capsys):
    path, target = evil
    err = _error(lambda argv: ROUTES[route](data, tmp_path / "out", path), [], capsys)
    assert f"{path}: refused: it holds a pickled Python object" in err and "nothing of it was run" in err
    assert not target.exists()


def test_a_crafted_last_pt_is_refused_by_resume_auto(data, tmp_path, capsys):
    target = tmp_path / "payload_ran"
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"model": Payload(target)}, out / "last.pt")
    err = _error(train.main, _args(data, out, "--iters", "3", "--resume"), capsys)
    assert f"--resume {out / 'last.pt'}: refused" in err and not target.exists()


def test_a_crafted_pickle_is_refused_by_the_command_line_in_one_line(data, evil, tmp_path):
    path, target = evil
    proc = subprocess.run([sys.executable, str(EXAMPLES / "train.py"), *_args(data, tmp_path / "o", "--resume", str(path))],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith(f"error: --resume {path}: refused") and not target.exists()


def _loss_study():
    import benchmarks.loss_study

    return benchmarks.loss_study


def test_a_crafted_pickle_is_refused_by_the_loss_study(data, evil, tmp_path):
    path, target = evil
    study = _loss_study()
    settings = {"device": "cpu", "data": str(data["test"].parent), "scale": 2, "test": ["test"], "lpips": False}
    with pytest.raises(UsageError, match=f"--checkpoint {path}: refused"):
        study.evaluate_checkpoint(settings, path)
    with pytest.raises(UsageError, match=f"--switch {path}: refused"):
        study._hand_over(path, tmp_path / "dst.pt", "l1", "l1", "cpu")
    assert not target.exists() and not (tmp_path / "dst.pt").exists()


def test_a_crafted_pickle_is_refused_by_every_library_loader(evil, tmp_path):
    from contrastive_sr_losses.archs import create_model
    from contrastive_sr_losses.archs.weights import read_state_dict
    from contrastive_sr_losses.embeddings import VGG19Features
    from contrastive_sr_losses.integrations.basicsr import CSRFrequencyContrastiveLoss
    from contrastive_sr_losses.integrations.state import load_loss_state
    from contrastive_sr_losses.metrics import LPIPS

    path, target = evil
    loaders = {
        "read_state_dict": lambda: read_state_dict(path),
        "create_model weights": lambda: create_model("edsr_baseline", 2, weights=path),
        "VGG19Features": lambda: VGG19Features(weights=path),
        "CSRFrequencyContrastiveLoss discriminator_weights": lambda: CSRFrequencyContrastiveLoss(discriminator_weights=str(path)),
        "load_loss_state": lambda: load_loss_state(path),
        "LPIPS backbone": lambda: LPIPS("squeeze", backbone_path=path, head_path=path),
    }
    for name, load in loaders.items():
        with pytest.raises((ValueError, RuntimeError)) as err:
            load()
        message = str(err.value)
        assert f"{path}: refused" in message and "\n" not in message, (name, message)
    assert not target.exists()


def test_every_torch_load_of_the_project_is_weights_only():
    """Every ``torch.load`` call (found in the syntax tree, not in docstrings) of the package, the
    examples, the benchmarks and the tests' integration scripts passes ``weights_only=True``; the
    package's own go through ``contrastive_sr_losses.serialization.load_tensors_file``."""
    import ast

    calls, unsafe = [], []
    for folder in ("contrastive_sr_losses", "srkit", "examples", "benchmarks", "tests/integrations/real_frameworks"):
        for f in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                    where = f"{f.relative_to(ROOT)}:{node.lineno}"
                    calls.append(where)
                    if not any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords):
                        unsafe.append(where)
    assert calls and not unsafe, unsafe
    assert [c for c in calls if c.startswith("contrastive_sr_losses/")] == [
        c for c in calls if c.startswith("contrastive_sr_losses/serialization.py:")
    ]


# ------------------------------------------------------------------- format: plain values, old files


def test_the_checkpoint_holds_only_tensors_and_plain_values_and_a_checksum(trained):
    ckpt = _ckpt(trained)  # weights_only=True with no allow-list: nothing but tensors and plain values
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert ckpt["checksum"] == runtime.checkpoint_checksum(ckpt)
    assert isinstance(ckpt["rng"]["numpy"]["key"], torch.Tensor) and isinstance(ckpt["rng"]["python"]["internal"], list)
    assert isinstance(ckpt["args"]["train"][0], str) and isinstance(ckpt["args"]["given"], list)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(trained) == []


def _as_format_1(ckpt: dict, path: Path) -> None:
    """Write ``ckpt`` exactly as the format-1 ``save()`` did: numpy's RNG state as
    ``np.random.get_state()`` (an ndarray inside), ``random.getstate()`` as a tuple, the folder lists of
    the args as ``PosixPath``, no checksum."""
    old = {k: v for k, v in ckpt.items() if k != "checksum"}
    old["format"] = "contrastive-sr-losses/train/1"
    npy, py = ckpt["rng"]["numpy"], ckpt["rng"]["python"]
    old["rng"] = {
        "torch": ckpt["rng"]["torch"],
        "numpy": (npy["kind"], npy["key"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"]),
        "python": (py["version"], tuple(py["internal"]), py["gauss_next"]),
    }
    old["args"] = {**ckpt["args"], **{k: [Path(p) for p in ckpt["args"][k]] for k in ("train", "test", "plot_with")}}
    torch.save(old, path)
    assert "numpy.ndarray" in torch.serialization.get_unsafe_globals_in_checkpoint(path)  # as the old files are


def test_an_old_format_checkpoint_resumes_to_the_same_weights(data, tmp_path):
    spec = ("--loss", "l1+0.1*pixel_contrastive")
    train.main(_args(data, tmp_path / "full", "--iters", "6", *spec))
    part = tmp_path / "part"
    train.main(_args(data, part, "--iters", "3", *spec))
    _as_format_1(_ckpt(part / "last.pt"), part / "last.pt")
    train.main(_args(data, part, "--iters", "6", *spec, "--resume"))
    full, resumed = _ckpt(tmp_path / "full" / "last.pt"), _ckpt(part / "last.pt")
    assert resumed["format"] == CHECKPOINT_FORMAT and resumed["checksum"] == runtime.checkpoint_checksum(resumed)
    assert "is in the older format contrastive-sr-losses/train/1" in (part / "train.log").read_text()
    assert all(torch.equal(full["model"][k], resumed["model"][k]) for k in full["model"])
    assert full["history"]["train"][-1] == resumed["history"]["train"][-1]


def test_an_old_format_checkpoint_evaluates_and_inits(data, trained, tmp_path):
    old = tmp_path / "old.pt"
    _as_format_1(_ckpt(trained), old)
    result = evaluate.main(["--checkpoint", str(old), "--test", str(data["test"]), "--no-progress", "--no-bicubic"])
    assert np.isfinite(next(iter(result["results"].values()))["test"]["psnr"])
    train.main(_args(data, tmp_path / "warm", "--iters", "1", "--init-from", str(old)))
    assert "tensors loaded" in (tmp_path / "warm" / "train.log").read_text()


# ------------------------------------------------------------------- resume checks what it loads


def _poisoned(trained: Path, tmp_path: Path, edit, reseal: bool) -> Path:
    ckpt = _ckpt(trained)
    edit(ckpt)
    path = tmp_path / "bad" / "last.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(seal_checkpoint(ckpt) if reseal else ckpt, path)
    return path


def _set_first(part: str, value: float):
    """An edit that sets the first value of the model's first tensor (``part="model"``) or of the
    first parameter's Adam ``exp_avg_sq`` (``"optimizer"``); returns the dotted name it changed."""
    def edit(ckpt: dict) -> str:
        if part == "optimizer":
            ckpt["optimizer"]["state"][0]["exp_avg_sq"].view(-1)[0] = value
            return "optimizer.state.0.exp_avg_sq"
        key = next(iter(ckpt["model"]))
        ckpt["model"][key].view(-1)[0] = value
        return f"model.{key}"
    return edit


@pytest.mark.parametrize("part", ["model", "optimizer"])
def test_resume_refuses_nan_weights_or_optimizer_state_naming_the_tensor(part, data, trained, tmp_path, capsys):
    edit = _set_first(part, float("nan"))
    name = edit(_ckpt(trained))
    path = _poisoned(trained, tmp_path, edit, reseal=True)  # well-formed, with a valid checksum
    err = _error(train.main, _args(data, path.parent, "--iters", "6", "--resume"), capsys)
    assert f"--resume {path}: refused: {name} holds NaN/Inf at iteration 3" in err
    assert "all its weights finite" not in err


def test_init_from_refuses_nan_weights(data, trained, tmp_path, capsys):
    edit = _set_first("model", float("inf"))
    name = edit(_ckpt(trained))
    path = _poisoned(trained, tmp_path, edit, reseal=True)
    err = _error(train.main, _args(data, tmp_path / "new", "--iters", "3", "--init-from", str(path)), capsys)
    assert f"--init-from {path}: refused: {name.removeprefix('model.')} holds NaN/Inf" in err


def test_resume_refuses_a_corrupted_checkpoint_by_its_checksum(data, trained, tmp_path, capsys):
    path = _poisoned(trained, tmp_path, _set_first("model", 1e20), reseal=False)
    err = _error(train.main, _args(data, path.parent, "--iters", "6", "--resume"), capsys)
    assert f"--resume {path}: refused: its checksum does not match its contents" in err
    err = _error(evaluate.main, ["--checkpoint", str(path), "--test", str(data["test"])], capsys)
    assert "checksum does not match" in err


def test_a_forged_architecture_is_one_line_on_resume_and_evaluate(data, tmp_path, capsys):
    other = tmp_path / "wide"
    train.main(_args(data, other, "--iters", "1", feats=16))
    ckpt = _ckpt(other / "last.pt")
    ckpt["arch_kwargs"] = {"n_resblocks": 1, "n_feats": 8}  # another network under this one's metadata
    forged = tmp_path / "forged" / "last.pt"
    forged.parent.mkdir()
    torch.save(seal_checkpoint(ckpt), forged)
    err = _error(train.main, _args(data, forged.parent, "--iters", "3", "--resume"), capsys)
    assert f"--resume {forged}: its model state does not fit edsr_baseline" in err and "size mismatch" in err
    err = _error(evaluate.main, ["--checkpoint", str(forged), "--test", str(data["test"])], capsys)
    assert f"--checkpoint {forged}: its 'model' does not fit edsr_baseline" in err and "size mismatch" in err


# ------------------------------------------------------------------- failed writes


@pytest.mark.parametrize("failure", ["disk full", "unwritable"])
def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_previous_checkpoint(failure, data, tmp_path, monkeypatch, capsys):
    real, calls = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:  # the checkpoint of iteration 6
            if failure == "unwritable":
                raise PermissionError(13, "Permission denied")
            f.write(b"half a checkpoint")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/3: file write failed")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    err = _error(train.main, _args(data, out, "--iters", "6"), capsys)
    assert f"cannot write the checkpoint {out / 'last.pt'}" in err and f"{out / 'last.pt'} keeps iteration 3" in err
    assert ("disk full" in err) if failure == "disk full" else ("Permission denied" in err)
    monkeypatch.setattr(torch, "save", real)
    assert _ckpt(out / "last.pt")["iteration"] == 3 and runtime.load_checkpoint(out / "last.pt", "--resume")
    assert not list(out.glob(".last.pt.tmp*")) and not (out / "train.lock").exists()


# ------------------------------------------------------------------- one run per folder


def test_a_second_run_on_the_same_out_refuses_and_a_stale_lock_is_taken_over(data, tmp_path, capsys):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "train.py"), *_args(data, out, "--iters", "100000")],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out / "last.pt").is_file():  # the first run is under way, holding its lock
            assert proc.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        for extra in ((), ("--resume",)):
            err = _error(train.main, _args(data, out, "--iters", "3", *extra), capsys)
            assert f"--out {out}: another run uses this folder (pid {proc.pid} on {socket.gethostname()}" in err
    finally:
        proc.kill()
        proc.wait()
    assert (out / "train.lock").is_file()  # left by the killed run
    train.main(_args(data, out, "--iters", "6", "--resume"))
    assert f"took over {out / 'train.lock'}: its run (pid {proc.pid}" in (out / "train.log").read_text()
    assert not (out / "train.lock").exists()


def test_a_lock_of_another_host_or_a_live_process_is_respected(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for owner in ({"pid": 1, "host": "elsewhere"}, {"pid": os.getppid(), "host": socket.gethostname()}):
        (out / "train.lock").write_text(json.dumps({**owner, "started": "then"}))
        err = _error(train.main, _args(data, out, "--iters", "3"), capsys)
        assert f"another run uses this folder (pid {owner['pid']} on {owner['host']}" in err
    assert not (out / "last.pt").exists()


def test_the_lock_is_released_when_a_run_returns_or_fails(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="smaller than"):
        train.main(_args(data, out, "--iters", "3", "--patch", "64"))  # fails after taking the lock
    assert not (out / "train.lock").exists()
    train.main(_args(data, out, "--iters", "3"))  # the loss study's L1 legs: one folder, one process
    train.main(_args(data, out, "--iters", "4", "--resume"))
    assert not (out / "train.lock").exists() and _ckpt(out / "last.pt")["iteration"] == 4
