"""The docstring examples of every public module run as doctests."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = [
    "contrastive_sr_losses",
    "contrastive_sr_losses.losses.pixel_contrastive",
    "contrastive_sr_losses.balance",
    "contrastive_sr_losses.losses.combined",
    "contrastive_sr_losses.losses.registry",
    "contrastive_sr_losses._range",
    "contrastive_sr_losses.kernels.selfcheck",
    "contrastive_sr_losses.functional.color",
    "contrastive_sr_losses.metrics",
    "contrastive_sr_losses.functional.filters",
    "contrastive_sr_losses.losses.high_pass",
    "contrastive_sr_losses.losses.ratio_contrastive",
    "contrastive_sr_losses.losses.random_conv",
    "contrastive_sr_losses.embeddings.random_conv",
    "contrastive_sr_losses.embeddings.vgg",
    "contrastive_sr_losses.functional.wavelets",
    "contrastive_sr_losses.samplers",
    "contrastive_sr_losses.embeddings.wavelet_discriminator",
    "contrastive_sr_losses.losses.frequency_contrastive",
    "contrastive_sr_losses.archs",
    "contrastive_sr_losses.archs.common",
    "contrastive_sr_losses.archs.edsr",
    "contrastive_sr_losses.archs.rcan",
    "contrastive_sr_losses.archs.swinir",
    "contrastive_sr_losses.archs.prffn",
    "contrastive_sr_losses.archs.rrlfn",
    "contrastive_sr_losses.archs.gidrn",
    "contrastive_sr_losses.archs.weights",
    "contrastive_sr_losses.integrations",
    "contrastive_sr_losses.integrations.adapters",
    "contrastive_sr_losses.integrations.basicsr",
    "contrastive_sr_losses.integrations.state",
    "contrastive_sr_losses.serialization",
    "contrastive_sr_losses.utils",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0


def test_public_api_exported():
    import contrastive_sr_losses as csl

    for name in csl.__all__:
        assert hasattr(csl, name), name
    assert csl.__version__ == "0.2.0"
