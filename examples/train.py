"""Train an SR network with the kit's ``srkit.train`` (``python -m srkit.train`` is the same command).

    python examples/train.py --arch edsr_baseline --scale 4 --loss 'l1+0.1*pixel_contrastive' \\
        --train DIV2K/DIV2K_train_HR --test Set5 Set14 B100 Urban100 --out runs/edsr_x4_pc

    torchrun --nproc_per_node 4 examples/train.py ...            # DistributedDataParallel, one GPU each

Every option: ``python examples/train.py --help`` (documentation in ``srkit/train.py``).
"""

from srkit.train import cli

if __name__ == "__main__":
    raise SystemExit(cli())
