"""Shared pieces of the example scripts ``examples/train.py`` and ``examples/evaluate.py``.

- :mod:`srkit.data`: HR folders -> 8-bit (LR, HR) pairs made with the MATLAB-compatible
  :func:`~contrastive_sr_losses.metrics.imresize` (cached), random patches, a resumable sampler.
- :mod:`srkit.losses`: the ``--loss`` spec grammar, the loss registry and the papers' recipes.
- :mod:`srkit.runtime`: checkpoints (atomic), RNG, distributed set-up, user errors.
- :mod:`srkit.evaluation`: PSNR-Y / SSIM-Y / LPIPS over test folders, tables, images, curves.

The scripts put ``examples/`` on ``sys.path`` (Python does that for a script's own folder), so
``import srkit`` works from ``python examples/train.py`` and from ``torchrun examples/train.py``.
"""
