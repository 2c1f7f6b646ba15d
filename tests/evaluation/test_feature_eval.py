"""``python -m zoo.evaluation.feature_eval``: probe and k-NN on a seeded, class-balanced share of the training labels,
the rows it records in its results file, and the self-supervised page's encoder table generated from that file."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from datamodules import FashionMNISTDataModule
from zoo.evaluation import feature_eval
from zoo.tools import model_card, self_supervised_tables

REPO = Path(__file__).resolve().parents[2]
#: A SimCLR small enough for a test: ResNet-9 a few channels wide, as the ResNet-9 recipe builds it otherwise.
TINY_SIMCLR = {"backbone": "resnet9_fast", "backbone_args": {"widths": [4, 4, 8, 8], "stem_pool": False, "channels_last": True},
               "projection_hidden": 16, "projection_dim": 8}  # fmt: skip


def tiny_simclr_checkpoint(path: Path) -> Path:
    """A SimCLR checkpoint after one training step on noise: what ``train.py fit`` of the recipe writes, in small."""
    torch.manual_seed(0)
    model = zoo.create_model("simclr", **TINY_SIMCLR, mean=[0.286], std=[0.353])
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=path.parent)  # fmt: skip
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(torch.randn(8, 1, 28, 28)), batch_size=8))
    trainer.save_checkpoint(path)
    return path


def test_the_label_subset_is_seeded_class_balanced_nested_and_the_datamodules(vision_root):
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root))
    dm.setup()
    x, y = dm.train_set.tensors
    keep = feature_eval.label_subset(y, 0.25, seed=3)  # (n,) positions in the training split
    counts = torch.bincount(y[keep], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == len(keep) < len(y)  # fixture classes hold 13 to 16 images
    assert torch.equal(keep, feature_eval.label_subset(y, 0.25, seed=3)) and not torch.equal(keep, feature_eval.label_subset(y, 0.25, seed=4))
    assert set(keep.tolist()) < set(feature_eval.label_subset(y, 0.5, seed=3).tolist())
    assert torch.equal(feature_eval.label_subset(y, 1.0, seed=3), torch.arange(len(y)))
    # exactly the images that a supervised run on that share trains on
    share = FashionMNISTDataModule(data_dir=str(vision_root.root), train_fraction=0.25, train_subset_seed=3)
    share.setup()
    assert torch.equal(share.train_set.tensors[0], x[keep]) and torch.equal(share.train_set.tensors[1], y[keep])
    with pytest.raises(ValueError, match="fraction must be in"):
        feature_eval.label_subset(y, 0.0, seed=0)


def test_score_fits_probe_and_knn_on_the_share_and_measures_on_every_test_feature():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 3
    train_y, test_y = torch.arange(400) % 4, torch.arange(100) % 4
    train_f, test_f = centres[train_y] + torch.randn(400, 8, generator=g), centres[test_y] + torch.randn(100, 8, generator=g)
    full = feature_eval.score(train_f, train_y, test_f, test_y, num_classes=4, k=200)
    assert full["train_labels"] == 400 and full["k"] == 200 and full["test_images"] == 100 and full["linear_probe_acc"] > 0.9
    few = feature_eval.score(train_f, train_y, test_f, test_y, num_classes=4, k=200, fraction=0.05, subset_seed=1)
    assert few["train_labels"] == 20 and few["k"] == 20 and few["test_images"] == 100  # k-NN reads no more neighbours than there are
    assert few["knn_acc"] > 0.8


def test_each_run_records_its_row_keyed_by_encoder_features_and_labels(vision_root, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = tmp_path / "feature_eval.json"
    common = ["--data-dir", str(vision_root.root), "--results", str(results)]
    row = feature_eval.main(["random:lenet5", *common, "--hardware-note", "shared"])
    assert row["weights"] == "random" and row["arch"] == "lenet5" and row["train_labels"] == 144 and row["test_images"] == 80
    assert row["command"] == f"python -m zoo.evaluation.feature_eval random:lenet5 {' '.join(common)} --hardware-note shared"
    assert row["hardware"].endswith("OMP_NUM_THREADS=1; shared") and set(row["versions"]) == {"python", "torch", "lightning"}
    ckpt = tiny_simclr_checkpoint(tmp_path / "simclr.ckpt")
    simclr = feature_eval.main([str(ckpt), *common, "--fraction", "0.5", "--subset-seed", "2", "--k", "5"])
    assert simclr["weights"] == "self-supervised" and simclr["arch"] == "SimCLR, backbone resnet9_fast" and simclr["k"] == 5
    share = FashionMNISTDataModule(data_dir=str(vision_root.root), train_fraction=0.5, train_subset_seed=2)
    share.setup()
    assert simclr["arch_args"]["widths"] == [4, 4, 8, 8] and simclr["train_labels"] == len(share.train_set) and len(simclr["sha256"]) == 64
    again = feature_eval.main(["random:lenet5", *common, "--k", "7"])  # the same key: replaces the first row
    rows = json.loads(results.read_text())["entries"]
    assert [(r["source"], r["train_fraction"], r["subset_seed"]) for r in rows] == [(str(ckpt), 0.5, 2), ("random:lenet5", 1.0, None)]
    assert rows[1] == again and rows[0] == simclr and rows[1]["k"] == 7


ROW = {"stage": None, "train_fraction": 1.0, "subset_seed": None, "linear_probe_acc": 0.7111, "knn_acc": 0.7021, "k": 200,
       "train_labels": 54000, "test_images": 10000, "arch_args": {}, "params": 272474, "seconds": 2381.0, "cpu_seconds": 151.0,
       "hardware": "Some CPU, 2 cores, OMP_NUM_THREADS=1; busy", "load_average_at_start": "3.00, 2.00, 1.00", "date": "2026-01-01 00:00",
       "versions": {"python": "3.11", "torch": "2.0", "lightning": "2.0"}}  # fmt: skip


def test_the_encoder_table_is_rendered_from_the_results_file_and_checked(docs_copy):
    root = docs_copy
    path = root / feature_eval.FEATURE_EVAL_RESULTS
    path.unlink(missing_ok=True)
    manifest = json.loads((REPO / "zoo" / "hub" / "shipped" / "manifest.json").read_text())
    empty = self_supervised_tables.render_feature_eval(root, manifest)
    assert "| not measured | not measured | | `python -m zoo.evaluation.feature_eval random:resnet20` |" in empty
    assert "`resnet20` trained with labels (`resnet20.fashionmnist`, 93.55% as a classifier)" in empty  # the manifest's figure
    assert "then `python -m zoo.evaluation.feature_eval <its checkpoint>`" in empty  # no SimCLR row yet

    sha = {e["name"]: e["sha256"] for e in manifest["weights"]}["resnet20.fashionmnist"]
    rows = [{**ROW, "source": "random:resnet20", "weights": "random", "arch": "resnet20", "entry": False, "sha256": None,
             "command": "python -m zoo.evaluation.feature_eval random:resnet20"},
            {**ROW, "source": "runs/simclr.ckpt", "weights": "self-supervised", "arch": "SimCLR, backbone resnet9_fast",
             "arch_args": {"stem_pool": False}, "entry": False, "sha256": "ab" * 32, "train_fraction": 0.01, "subset_seed": 1,
             "train_labels": 540, "command": "python -m zoo.evaluation.feature_eval runs/simclr.ckpt --fraction 0.01 --subset-seed 1"},
            {**ROW, "source": "resnet20.fashionmnist", "weights": "labels", "arch": "resnet20", "entry": True, "sha256": sha,
             "stage": 2, "command": "python -m zoo.evaluation.feature_eval resnet20.fashionmnist --stage 2"}]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"entries": rows}))
    table = self_supervised_tables.render_feature_eval(root, manifest)
    assert ("| `resnet20`, random weights (seed 0) | final (`forward_features`) | 54,000 | 71.11% | 70.21% (k=200) | 272,474 | "
            "`python -m zoo.evaluation.feature_eval random:resnet20` | 2,381 s (151 s) | 2026-01-01 00:00 UTC; Some CPU") in table  # fmt: skip
    assert "| SimCLR, backbone resnet9_fast (stem_pool=False), self-supervised: `runs/simclr.ckpt` | final (`forward_features`) | 540 (1%, subset seed 1) |" in table
    assert "| stage 2, average-pooled |" in table and "feature_eval random:resnet20` | | |" not in table  # measured rows replace the placeholders
    assert "<its checkpoint>" not in table and "`python -m zoo.evaluation.feature_eval resnet9_fast.fashionmnist` | | |" in table
    args = ["--root", str(root)]
    assert model_card.main([*args, "--check"]) == 1  # the page still shows the repository's own block
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    assert table in (root / "docs" / "models" / "self-supervised.md").read_text()

    rows[2]["sha256"] = "0" * 64  # the entry was re-exported since: its figures are stale
    path.write_text(json.dumps({"entries": rows}))
    with pytest.raises(ValueError, match="which the manifest does not ship: run python -m zoo.evaluation.feature_eval resnet20.fashionmnist --stage 2"):
        self_supervised_tables.render_feature_eval(root, manifest)
