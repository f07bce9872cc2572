"""Helpers shared by the tests of the example scripts: the path of ``examples/`` and a script loader."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))  # for ``import srkit``


def load_script(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (its ``main(argv)`` is what the tests call)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
