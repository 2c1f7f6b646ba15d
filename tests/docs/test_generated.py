"""The generated blocks (README's model table, the recipes table, the shipped-weights table, the model cards)
equal their sources, and ``python -m zoo.tools.model_card`` finds and rewrites a stale one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import zoo
from zoo.tools import docs_tables, model_card

REPO = Path(__file__).resolve().parents[2]


def read_manifest() -> dict:
    return json.loads((REPO / "zoo" / "hub" / "shipped" / "manifest.json").read_text(encoding="utf-8"))


def test_every_generated_block_is_up_to_date():
    assert docs_tables.update(REPO, read_manifest(), check=True) == []


def test_every_model_has_a_family_page_in_the_site():
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!!python", "#"))["nav"]
    pages = str(nav)
    for name in zoo.list_models():
        page, _, _ = docs_tables.FAMILIES[docs_tables.family_of(zoo.get_model_class(name))]
        assert (REPO / "docs" / page).is_file() and page in pages, (name, page)
        assert f"`{name}`" in (REPO / "docs" / page).read_text(), f"{name} is not described on {page}"


def test_a_class_without_a_family_is_refused():
    class NewNet:
        pass

    with pytest.raises(ValueError, match="belongs to no family"):
        docs_tables.family_of(NewNet)


def test_every_shipped_entry_has_a_model_card():
    cards = (REPO / "docs" / "model-cards.md").read_text()
    for entry in read_manifest()["weights"]:
        assert f"## `{entry['name']}`" in cards and entry["sha256"] in cards and entry["reproduce"]["command"] in cards


@pytest.fixture
def repo_copy(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def test_a_new_recipe_and_a_stale_model_table_are_found_and_rewritten(repo_copy):
    readme = repo_copy / "README.md"
    before = readme.read_text()
    readme.write_text(docs_tables.replace_block(before, "models", "| stale |"))
    (repo_copy / "configs" / "lenet5_new.yaml").write_text(
        "trainer:\n  max_epochs: 3\nmodel:\n  class_path: zoo.LeNet5\ndata:\n  class_path: datamodules.DigitsDataModule\n"
    )
    args = ["--root", str(repo_copy)]
    assert model_card.main([*args, "--check"]) == 1
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    assert readme.read_text() == before  # only the block changed, and back to what it was
    training = (repo_copy / "docs" / "guides" / "training.md").read_text()
    assert "| `lenet5_new` | `zoo.LeNet5` | `datamodules.DigitsDataModule` | 3 | `python train.py fit --config configs/lenet5_new.yaml` |" in training


def test_a_page_without_its_markers_is_an_error(repo_copy):
    (repo_copy / "docs" / "model-cards.md").write_text("# Model cards\n")
    with pytest.raises(ValueError, match="model-cards:start"):
        model_card.main(["--root", str(repo_copy), "--check"])
