"""Every ```python block of README.md and docs/**/*.md runs as written.

A block is run in a fresh namespace, in a temporary working directory, exactly as the page shows
it (imports and inputs included). A block whose first line is ``# framework: basicsr`` (or
``traiNNer``, ``neosr``) is a launcher of that framework: here it runs against the stand-ins of
``tests/integrations/_frameworks.py`` with a fake ``train_pipeline`` that records the call; the BasicSR ones also
run for real in the integration step (``.ci/integration.sh``, ``tests/integrations/real_frameworks/run_integration.py``).
"""

from __future__ import annotations

import re
import sys
import textwrap
import types

import pytest

import tests.integrations._frameworks as fw
from tests._paths import ROOT

BLOCK = re.compile(r"^([ \t]*)```python[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
FRAMEWORK = re.compile(r"^# framework: (basicsr|traiNNer|neosr)\b")


def snippets() -> list[tuple[str, str]]:
    """(``file:line``, code) of every python block of README.md and docs/."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", textwrap.dedent(match.group(2))))
    return found


SNIPPETS = snippets()


def test_there_are_snippets_in_readme_and_docs():
    places = {where.split(":")[0] for where, _ in SNIPPETS}
    assert "README.md" in places and any(p.startswith("docs/") for p in places)


def _fake_train_pipeline(monkeypatch, module_name: str, calls: list) -> None:
    """A module ``module_name`` (``basicsr.train`` or ``train``) whose train_pipeline records its root."""
    module = types.ModuleType(module_name)
    module.train_pipeline = lambda root: calls.append(root)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module_name, module)
    if module_name == "basicsr.train":
        monkeypatch.setattr(sys.modules["basicsr"], "train", module, raising=False)


@pytest.mark.parametrize("where, code", SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_snippet_runs_as_written(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__snippet__", "__file__": str(tmp_path / "train.py")}
    framework = FRAMEWORK.match(code)
    if framework:
        name = framework.group(1)
        fw.install(name, monkeypatch)
        calls: list = []
        _fake_train_pipeline(monkeypatch, "basicsr.train" if name == "basicsr" else "train", calls)
        exec(compile(code, where, "exec"), namespace)  # noqa: S102
        assert calls in ([], [str(tmp_path)]), calls
        return
    exec(compile(code, where, "exec"), namespace)  # noqa: S102


def test_readme_is_short_and_links_into_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for page in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / page).is_file(), page


def test_the_docs_site_has_the_pages_newcomers_need():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in ("install.md", "quickstart.md", "choosing-a-loss.md", "value-range.md", "frameworks.md",
                 "checkpoints.md", "gpu-check.md", "loss-study.md", "api.md", "references.md", "changelog.md"):
        assert f": {page}" in nav and (ROOT / "docs" / page).is_file(), page
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bseed 00\d|SPEC\.md", text), f"{path.name} cites the internal filing, not the paper"
