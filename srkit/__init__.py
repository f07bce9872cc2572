"""srkit: the training and evaluation kit of contrastive-sr-losses.

- :mod:`srkit.train`: train an SR network with any loss of the library or a paper's recipe
  (``python -m srkit.train``; ``python examples/train.py`` and ``torchrun ... examples/train.py`` run
  the same ``srkit.train.cli``).
- :mod:`srkit.evaluate`: PSNR-Y / SSIM-Y / LPIPS of checkpoints on test folders (``python -m
  srkit.evaluate``, ``python examples/evaluate.py``).

- :mod:`srkit.data`: HR folders -> 8-bit (LR, HR) pairs made with the MATLAB-compatible
  :func:`~contrastive_sr_losses.metrics.imresize` (cached), random patches, a resumable sampler.
- :mod:`srkit.losses`: the ``--loss`` spec grammar, the loss registry and the papers' recipes.
- :mod:`srkit.runtime`: checkpoints (atomic), RNG, distributed set-up, user errors.
- :mod:`srkit.evaluation`: PSNR-Y / SSIM-Y / LPIPS over test folders, tables, images, curves.

It is a package of its own, beside ``contrastive_sr_losses`` and shipped in the same wheel: the
library's claims (the loss study in ``benchmarks/loss_study.py``, the papers' recipes, the committed
study weights) are reproduced with this kit, so ``python -m srkit.train`` / ``python -m
srkit.evaluate`` work from a plain ``pip install contrastive-sr-losses``, not only from a checkout. It
depends only on torch, numpy and the library's public API (no private name of the library);
its extra needs (Pillow, tqdm, matplotlib, scikit-image for the bundled photos) are the ``examples``
extra: ``pip install "contrastive-sr-losses[examples]"``.
"""

import importlib.util as _util

_MISSING = [pkg for pkg, module in (("Pillow", "PIL"), ("tqdm", "tqdm")) if _util.find_spec(module) is None]
if _MISSING:  # a plain `pip install contrastive-sr-losses` has the library, not the kit's image I/O
    raise ModuleNotFoundError(
        f"srkit needs {' and '.join(_MISSING)} (image files, progress bars): "
        'pip install "contrastive-sr-losses[examples]"',
        name=_MISSING[0],
    )
