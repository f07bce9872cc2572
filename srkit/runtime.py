"""Run-time plumbing of the example scripts: user errors, seeds, RNG state, atomic checkpoints,
``torchrun`` set-up, a log that goes to the console and a file."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import pathlib
import random
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from contrastive_sr_losses.serialization import atomic_save  # noqa: F401  (the kit's checkpoints and the loss study use it from here)


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
    """The RNG states of torch (CPU, CUDA), numpy and ``random`` as tensors and plain values only
    (a checkpoint loads with ``torch.load(weights_only=True)``)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` (also the numpy / ``random`` tuples of checkpoint format 1)."""
    torch.set_rng_state(state["torch"])
    npy, py = state["numpy"], state["python"]
    if isinstance(npy, dict):
        key = np.asarray(npy["key"].numpy() if isinstance(npy["key"], torch.Tensor) else npy["key"], dtype=np.uint32)
        npy = (npy["kind"], key, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    np.random.set_state(tuple(npy))
    if isinstance(py, dict):
        py = (py["version"], tuple(py["internal"]), py["gauss_next"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random`` from one integer."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ---------------------------------------------------------------------------------------------- files


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


def _float_tensors(obj: object, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    """``(dotted name, tensor)`` of every floating tensor in nested dicts / lists / tuples."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield name, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _float_tensors(v, f"{name}.{k}" if name else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _float_tensors(v, f"{name}.{i}" if name else str(i))


def nonfinite_tensors(state: object, prefix: str = "") -> list[str]:
    """Names of the floating tensors of a (nested) state dict that hold a NaN or an Inf, in order
    (one host sync); ``prefix`` is put before each name (``model.head.weight``)."""
    found = list(_float_tensors(state, prefix))
    if not found:
        return []
    flags = torch.stack([torch.isfinite(t).all() for _, t in found]).cpu().tolist()
    return [k for (k, _), ok in zip(found, flags) if not ok]


def error_summary(err: BaseException) -> str:
    """One line of an exception's message: its first line, with the next one where the first only
    introduces it (``load_state_dict``'s "Error(s) in loading state_dict for EDSR:")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


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


# ---------------------------------------------------------------------------------------------- checkpoints

#: Format of the checkpoints ``examples/train.py`` writes: tensors and plain values only (argparse
#: values as a dict of str / int / float / bool / None / lists, RNG states as tensors and lists), and
#: a SHA-256 :func:`checkpoint_checksum` of all of it under ``"checksum"``.
CHECKPOINT_FORMAT = "contrastive-sr-losses/train/2"
#: Format 1 (before the checksum): numpy's RNG state as a tuple holding an ``ndarray``, the ``--train``
#: / ``--test`` / ``--plot-with`` folders as ``PosixPath`` objects; read through :data:`LEGACY_GLOBALS`.
LEGACY_FORMATS = ("contrastive-sr-losses/train/1",)
CHECKSUM_KEY = "checksum"


def legacy_globals() -> list[Any]:
    """Exactly the Python types that format-1 checkpoints pickled besides tensors and plain values
    (numpy arrays and their dtype, ``pathlib`` paths): building them runs no code of the file's
    choosing, so they are allowed in ``torch.load(weights_only=True)``; nothing else is."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
        name = "numpy._core.multiarray._reconstruct"
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
        name = "numpy.core.multiarray._reconstruct"
    allowed: list[Any] = [(_reconstruct, name), np.ndarray, np.dtype, (pathlib.PosixPath, "pathlib.PosixPath")]
    allowed += [type(np.dtype(t)) for t in ("uint32", "int64", "float64")]  # numpy.dtypes.UInt32DType, ...
    return allowed


def _checksum_update(h: Any, obj: object) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"d{len(obj)}".encode())
        for k, v in obj.items():
            _checksum_update(h, k)
            _checksum_update(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'l' if isinstance(obj, list) else 't'}{len(obj)}".encode())
        for v in obj:
            _checksum_update(h, v)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(f"s{len(data)}:".encode() + data)
    elif obj is None or isinstance(obj, (bool, int, float)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"a checkpoint holds only tensors and plain values, got {type(obj).__name__}")


def checkpoint_checksum(ckpt: dict[str, Any]) -> str:
    """SHA-256 of everything in ``ckpt`` but its ``"checksum"`` (every tensor's dtype, shape and
    bytes, every key and plain value, in order)."""
    h = hashlib.sha256()
    _checksum_update(h, {k: v for k, v in ckpt.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def seal_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` in :data:`CHECKPOINT_FORMAT` with its checksum (set after any change to it)."""
    ckpt = {**ckpt, "format": CHECKPOINT_FORMAT}
    ckpt.pop(CHECKSUM_KEY, None)
    ckpt[CHECKSUM_KEY] = checkpoint_checksum(ckpt)
    return ckpt


def save_checkpoint(ckpt: dict[str, Any], path: Path, kept: str = "") -> None:
    """:func:`seal_checkpoint` and :func:`atomic_save` to ``path``; a full disk or an unwritable
    folder is a one-line :class:`UsageError` naming ``path`` (the previous file is left as it was;
    ``kept`` says what it holds)."""
    sealed = seal_checkpoint(ckpt)
    try:
        atomic_save(sealed, path)
    except (OSError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]
        if "enforce fail" in reason or "failed writing" in reason or "file write failed" in reason:
            reason = f"the write failed, is the disk full? ({reason})"
        raise UsageError(f"cannot write the checkpoint {path}: {reason}; {kept or 'the previous file, if any, is unchanged'}") from err


def plain_args(values: dict[str, Any]) -> dict[str, Any]:
    """argparse values as plain values: paths as strings, sets as sorted lists, tuples as lists."""

    def plain(v: Any) -> Any:
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if isinstance(v, (set, frozenset)):
            return sorted(plain(x) for x in v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        return str(v)

    return {k: plain(v) for k, v in values.items()}


def _migrate_legacy(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint in the current form (RNG states and argparse values as plain values)."""
    out = dict(ckpt)
    if isinstance(out.get("args"), dict):
        out["args"] = plain_args(out["args"])
    rng = out.get("rng")
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        kind, key, pos, has_gauss, cached = rng["numpy"]
        version, internal, gauss_next = rng["python"]
        out["rng"] = {
            **rng,
            "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
        }
    out["migrated_from"] = out["format"]
    out["format"] = CHECKPOINT_FORMAT
    return out


def safe_load(path: Path, flag: str) -> Any:
    """``torch.load(path, weights_only=True)`` (plus :func:`legacy_globals`) on the CPU, through the
    library's :func:`contrastive_sr_losses.serialization.load_tensors_file`: a file that would run code when
    unpickled is refused with a one-line :class:`UsageError` naming it (nothing of it runs); an
    unreadable file is one line too."""
    from contrastive_sr_losses.serialization import load_tensors_file

    if not path.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    try:
        return load_tensors_file(path, "checkpoint", allowed=legacy_globals())
    except ValueError as err:
        text = str(err)
        if text.startswith(f"{path}: "):
            text = text[len(f"{path}: "):]
        else:
            text = "cannot read it as a checkpoint (" + text.split(": ", 1)[-1] + ")"
        raise UsageError(f"{flag} {path}: {text}") from None


def load_checkpoint(path: Path, flag: str) -> dict[str, Any]:
    """Read a checkpoint of ``examples/train.py`` (or a weights file) safely (:func:`safe_load`).

    A :data:`CHECKPOINT_FORMAT` checkpoint is refused unless its checksum matches (a file changed or
    corrupted after it was written); a format-1 one (no checksum) is migrated in memory
    (``"migrated_from"``). A bare state dict or other object comes back as ``{"model": obj}``."""
    ckpt = safe_load(path, flag)
    if not isinstance(ckpt, dict):
        return {"model": ckpt}
    fmt = ckpt.get("format")
    if fmt in LEGACY_FORMATS:
        return _migrate_legacy(ckpt)
    if fmt == CHECKPOINT_FORMAT:
        stored = ckpt.get(CHECKSUM_KEY)
        try:
            actual = checkpoint_checksum(ckpt)
        except TypeError as err:
            raise UsageError(f"{flag} {path}: not a valid checkpoint ({err})") from None
        if stored != actual:
            raise UsageError(
                f"{flag} {path}: refused: its checksum does not match its contents (stored {str(stored)[:12]}, "
                f"computed {actual[:12]}): the file was changed or corrupted after it was written"
            )
    return ckpt


# ---------------------------------------------------------------------------------------------- run lock


class RunLock:
    """One run per output folder: ``<folder>/train.lock`` holds the owner's pid and host, created
    atomically (``O_CREAT | O_EXCL``). A second run refuses with a :class:`UsageError` naming the
    first; a lock left by a process of this host that no longer runs is taken over (:attr:`note`
    says so). Released (the file removed) by :meth:`release` or on leaving a ``with`` block."""

    NAME = "train.lock"

    def __init__(self, folder: Path, flag: str = "--out") -> None:
        self.path, self.flag, self.held, self.note = folder / self.NAME, flag, False, ""

    def _owner(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:
                    raise UsageError(
                        f"{self.flag} {self.path.parent}: locked by {self.path}, which cannot be read; if no run "
                        "uses this folder, delete that file"
                    ) from None
                pid, host = owner.get("pid"), owner.get("host")
                stale = host == me["host"] and isinstance(pid, int) and pid != os.getpid() and not _process_alive(pid)
                if not stale:
                    raise UsageError(
                        f"{self.flag} {self.path.parent}: another run uses this folder (pid {pid} on {host}, since "
                        f"{owner.get('started')}; lock {self.path}); wait for it to end or give another {self.flag}"
                    ) from None
                if self._owner() == owner:  # still the stale one: take it over
                    self.path.unlink(missing_ok=True)
                    self.note = f"took over {self.path}: its run (pid {pid} on {host}) no longer runs"
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return self
        raise UsageError(f"{self.flag} {self.path.parent}: could not take the lock {self.path} (another run is starting?)")

    def release(self) -> None:
        if self.held:
            self.held = False
            if (self._owner() or {}).get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


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
