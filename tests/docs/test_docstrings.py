"""Every public name has a docstring example, and every name of ``__all__`` imports.

The examples themselves run as doctests through pytest's own collection (``--doctest-modules`` in
pyproject.toml); this file checks that none is missing, deriving the modules from the package
(every public module with a class or function in its ``__all__``) rather than from a hand-kept list.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil

import pytest

import contrastive_sr_losses as csl

TRITON = importlib.util.find_spec("triton") is not None

def _defining_modules() -> list[str]:
    """Every public module (no ``_``-prefixed part in its name) that defines a class or function
    listed in its own ``__all__``."""
    found = []
    for info in pkgutil.walk_packages(csl.__path__, "contrastive_sr_losses."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name.endswith("pixel_contrastive_triton") and not TRITON:
            continue
        module = importlib.import_module(info.name)
        own = [getattr(module, n, None) for n in getattr(module, "__all__", [])]
        if any((inspect.isclass(o) or inspect.isfunction(o)) and o.__module__ == info.name for o in own):
            found.append(info.name)
    return found


def _examples(module_name: str) -> int:
    module = importlib.import_module(module_name)
    return sum(len(test.examples) for test in doctest.DocTestFinder().find(module))


@pytest.mark.parametrize("name", _defining_modules())
def test_every_module_of_the_public_api_has_a_docstring_example(name):
    assert _examples(name) > 0, f"{name} defines public names but has no docstring example"


def test_the_public_api_is_found():
    # the derivation above must see the package's main modules (guards against an empty parametrization)
    found = _defining_modules()
    assert {"contrastive_sr_losses.losses.pixel_contrastive", "contrastive_sr_losses.kernels"} <= set(found)
    assert len(found) >= 30, found


def test_public_api_exported():
    for name in csl.__all__:
        assert hasattr(csl, name), name
    assert csl.__version__ == "0.2.0"
