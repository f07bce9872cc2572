"""mkdocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

1. Serve the loss study's plots from benchmarks/results/ (the one copy in the repository) under the
   same path in the site, so pages link ``benchmarks/results/<name>.png`` without a duplicate.
2. Read a docstring's ``Example:`` section (the package's docstrings say ``Example:``, as kornia's
   do) as an examples section, like ``Examples:``, so its doctest renders as code rather than prose.
   Griffe's Google-style parser knows only the plural; the mapping it reads is extended here.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files


def on_config(config):  # noqa: ANN001, ANN201  (mkdocs' hook signature)
    try:
        from griffe import DocstringSectionKind
        from griffe._internal.docstrings import google
    except ImportError:  # another griffe layout: Example sections then render as text
        return config
    google._section_kind.setdefault("example", DocstringSectionKind.examples)
    return config


def on_files(files: Files, config) -> Files:  # noqa: ANN001
    root = Path(config["config_file_path"]).parent
    for png in sorted((root / "benchmarks" / "results").glob("*.png")):
        files.append(
            File(f"benchmarks/results/{png.name}", src_dir=str(root), dest_dir=config["site_dir"],
                 use_directory_urls=config["use_directory_urls"])
        )
    return files
