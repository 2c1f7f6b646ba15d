"""The layers of the zoo, as pyproject.toml declares them for import-linter, hold: ``lint-imports`` exits 0.

Contracts: tools/bench > training, serving, evaluation > hub > models > core > viz; the model families
independent of each other; datamodules beside the models (the tokenizer only); no cycles between the
sibling modules of any package. The tool reads every import, those inside functions included.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_lint_imports_keeps_every_contract():
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]
    proc = subprocess.run([*command, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_contracts_cover_every_package_of_the_zoo():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["type"]: c for c in config["contracts"]}
    layered = {m.strip() for layer in contracts["layers"]["layers"] for m in layer.replace(":", "|").split("|")}
    packages = {f"zoo.{p.name}" for p in (REPO / "zoo").iterdir() if (p / "__init__.py").is_file()}
    assert layered == packages  # every sub-package of zoo is in a layer
    families = {f"zoo.models.{p.name}" for p in (REPO / "zoo" / "models").iterdir() if (p / "__init__.py").is_file()}
    assert set(contracts["independence"]["modules"]) == families
    assert set(contracts["acyclic_siblings"]["ancestors"]) == {"zoo", "datamodules"}
