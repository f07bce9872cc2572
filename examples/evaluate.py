"""Evaluate SR networks with the kit's ``srkit.evaluate`` (``python -m srkit.evaluate`` is the same command).

    python examples/evaluate.py --checkpoint runs/l1/last.pt runs/l1_pc/last.pt \\
        --test Set5 Set14 B100 Urban100 [--lpips squeeze] [--save-images out/images]

Every option: ``python examples/evaluate.py --help`` (documentation in ``srkit/evaluate.py``).
"""

from srkit.evaluate import cli

if __name__ == "__main__":
    raise SystemExit(cli())
