"""Integration checks against the real BasicSR 1.4.2 and spandrel 0.4.2 (run by ``.ci/integration.sh``
in its own environment; not collected by the main test suite, which never needs either package).

1. BasicSR's own ``train_pipeline`` trains its EDSR for 20 iterations on a tiny paired dataset of real
   images with ``pixel_opt`` L1 and ``perceptual_opt`` our ``CSRPixelContrastiveLoss``, then resumes
   from its saved training state for 10 more; the same with PCL (``CSRPCLLoss``, ``model_type:
   CSRSRModel``): 4 iterations, resume, 4 more, the discriminator's state carried through; and the
   loss study's best objective in the single ``pixel_opt`` slot (``CSRCombinedLoss``, no perceptual
   loss) for 6 iterations, then ``--auto_resume`` for 4 more; and README's / the docs' BasicSR launcher
   snippet, saved as ``train.py`` and run as written for 2 iterations.
2. Our ``edsr_baseline``, ``rcan`` and ``swinir_light`` load the randomly initialised weights of
   BasicSR's own arch classes (published configurations) with identical outputs.
3. spandrel recognises the state dicts our RCAN and SwinIR-light export and gives identical outputs.

Prints one line per check and ends with ``N passed, N failed``; exits 1 if any failed.
Usage: ``PYTHONPATH=. python tests/integrations/real_frameworks/run_integration.py [WORK_DIR]`` from the repository
root (``.ci/integration.sh`` does so: its environment is shared between checkouts and does not install
this one, so the checkout under test is the one on ``PYTHONPATH``).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

from contrastive_sr_losses.archs import create_model, export_state_dict  # noqa: E402
from contrastive_sr_losses.functional import imresize  # noqa: E402
from contrastive_sr_losses.integrations.state import load_loss_state  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
SCALE, HR_SIDE, N_IMAGES = 4, 96, 8
CHECKS: list[Callable[[Path], None]] = []


def check(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    CHECKS.append(fn)
    return fn


# ------------------------------------------------------------------------------------------------
# data and BasicSR runs
# ------------------------------------------------------------------------------------------------
def source_images() -> tuple[list[np.ndarray], str]:
    """RGB uint8 images: T91 / Set5 from ``../shared/data`` when present, else scikit-image's photos."""
    files = sorted(SHARED_DATA.glob("T91/*.png"))[:N_IMAGES] or sorted(SHARED_DATA.glob("Set5/*.png"))
    if files:
        return [np.array(Image.open(f).convert("RGB")) for f in files], str(files[0].parent)
    from skimage import data

    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry"]
    images = [getattr(data, n)()[..., :3] for n in names]
    # scikit-image >= 0.19 has stereo_motorcycle() (left, right, disparity); older ones motorcycle_left()
    motorcycle = data.stereo_motorcycle()[0] if hasattr(data, "stereo_motorcycle") else data.motorcycle_left()
    return [*images, motorcycle[..., :3]], "scikit-image data"


def write_dataset(root: Path) -> str:
    """N_IMAGES HR crops (96x96) and their x4 LR images (MATLAB bicubic), same file names: centre crops,
    then, where there are fewer source images (scikit-image has 6), top-left crops of the first ones, so
    the runs' iteration counts (batch 4, BasicSR drops the last partial batch) do not depend on the source."""
    images, origin = source_images()
    for sub in ("gt", "lq"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(max(N_IMAGES, len(images))):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        top, left = ((h - HR_SIDE) // 2, (w - HR_SIDE) // 2) if i < len(images) else (0, 0)
        hr = img[top : top + HR_SIDE, left : left + HR_SIDE]
        lr = imresize(torch.from_numpy(hr).permute(2, 0, 1).double() / 255, 1 / SCALE)
        lr = (lr.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(hr).save(root / "gt" / f"{i:03d}.png")
        Image.fromarray(lr).save(root / "lq" / f"{i:03d}.png")
    return f"{max(N_IMAGES, len(images))} pairs from {origin}"


def options(data: Path, name: str, total_iter: int, save_every: int, perceptual: str, model_type: str = "SRModel",
            resume_state: str | None = None, pixel: str = "{type: L1Loss, loss_weight: 1.0, reduction: mean}") -> str:
    """A BasicSR training YAML: its EDSR (16 channels, 2 blocks) at x4, L1 + ``perceptual`` on CPU."""
    return f"""
name: {name}
model_type: {model_type}
scale: {SCALE}
num_gpu: 0
manual_seed: 0
datasets:
  train:
    name: tiny
    type: PairedImageDataset
    dataroot_gt: {data / 'gt'}
    dataroot_lq: {data / 'lq'}
    filename_tmpl: '{{}}'
    io_backend: {{type: disk}}
    gt_size: 48
    use_hflip: true
    use_rot: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 4
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
network_g: {{type: EDSR, num_in_ch: 3, num_out_ch: 3, num_feat: 16, num_block: 2, upscale: {SCALE}, res_scale: 1, img_range: 255.}}
path:
  pretrain_network_g: ~
  strict_load_g: true
  resume_state: {resume_state or '~'}
train:
  ema_decay: 0
  optim_g: {{type: Adam, lr: !!float 2e-4, weight_decay: 0, betas: [0.9, 0.99]}}
  scheduler: {{type: MultiStepLR, milestones: [1000], gamma: 0.5}}
  total_iter: {total_iter}
  warmup_iter: -1
  pixel_opt: {pixel}
  perceptual_opt: {perceptual}
logger:
  print_freq: 1
  save_checkpoint_freq: {save_every}
  use_tb_logger: false
  wandb: {{project: ~, resume_id: ~}}
"""


def train(root: Path, yml: str, tag: str, *extra: str) -> str:
    """Run the launcher (README's recipe) on ``yml`` from ``root``; return its log output."""
    path = root / f"{tag}.yml"
    path.write_text(yml)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(HERE / "basicsr_train.py"), "-opt", str(path), *extra], cwd=root,
                          capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    (root / f"{tag}.out").write_text(out)
    if proc.returncode:
        raise AssertionError(f"train_pipeline exited {proc.returncode}: ...{out[-1500:]}")
    return out


LOG_LINE = re.compile(r"iter:\s*([\d,]+).*?\]\s*(.*)$")


def logged(out: str) -> dict[int, dict[str, float]]:
    """Iteration -> the losses BasicSR's MessageLogger printed for it."""
    found = {}
    for line in out.splitlines():
        m = LOG_LINE.search(line)
        if m and "l_pix" in line:
            losses = dict(re.findall(r"(l_\w+): ([-+\d.eE]+|nan|inf)", m.group(2)))
            found[int(m.group(1).replace(",", ""))] = {k: float(v) for k, v in losses.items()}
    return found


def assert_losses(log: dict[int, dict[str, float]], first: int, last: int, keys: set[str]) -> None:
    assert sorted(log) == list(range(first, last + 1)), f"logged iterations {sorted(log)}, expected {first}..{last}"
    for it, losses in log.items():
        assert set(losses) == keys, f"iter {it}: logged {sorted(losses)}, expected {sorted(keys)}"
        assert all(math.isfinite(v) for v in losses.values()), f"iter {it}: non-finite loss {losses}"


@check
def basicsr_pixel_contrastive_train_and_resume(work: Path) -> str:
    root = work / "basicsr_pcl_pixel"
    root.mkdir()
    info = write_dataset(root / "data")
    percep = "{type: CSRPixelContrastiveLoss, loss_weight: 0.1, region: 8}"
    out = train(root, options(root / "data", "pixel", 20, 20, percep), "first")
    exp = root / "experiments" / "pixel"
    assert_losses(logged(out), 1, 20, {"l_pix", "l_percep"})
    assert (exp / "models" / "net_g_20.pth").is_file() and (exp / "training_states" / "20.state").is_file()
    first_weights = torch.load(exp / "models" / "net_g_20.pth", weights_only=True)["params"]
    state = str(exp / "training_states" / "20.state")
    out = train(root, options(root / "data", "pixel", 30, 30, percep, resume_state=state), "resume")
    assert "Resuming training from epoch: " in out and "iter: 20." in out, "no resume message"
    assert_losses(logged(out), 21, 30, {"l_pix", "l_percep"})
    last = torch.load(exp / "models" / "net_g_30.pth", weights_only=True)["params"]
    assert any(not torch.equal(first_weights[k], last[k]) for k in last), "resumed run did not train"
    return f"{info}; iterations 1-20, resumed 21-30, finite l_pix / l_percep, net_g_20/30.pth and 20.state"


@check
def basicsr_single_slot_holds_the_study_best_objective_and_auto_resumes(work: Path) -> str:
    root = work / "basicsr_combined"
    root.mkdir()
    write_dataset(root / "data")
    pixel = ("{type: CSRCombinedLoss, slot: pixel, loss_weight: 1.0, "
             "terms: {l1: 1.0, pixel_contrastive: 0.1, high_pass: [1.5, {sigma: 1.0}]}}")
    out = train(root, options(root / "data", "combined", 6, 6, "~", pixel=pixel), "first")
    assert_losses(logged(out), 1, 6, {"l_pix"})
    states = root / "experiments" / "combined" / "training_states"
    assert (states / "6.state").is_file()
    out = train(root, options(root / "data", "combined", 10, 10, "~", pixel=pixel), "auto", "--auto_resume")
    assert "iter: 6." in out, "--auto_resume did not resume from 6.state"
    assert_losses(logged(out), 7, 10, {"l_pix"})
    assert not list((root / "experiments").glob("combined_archived_*")), "the experiment was archived, not resumed"
    return "pixel_opt CSRCombinedLoss (L1 + 0.1 PC + 1.5 HP), perceptual_opt ~: iterations 1-6, --auto_resume 7-10"


@check
def basicsr_launcher_snippets_of_the_docs_run_as_written(work: Path) -> str:
    """Every ``# framework: basicsr`` python block of README.md and docs/ is saved as ``train.py`` and run
    as the page says (``python train.py -opt ...``) on a 2-iteration CPU training with CSRCombinedLoss."""
    blocks = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for match in re.finditer(r"^[ \t]*```python[^\n]*\n(.*?)^[ \t]*```", page.read_text(), re.M | re.S):
            code = textwrap.dedent(match.group(1))
            if code.startswith("# framework: basicsr"):
                blocks.append((page.relative_to(ROOT), code))
    assert blocks, "no BasicSR launcher snippet found in README.md or docs/"
    for i, (page, code) in enumerate(blocks):
        root = work / f"snippet_{i}"
        root.mkdir()
        write_dataset(root / "data")
        (root / "train.py").write_text(code)
        pixel = "{type: CSRCombinedLoss, slot: pixel, terms: {l1: 1.0, pixel_contrastive: 0.1, high_pass: 1.5}}"
        (root / "options.yml").write_text(options(root / "data", "snippet", 2, 2, "~", pixel=pixel))
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run([sys.executable, "train.py", "-opt", "options.yml"], cwd=root, capture_output=True,
                              text=True, env=env, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{page}: the launcher exited {proc.returncode}: ...{out[-1500:]}"
        assert_losses(logged(out), 1, 2, {"l_pix"})
    return f"{len(blocks)} launcher snippet(s) ({', '.join(str(p) for p, _ in blocks)}) trained 2 iterations each"


@check
def basicsr_pcl_state_rides_in_the_training_state(work: Path) -> str:
    root = work / "basicsr_pcl"
    root.mkdir()
    write_dataset(root / "data")
    percep = "{type: CSRPCLLoss, loss_weight: 1.0, channels: [8, 8, 16, 16], strides: [1, 2, 1, 2], layers: [0, 2]}"
    out = train(root, options(root / "data", "pcl", 4, 4, percep, "CSRSRModel"), "first")
    assert_losses(logged(out), 1, 4, {"l_pix", "l_percep"})
    states = root / "experiments" / "pcl" / "training_states"
    saved = load_loss_state(states / "4.state.contrastive_sr_losses")  # beside BasicSR's file, weights_only=True
    assert saved["cri_perceptual"]["steps"] == 4, saved["cri_perceptual"]["steps"]
    out = train(root, options(root / "data", "pcl", 8, 4, percep, "CSRSRModel", str(states / "4.state")), "resume")
    assert_losses(logged(out), 5, 8, {"l_pix", "l_percep"})
    again = load_loss_state(states / "8.state.contrastive_sr_losses")
    assert again["cri_perceptual"]["steps"] == 8, f"discriminator steps {again['cri_perceptual']['steps']}: not resumed"
    return "CSRSRModel: discriminator steps 4 beside 4.state, 8 beside 8.state after the resume"


# ------------------------------------------------------------------------------------------------
# weights: BasicSR's arch classes and spandrel
# ------------------------------------------------------------------------------------------------
def assert_same(ours: torch.nn.Module, theirs: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                atol: float = 1e-12) -> float:
    """Both in float64 on ``x`` (the foreign forward gets a copy: spandrel's RCAN scales it in place)."""
    with torch.no_grad():
        a, b = ours.double().eval()(x), theirs(x.clone())
    assert a.shape == b.shape, f"shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = (a - b).abs().max().item()
    assert diff <= atol, f"max |difference| {diff:.3g} > {atol:g}"
    return diff


def basicsr_archs() -> dict[str, torch.nn.Module]:
    """BasicSR's own classes with the published configurations, randomly initialised."""
    from basicsr.archs.edsr_arch import EDSR
    from basicsr.archs.rcan_arch import RCAN
    from basicsr.archs.swinir_arch import SwinIR

    torch.manual_seed(0)
    return {
        "edsr_baseline": EDSR(3, 3, num_feat=64, num_block=16, upscale=SCALE),
        "rcan": RCAN(3, 3, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=SCALE),
        "swinir_light": SwinIR(upscale=SCALE, img_size=64, window_size=8, img_range=1.0, depths=[6, 6, 6, 6],
                               embed_dim=60, num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler="pixelshuffledirect"),
    }


@check
def our_archs_load_basicsr_weights_with_identical_outputs(work: Path) -> str:
    results = []
    x = torch.rand(1, 3, 8, 16, dtype=torch.float64)  # SwinIR: a multiple of its window, as BasicSR's needs
    for name, theirs in basicsr_archs().items():
        path = work / f"{name}_basicsr.pth"
        torch.save({"params": theirs.state_dict()}, path)  # as BasicSR's save_network writes it
        ours = create_model(name, scale=SCALE, weights=path)
        assert ours.weights_info.layout == "basicsr", ours.weights_info
        diff = assert_same(ours, theirs.double().eval(), x)
        results.append(f"{name} {diff:.0e}")
    return "max |difference| " + ", ".join(results)


@check
def spandrel_reads_our_rcan_and_swinir_exports_with_identical_outputs(work: Path) -> str:
    from spandrel import ModelLoader

    results = []
    torch.manual_seed(1)
    # RCAN's mean shift: spandrel's float32 constant is 255 * mean, ours mean (times 255 in float64),
    # which differ by float32 rounding: ~3e-8 on the output, under one float32 step of a value near 1
    for name, layout, arch_id, atol in (("rcan", "original", "RCAN", 1e-7), ("swinir_light", "basicsr", "SwinIR", 1e-12)):
        ours = create_model(name, scale=SCALE).eval()
        path = work / f"{name}_for_spandrel.pth"
        torch.save(export_state_dict(ours, layout), path)
        descriptor = ModelLoader().load_from_file(str(path))
        assert descriptor.architecture.id == arch_id and descriptor.scale == SCALE, (descriptor.architecture.id, descriptor.scale)
        theirs = descriptor.model.double().eval()
        diff = assert_same(ours, theirs, torch.rand(1, 3, 8, 12, dtype=torch.float64), atol)
        results.append(f"{name} recognised as {arch_id} ({layout} layout), max |difference| {diff:.0e}")
    return ", ".join(results)


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="csr-integration-"))
    work.mkdir(parents=True, exist_ok=True)
    import basicsr
    import spandrel

    print(f"torch {torch.__version__}, basicsr {basicsr.__version__}, spandrel {spandrel.__version__}; work dir {work}")
    passed = failed = 0
    for fn in CHECKS:
        start = time.perf_counter()
        try:
            detail = fn(work)
            passed += 1
            print(f"PASSED {fn.__name__} ({time.perf_counter() - start:.0f} s): {detail}", flush=True)
        except Exception as exc:  # report every check, then fail the step
            failed += 1
            print(f"FAILED {fn.__name__} ({time.perf_counter() - start:.0f} s): {exc}", flush=True)
            traceback.print_exc()
    started = float(os.environ.get("CSR_INTEGRATION_START", 0)) or None
    if started:
        print(f"integration step took {time.time() - started:.0f} s (environment and checks)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
