"""Fixtures shared by the test suite: the devices and dtypes the losses are tested on.

``device`` is CPU, plus CUDA when a CUDA device is present (those cases carry the ``gpu`` mark), so a
CUDA machine runs the same tests on both devices rather than a separate set; ``dtype`` is each float
type the losses accept. A test that takes both runs once per pair.
"""

from __future__ import annotations

import pytest
import torch

DEVICES = [pytest.param(torch.device("cpu"), id="cpu")]
if torch.cuda.is_available():
    DEVICES.append(pytest.param(torch.device("cuda"), id="cuda", marks=pytest.mark.gpu))

DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float16, id="float16"),
    pytest.param(torch.bfloat16, id="bfloat16"),
]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each device of this machine: CPU, and CUDA when present."""
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Each float dtype the losses accept: float32, float16, bfloat16."""
    return request.param
