"""``python -m zoo.bench.finetune_strategies``: a short real run writes the results file, and the fine-tuning
guide's table is generated from that file (``python -m zoo.tools.model_card --check`` fails on disagreement)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zoo.bench import finetune_strategies
from zoo.tools import model_card, results_tables

REPO = Path(__file__).resolve().parents[2]


def test_a_short_run_writes_every_run_with_its_command_and_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "results.json"
    argv = ["--out", str(out), "--only", "freeze_unfreeze", "--seeds", "3", "--epochs", "1", "--hardware-note", "shared machine",
            "--extra=--trainer.limit_train_batches=2 --trainer.limit_val_batches=1 --trainer.limit_test_batches=1"]  # fmt: skip
    results = finetune_strategies.main(argv)
    assert json.loads(out.read_text()) == results
    (run,) = results["runs"]
    assert run["strategy"] == "freeze_unfreeze" and run["recipe"] == "configs/resnet20_digits_freeze_unfreeze.yaml" and run["seed"] == 3
    assert 0.0 <= run["test_acc"] <= 1.0 and run["seconds"] > 0
    assert results["command"].startswith("python -m zoo.bench.finetune_strategies --out ") and "--only freeze_unfreeze" in results["command"]
    assert results["hardware"].endswith("OMP_NUM_THREADS=1; shared machine") and results["epochs"] == 1


def test_unknown_strategies_are_refused():
    with pytest.raises(SystemExit):
        finetune_strategies.main(["--out", "x.json", "--only", "warmup"])


RESULTS = {
    "command": "python -m zoo.bench.finetune_strategies --out docs/results/finetune_strategies.json",
    "hardware": "Some CPU, 2 cores, OMP_NUM_THREADS=1; shared",
    "load_average_at_start": "3.00, 2.00, 1.00",
    "date": "2026-01-01 00:00",
    "versions": {"python": "3.11", "torch": "2.0", "lightning": "2.0"},
    "epochs": 4,
    "seeds": [0, 1],
    "strategies": {"full": "full fine-tune", "linear_probe": "linear probe"},
    "runs": [
        {"strategy": "full", "recipe": "configs/a.yaml", "seed": 1, "test_acc": 0.9, "seconds": 30.4},
        {"strategy": "full", "recipe": "configs/a.yaml", "seed": 0, "test_acc": 0.8, "seconds": 20.0},
        {"strategy": "linear_probe", "recipe": "configs/b.yaml", "seed": 0, "test_acc": 0.5, "seconds": 10.0},
        {"strategy": "linear_probe", "recipe": "configs/b.yaml", "seed": 1, "test_acc": 0.7, "seconds": 12.0},
    ],
}


def test_the_table_is_rendered_from_the_results_file_and_checked(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "README.md", root / "README.md")
    (root / results_tables.FINETUNE_RESULTS).parent.mkdir(parents=True, exist_ok=True)
    (root / results_tables.FINETUNE_RESULTS).write_text(json.dumps(RESULTS))
    table = results_tables.render_finetune_strategies(root)
    assert "| full fine-tune | `configs/a.yaml` | 80.00% / 90.00% | 85.00% | 20-30 s |" in table  # seeds in order
    assert "| linear probe | `configs/b.yaml` | 50.00% / 70.00% | 60.00% | 10-12 s |" in table
    assert "4 epochs per run" in table and RESULTS["command"] in table and RESULTS["hardware"] in table
    args = ["--root", str(root)]
    assert model_card.main([*args, "--check"]) == 1  # the page still shows the repository's own figures
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    assert table in (root / "docs" / "guides" / "fine-tuning.md").read_text()
