"""The example scripts, a package so that the tests and ``python -m benchmarks.high_pass_sigma`` can
import ``examples.quickstart`` by name (from the repository root). Run them as scripts:
``python examples/quickstart.py``, ``python examples/train.py``, ``python examples/evaluate.py``.
"""
