"""Run-time plumbing of the example scripts: user errors, seeds, RNG state, atomic checkpoints,
``torchrun`` set-up, a log that goes to the console and a file."""

from __future__ import annotations

import ast
import hashlib
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


class UsageError(Exception):
    """A problem with the command line or the data, reported as one line (no traceback)."""


def run_cli(main: Any, argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; a :class:`UsageError` becomes ``error: <message>`` on stderr and exit code 2."""
    try:
        main(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``parts`` (stable across runs and machines)."""
    text = "|".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def parse_value(text: str) -> object:
    """``'16'`` -> 16, ``'0.5'`` -> 0.5, ``'true'`` -> True, ``'none'`` -> None, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()
    return value if isinstance(value, (int, float, tuple, list)) else text.strip()


def split_top_level(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def build_model(arch: str, scale: int, arch_kwargs: dict[str, Any], flag: str = "--arch") -> torch.nn.Module:
    """``create_model`` with one-line errors for an unknown name or a wrong keyword."""
    from contrastive_sr_losses.archs import create_model, list_models

    if arch not in list_models():
        raise UsageError(f"{flag}: unknown network {arch!r}; known: {', '.join(list_models())}")
    try:
        return create_model(arch, scale, **arch_kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{flag} {arch} {arch_kwargs}: {err}") from err


def parse_kwargs(text: str, flag: str) -> dict[str, object]:
    """``'n_resblocks=2,n_feats=16'`` -> ``{'n_resblocks': 2, 'n_feats': 16}`` (empty text -> {})."""
    out: dict[str, object] = {}
    if not text.strip():
        return out
    for entry in split_top_level(text, ","):  # "layer_weights=(0.5,0.5)" stays one item
        key, sep, value = entry.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"{flag}: expected key=value pairs separated by commas, got {entry.strip()!r}")
        out[key.strip()] = parse_value(value)
    return out


# ---------------------------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random`` from one integer."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ---------------------------------------------------------------------------------------------- files


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash or a kill at any moment leaves either the previous file or the new one, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries :func:`atomic_save` left for ``path`` when its process was killed
    mid-write (``.<name>.tmp<pid>`` of a process that no longer runs); return what was removed."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp*"):
        pid = tmp.name[len(f".{path.name}.tmp") :]
        if pid.isdigit() and (int(pid) == os.getpid() or _process_alive(int(pid))):
            continue  # being written right now by a live process
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def nonfinite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of the floating tensors of a state dict that hold a NaN or an Inf (one host sync)."""
    names = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    if not names:
        return []
    flags = torch.stack([torch.isfinite(state[k]).all() for k in names]).cpu().tolist()
    return [k for k, ok in zip(names, flags) if not ok]


def check_writable_dir(path: Path, flag: str) -> Path:
    """Create ``path`` (and its parents) and check that a file can be written in it, before any long
    work starts; a one-line :class:`UsageError` otherwise."""
    try:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{flag} {path}: exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write there ({err.strerror or err})") from err
    return path


def check_writable_file(path: Path, flag: str) -> Path:
    """Check, before the work, that ``path`` can be written later (its folder is writable and it is
    not a folder)."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file name")
    try:
        check_writable_dir(path.parent, flag)
    except UsageError as err:
        reason = str(err).split(": ", 1)[1]
        raise UsageError(f"{flag} {path}: cannot write there ({path.parent}: {reason})") from err
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable")
    return path


def parse_device(text: str, flag: str = "--device") -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"{flag} {text!r}: expected auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{flag} {text}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"{flag} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{flag} {text}: MPS is not available on this machine (use --device cpu)")
    return device


def check_number(value: float, flag: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite command-line number ``>= minimum`` (``> minimum`` with ``strict``), else a UsageError."""
    ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        raise UsageError(f"{flag} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value:g}")
    return value


_LOGGED_ITERATION = re.compile(r"\[(\d+)/\d+\]")


def last_logged_iteration(log_path: Path) -> int | None:
    """The highest ``[iteration/total]`` of the last training line of a ``train.log``, if any."""
    if not log_path.is_file():
        return None
    last = None
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _LOGGED_ITERATION.search(line)
            if match:
                last = int(match[1])
    return last


def load_checkpoint(path: Path, flag: str) -> dict[str, Any]:
    """Read a training checkpoint written by ``examples/train.py`` (a one-line error otherwise)."""
    if not path.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, foreign or corrupt file
        raise UsageError(f"{flag} {path}: cannot read it as a checkpoint ({type(err).__name__}: {err})") from err
    return ckpt if isinstance(ckpt, dict) else {"model": ckpt}


# ---------------------------------------------------------------------------------------------- torchrun


@dataclass
class Dist:
    """Process group facts: ``rank`` 0 logs and writes checkpoints."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_mean(self, tensors: list[torch.Tensor]) -> None:
        if self.enabled:
            for t in tensors:
                dist.all_reduce(t)
                t.div_(self.world)


def setup_distributed(device: str) -> tuple[Dist, torch.device]:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine (use --device cpu)")
    if world <= 1:
        return Dist(), torch.device(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        dist.init_process_group("nccl")
    else:
        dev = torch.device("cpu")
        dist.init_process_group("gloo")
    return Dist(rank, world, local_rank), dev


def teardown_distributed(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


class RunLog:
    """Prints (through tqdm when a bar is active) and appends to a log file; silent on rank != 0."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        self.path, self.enabled, self.start = path, enabled, time.perf_counter()
        if enabled and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        tqdm.write(message)
        if self.path is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{stamp} {message}\n")
