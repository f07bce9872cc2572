"""Reading weight and state files safely (the one place the package calls ``torch.load``), and
writing them atomically (:func:`atomic_save`).

Every file is read with ``torch.load(weights_only=True)``: tensors and plain Python values (dicts,
lists, tuples, str, numbers, None) only. A file whose pickle names any other Python callable (a
``__reduce__`` payload that would run a command) is refused before anything of it runs, with one line
naming the file; so is a truncated or foreign file.

Public (formerly the private ``_io``): the training kit ``srkit`` writes and reads its
checkpoints with these two functions.

Example:
    >>> import tempfile, pathlib
    >>> from contrastive_sr_losses.serialization import atomic_save, load_tensors_file
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.pt"
    >>> atomic_save({"step": 3, "w": torch.ones(2)}, path)
    >>> load_tensors_file(path, "state")["w"]
    tensor([1., 1.])
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_tensors_file", "atomic_save"]

_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(.+)")


def load_tensors_file(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    allowed: list[Any] | tuple[Any, ...] = (),
    error: type[Exception] = ValueError,
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    Args:
        path: the file.
        what: what the file is meant to hold, for the messages (``"VGG19 weights"``).
        allowed: extra types the unpickler may build (``torch.serialization.safe_globals`` entries,
            e.g. the numpy types of an older file format); nothing else is allowed.
        error: the exception type raised (``ValueError`` unless a caller documents another).

    Raises:
        FileNotFoundError: no such file.
        error: ``"<path>: refused: it holds a pickled Python object (<callable>) ..."`` for a file that
            would run code when unpickled (nothing of it has run), or ``"cannot read the <what> ..."``
            for a truncated, corrupt or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = _UNSAFE_GLOBAL.search(text)
        if found:  # a callable or class the file wants built: the payload of a crafted pickle
            raise error(
                f"{path}: refused: it holds a pickled Python object ({found[1]}) that loading would have to "
                "execute; only tensors and plain values are read (torch.load weights_only=True), and nothing "
                "of it was run"
            ) from None
        detail = _UNPICKLER_ERROR.search(text)
        reason = detail[1].strip() if detail else text.strip().splitlines()[0]
        raise error(f"cannot read the {what} from {path}: not a torch.save file of tensors ({reason[:160]})") from None
    except Exception as err:  # truncated (zip: "failed finding central directory"), foreign or corrupt
        raise error(f"cannot read the {what} from {path}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 160:  # torch's zip reader explains at length
        first = first[:157] + "..."
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in ``path``'s folder, flush + fsync, then ``os.replace``.

    A crash or a kill at any moment leaves either the previous file or the new one, never a torn one;
    the temporary (``.<name>.tmp<pid>``) is removed on any failure.
    """
    path = Path(path)
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
