"""Test-session set-up shared by the test suite (``tests/``) and the doctests of the package
(``--doctest-modules``, pyproject.toml), so it sits at the repository root.

Without a CUDA device, the Triton kernels of the package are tested in Triton's interpreter, on CPU
tensors: ``triton.jit`` reads ``TRITON_INTERPRET`` when a kernel is *decorated*, i.e. when
``contrastive_sr_losses`` is first imported, so it is set here, before any test module imports the
package. With CUDA the kernels are compiled and the same tests run on the GPU. An explicit
``TRITON_INTERPRET`` in the environment is left as it is.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# The framework-integration driver runs in its own environment (.ci/integration.sh), never in this suite.
collect_ignore = ["tests/integrations/real_frameworks"]
try:  # the Triton kernels' module imports triton (optional; the package itself never needs it)
    import triton  # noqa: F401
except ImportError:
    collect_ignore.append("contrastive_sr_losses/kernels/pixel_contrastive_triton.py")


@pytest.fixture(scope="session", autouse=True)
def _doctest_torch(doctest_namespace: dict) -> None:
    """Docstring examples may use ``torch`` without importing it (as the package's examples do)."""
    doctest_namespace["torch"] = torch
