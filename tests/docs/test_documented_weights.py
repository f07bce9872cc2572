"""The command that docs/training.md gives for scoring the loss study's committed weights on your own
images runs as written: its weights files exist, load, and give an SR image better than noise."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest

from tests._paths import ROOT

PIL = pytest.importorskip("PIL.Image")
evaluate = pytest.importorskip("srkit.evaluate")

# for w in a b; do
#   python examples/evaluate.py ... --weights ".../${w}__seed0.pt" --test path/to/your/images ...
# done
LOOP = re.compile(r"for (\w+) in ([^;\n]+); do\n(.*?)\ndone", re.S)


def documented_runs() -> list[list[str]]:
    """The argv of each evaluate.py call of the training page's weights loop, ``${w}`` filled in."""
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    runs = []
    for var, values, body in LOOP.findall(text):
        if "examples/evaluate.py" not in body or "--weights" not in body:
            continue
        for value in values.split():
            argv = shlex.split(body.replace("\\\n", " ").replace(f"${{{var}}}", value))
            assert argv[:2] == ["python", "examples/evaluate.py"], argv
            runs.append(argv[2:])
    return runs


RUNS = documented_runs()


def test_the_training_page_documents_the_weights_command():
    assert len(RUNS) >= 2, "docs/training.md: the loop that evaluates the study's weights is gone"
    for argv in RUNS:
        assert "path/to/your/images" in argv and "--weights" in argv


@pytest.mark.parametrize("argv", RUNS, ids=[a[a.index("--weights") + 1].rsplit("/", 1)[-1] for a in RUNS])
def test_documented_weights_command_runs_on_a_folder_of_images(argv, tmp_path):
    weights = ROOT / argv[argv.index("--weights") + 1]
    assert weights.is_file(), f"docs/training.md names {weights.relative_to(ROOT)}, which is not committed"
    # a smooth 96x96 photo-like image: the networks must beat a flat grey guess on it by a wide margin
    y, x = np.mgrid[0:96, 0:96] / 96.0
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + k) * np.cos(4 * y) for k in range(3)], -1)
    folder = tmp_path / "mine"
    folder.mkdir()
    PIL.fromarray((img * 255).round().astype(np.uint8)).save(folder / "waves.png")
    argv = [str(folder) if a == "path/to/your/images" else a for a in argv]
    argv[argv.index("--weights") + 1] = str(weights)
    out = evaluate.main([*argv, "--lpips", "none", "--no-progress", "--threads", "1"])
    assert out["scale"] == 4
    (label,) = out["results"]  # --no-bicubic: the one network only
    score = out["results"][label]["mine"]
    assert 25.0 < score["psnr"] < 80.0  # a flat grey guess scores about 16 dB on it
