"""Every public name has a docstring example, and every name of ``__all__`` imports.

The examples themselves run as doctests through pytest's own collection (``--doctest-modules`` in
pyproject.toml); this file checks that none is missing, deriving the modules from the public API rather
than from a hand-kept list.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import contrastive_sr_losses as csl

PUBLIC_PACKAGES = [
    "contrastive_sr_losses",
    "contrastive_sr_losses.losses",
    "contrastive_sr_losses.functional",
    "contrastive_sr_losses.embeddings",
    "contrastive_sr_losses.archs",
    "contrastive_sr_losses.metrics",
    "contrastive_sr_losses.integrations",
]


def _defining_modules() -> list[str]:
    """The modules that define a class or function exported by a public package's ``__all__``."""
    names = set()
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.add(obj.__module__)
    return sorted(n for n in names if n.startswith("contrastive_sr_losses"))


def _examples(module_name: str) -> int:
    module = importlib.import_module(module_name)
    return sum(len(test.examples) for test in doctest.DocTestFinder().find(module))


@pytest.mark.parametrize("name", _defining_modules())
def test_every_module_of_the_public_api_has_a_docstring_example(name):
    assert _examples(name) > 0, f"{name} defines public names but has no docstring example"


def test_the_public_api_is_found():
    # the derivation above must see the package's main modules (guards against an empty parametrization)
    found = _defining_modules()
    assert "contrastive_sr_losses.losses.pixel_contrastive" in found
    assert len(found) >= 20, found


def test_public_api_exported():
    for name in csl.__all__:
        assert hasattr(csl, name), name
    assert csl.__version__ == "0.2.0"
