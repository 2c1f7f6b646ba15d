"""``python -m zoo.bench.label_efficiency``: a tiny real curve (two shares, both starts, a few steps) writes the
results file; the learning rate is chosen on validation; docs/models/text.md's table is generated from the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import yaml

import zoo
from datamodules import MaskedLMDataModule
from zoo.bench import label_efficiency
from zoo.tools import model_card, results_tables

REPO = Path(__file__).resolve().parents[2]
TINY = "--model.init_args.d_model=32 --model.init_args.nhead=2 --model.init_args.num_layers=1 --model.init_args.dim_feedforward=64"


@pytest.mark.slow  # ~30 s: eight train.py processes
def test_a_tiny_curve_fine_tunes_from_pretraining_and_from_scratch(tmp_path, vision_root, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))  # fixture fortunes and gcide; the subprocesses inherit it
    # a tiny pre-training with the fine-tuning recipe's data settings, so that both build the same vocabulary
    dm = MaskedLMDataModule(extra_corpora=["gcide"], whole_word_mask=True, level="wordpiece", max_len=64, max_size=6000, min_freq=2, batch_size=16)
    mlm = zoo.create_model("bert_small", d_model=32, nhead=2, num_layers=1, dim_feedforward=64, max_len=64, vocab_size=dm.vocab_size, tokenizer=dm.tokenizer)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(mlm, dm)
    ckpt = tmp_path / "mlm.ckpt"
    trainer.save_checkpoint(ckpt)

    out = tmp_path / "curve.json"
    argv = ["--pretrained", str(ckpt), "--fractions", "0.2,1.0", "--seeds", "0", "--lrs", "0.001", "--steps", "2", "--out", str(out),
            f"--extra={TINY} --trainer.limit_val_batches=1 --trainer.limit_test_batches=1", "--workdir", str(tmp_path / "runs")]  # fmt: skip
    results = label_efficiency.main(argv)
    assert json.loads(out.read_text()) == results
    assert {(r["start"], r["fraction"]) for r in results["runs"]} == {(s, f) for s in ("pretrained", "scratch") for f in (0.2, 1.0)}
    assert all(0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0 and r["seconds"] > 0 for r in results["runs"])
    assert len(results["chosen"]) == 4 and results["steps"] == 2 and results["config"] == label_efficiency.DEFAULT_CONFIG
    # the pre-trained runs start from the checkpoint with layer-wise decay; the scratch runs from nothing, one rate for all
    configs = {start: yaml.safe_load((tmp_path / "runs" / "f0.2" / start / "seed0" / "lr0.001" / "lightning_logs" / "version_0" / "config.yaml").read_text())
               for start in ("pretrained", "scratch")}  # fmt: skip
    assert configs["pretrained"]["model"]["init_args"]["pretrained"] == str(ckpt) and configs["scratch"]["model"]["init_args"]["pretrained"] is None
    decay = {start: c["trainer"]["callbacks"][0]["init_args"]["lr_decay"] for start, c in configs.items()}
    assert decay == {"pretrained": 0.8, "scratch": 1.0}
    assert {c["data"]["init_args"]["train_fraction"] for c in configs.values()} == {0.2}


def test_the_learning_rate_is_chosen_by_mean_validation_accuracy():
    rows = [{"start": "scratch", "fraction": 0.05, "seed": s, "lr": lr, "val_acc": v, "test_acc": t}
            for s, lr, v, t in [(0, 1e-3, 0.70, 0.50), (1, 1e-3, 0.60, 0.52), (0, 3e-3, 0.66, 0.90), (1, 3e-3, 0.66, 0.80)]]  # fmt: skip
    (chosen,) = label_efficiency.choose(rows)
    assert chosen["lr"] == 3e-3 and chosen["test_acc"] == [0.90, 0.80]  # mean val 0.66 > 0.65; the test scores chose nothing
    assert chosen["test_acc_mean"] == pytest.approx(0.85) and chosen["test_acc_std"] == pytest.approx(0.0707, abs=1e-4)


def test_mistakes_are_refused_with_a_message(tmp_path, capsys):
    for argv, message in [(["--pretrained", str(tmp_path / "none.ckpt")], "no such file"),
                          (["--pretrained", "bert_small.fortunes", "--fractions", "0,1"], "--fractions must lie in"),
                          (["--pretrained", "bert_small.fortunes", "--config", "configs/nope.yaml"], "no such recipe")]:  # fmt: skip
        with pytest.raises(SystemExit):
            label_efficiency.main([*argv, "--out", str(tmp_path / "x.json")])
        assert message in capsys.readouterr().err


RESULTS = {
    "command": "python -m zoo.bench.label_efficiency --pretrained x.ckpt --out docs/results/bert_label_efficiency.json",
    "hardware": "Some CPU, 2 cores, OMP_NUM_THREADS=1", "load_average_at_start": "1.00, 1.00, 1.00", "date": "2026-01-01 00:00",
    "versions": {"python": "3.11", "torch": "2.0", "lightning": "2.0"}, "config": "configs/bert_mini_fortunes_gcide.yaml",
    "pretrained": "x.ckpt", "steps": 300, "seeds": [0, 1, 2], "lrs": [0.001, 0.003],
    "chosen": [{"fraction": 0.05, "start": "pretrained", "lr": 0.003, "val_acc_mean": 0.7, "test_acc_mean": 0.7, "test_acc_std": 0.01, "test_acc": [0.7]},
               {"fraction": 0.05, "start": "scratch", "lr": 0.001, "val_acc_mean": 0.6, "test_acc_mean": 0.6, "test_acc_std": 0.02, "test_acc": [0.6]}],
    "runs": [],
}  # fmt: skip


def test_the_table_is_rendered_from_the_results_file_and_checked(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "README.md", root / "README.md")
    assert "Not measured yet" in results_tables.render_label_efficiency(root) or (REPO / results_tables.LABEL_EFFICIENCY_RESULTS).is_file()
    (root / results_tables.LABEL_EFFICIENCY_RESULTS).write_text(json.dumps(RESULTS))
    table = results_tables.render_label_efficiency(root)
    assert "| 5% | 70.00% ± 1.00 (lr 0.003) | 60.00% ± 2.00 (lr 0.001) | +10.00 points |" in table
    assert RESULTS["command"] in table and "seeds 0, 1, 2" in table
    args = ["--root", str(root)]
    assert model_card.main([*args, "--check"]) == 1  # the page still shows the repository's own block
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    assert table in (root / "docs" / "models" / "text.md").read_text()
