"""The benchmark and study scripts, a package so that the tests import them by name
(``benchmarks.loss_study``, from the repository root). Run them as scripts, ``python
benchmarks/<script>.py`` (``python -m benchmarks.high_pass_sigma``, which imports the quickstart).
"""
