"""README's BasicSR launcher (register our losses, then BasicSR's own ``train_pipeline``), as the
integration step runs it: ``python basicsr_train.py -opt options.yml`` from the experiment root.

One addition for CPU-only machines: BasicSR 1.4.2's ``basicsr.train.load_resume_state`` maps the
resume state onto CUDA (``torch.cuda.current_device()``), which fails without a GPU; there it is
replaced by a loader onto the CPU that does what the original does: with ``--auto_resume`` it picks
the latest ``<iter>.state`` of the experiment's ``training_states`` folder (and sets
``path.resume_state`` to it), otherwise it reads ``path.resume_state``; then it calls BasicSR's own
``check_resume``. With a GPU nothing is replaced.
"""

import os
import sys
from collections import Counter

import torch

from contrastive_sr_losses.integrations import register_basicsr

register_basicsr()

import basicsr.train  # noqa: E402  (after registering, as BasicSR-examples does)


def load_resume_state_on_cpu(opt: dict) -> dict | None:
    path = opt["path"].get("resume_state")
    if opt.get("auto_resume"):
        folder = opt["path"].get("training_states") or os.path.join("experiments", opt["name"], "training_states")
        states = [f for f in os.listdir(folder) if f.endswith(".state")] if os.path.isdir(folder) else []
        path = None
        if states:
            latest = max(float(f[: -len(".state")]) for f in states)
            path = opt["path"]["resume_state"] = os.path.join(folder, f"{latest:.0f}.state")
    if not path:
        return None
    with torch.serialization.safe_globals([Counter]):  # BasicSR's schedulers keep milestones in a Counter
        state = torch.load(path, map_location="cpu", weights_only=True)
    basicsr.train.check_resume(opt, state["iter"])
    return state


if __name__ == "__main__":
    if not torch.cuda.is_available():
        basicsr.train.load_resume_state = load_resume_state_on_cpu
    basicsr.train.train_pipeline(os.getcwd())
    sys.exit(0)
