"""The documentation site builds with ``mkdocs build --strict`` and its API reference names public objects only."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
    except FileNotFoundError:  # pragma: no cover
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]'")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").is_file()
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "create_model" in api and "load_pretrained" in api
    models = (site / "reference" / "models" / "index.html").read_text(encoding="utf-8")
    assert "ResNet" in models and "in_channels" in models  # constructor arguments rendered from the docstrings
    assert (site / "images" / "vae_samples.png").is_file()


def test_the_api_reference_names_only_public_objects():
    """``::: zoo.X`` / ``::: datamodules.X``, never a module path inside the packages (they may move)."""
    names = re.findall(r"^::: (\S+)", "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md")), flags=re.M)
    assert len(names) > 40
    for name in names:
        package, _, attr = name.partition(".")
        assert package in ("zoo", "datamodules") and attr and "." not in attr, name
        assert hasattr(importlib.import_module(package), attr), name


def test_every_model_class_and_datamodule_is_in_the_reference():
    import datamodules
    import zoo

    reference = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    for name in zoo.list_models():
        assert f"::: zoo.{zoo.get_model_class(name).__name__}\n" in reference, name
    for name in dir(datamodules):
        if name.endswith("DataModule") and name not in ("ZooDataModule", "ImageDataModule", "TextDataModule"):
            assert f"::: datamodules.{name}\n" in reference, name


def test_every_image_is_shown_on_a_page():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    for image in (DOCS / "images").iterdir():
        assert f"images/{image.name})" in pages, image.name
