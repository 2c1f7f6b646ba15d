"""``python -m zoo.tools.robustness``: it measures a shipped entry under FGSM and PGD into the results file, and the
docs block rendered from that file refuses figures of weights the manifest does not ship."""

import json

import pytest

import zoo
from zoo.tools import robustness as tool
from zoo.tools.results_tables import render_robustness

SHA = "ab" * 32


def _row(**overrides):
    row = {"name": "lenet5.fashionmnist_robust", "sha256": SHA, "training": "fgsm_rs, eps 0.1, ratio 0.5", "test_images": 10000,
           "clean": 0.9012, "fgsm": {"0": 0.9012, "0.05": 0.84, "0.1": 0.7755}, "pgd": {"0.1": 0.7301}, "pgd_steps": 10,
           "suspected": [], "command": "python -m zoo.tools.robustness lenet5.fashionmnist_robust", "date": "2026-12-07"}  # fmt: skip
    return {**row, **overrides}


def test_the_tool_measures_a_shipped_entry_into_the_results_file(vision_root, tmp_path, monkeypatch, capsys):
    from datamodules import FashionMNISTDataModule

    model = zoo.create_model("lenet5")
    entry = {"sha256": SHA, "data": {"class_path": "datamodules.FashionMNISTDataModule"}, "reproduce": {"config": "configs/lenet5_fashionmnist_adv.yaml"}}
    monkeypatch.setattr(tool, "pretrained_entry", lambda name: entry)
    monkeypatch.setattr(tool, "load_pretrained", lambda name: model)
    monkeypatch.setattr(tool, "build_datamodule", lambda data: FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32))
    results = tmp_path / "robustness.json"
    results.write_text(json.dumps({"entries": [_row(name="other.fashionmnist")]}))
    assert tool.main(["lenet5.fashionmnist_robust", "--results", str(results)]) == 0
    rows = json.loads(results.read_text())["entries"]
    assert [r["name"] for r in rows] == ["lenet5.fashionmnist_robust", "other.fashionmnist"]  # merged, sorted by name
    row = rows[0]
    assert row["sha256"] == SHA and row["test_images"] == 80 and row["pgd_steps"] == 10
    assert row["training"] == "fgsm, eps 0.1, ratio 0.5"  # the recipe's AdversarialTraining, its defaults filled in
    assert list(row["fgsm"]) == ["0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3"] and list(row["pgd"]) == ["0.1"]
    assert row["clean"] == row["fgsm"]["0"] and 0 <= row["pgd"]["0.1"] <= 1
    assert "lenet5.fashionmnist_robust: clean" in capsys.readouterr().out


def test_the_docs_block_renders_the_results_and_refuses_weights_that_do_not_ship(tmp_path):
    results = tmp_path / "robustness.json"
    manifest = {"weights": [{"name": "lenet5.fashionmnist_robust", "sha256": SHA}]}
    assert "No shipped entry measured yet" in render_robustness(results, manifest)  # no file yet
    results.write_text(json.dumps({"entries": [_row()]}))
    table = render_robustness(results, manifest).splitlines()
    assert table[0] == ("| entry | training | clean | FGSM 0.05 | FGSM 0.1 | PGD-10 0.1 | catastrophic overfitting | test images "
                        "| command |")  # fmt: skip
    assert table[2] == ("| `lenet5.fashionmnist_robust` | fgsm_rs, eps 0.1, ratio 0.5 | 90.12% | 84.00% | 77.55% | 73.01% | "
                        "not suspected | 10,000 | `python -m zoo.tools.robustness lenet5.fashionmnist_robust` |")  # fmt: skip
    results.write_text(json.dumps({"entries": [_row(suspected=["0.1"], pgd={"0.1": 0.01})]}))
    assert "| 1.00% | suspected at 0.1 |" in render_robustness(results, manifest)
    reexported = {"weights": [{"name": "lenet5.fashionmnist_robust", "sha256": "cd" * 32}]}
    with pytest.raises(ValueError, match="measured lenet5.fashionmnist_robust with weights abababababab, which the manifest does not "
                                         "ship: run python -m zoo.tools.robustness lenet5.fashionmnist_robust"):  # fmt: skip
        render_robustness(results, reexported)
