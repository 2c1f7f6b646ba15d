"""``python -m zoo.bench.simclr_label_efficiency``: a tiny real run (fixture Fashion-MNIST, a SimCLR a few channels
wide, one supervised ``train.py fit`` of one step) writes the results file; the supervised runs train the encoder's
backbone architecture on the same labels as the probes; docs/models/self-supervised.md's table is generated from it."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
import yaml

import zoo
from tests.evaluation.test_feature_eval import TINY_SIMCLR, tiny_simclr_checkpoint
from zoo.bench import simclr_label_efficiency as bench
from zoo.tools import model_card, self_supervised_tables



@pytest.mark.slow  # ~15 s on a busy 2-core CPU: a train.py process
def test_a_short_run_probes_the_encoder_and_trains_its_backbone_on_the_same_labels(vision_root, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ckpt = tiny_simclr_checkpoint(tmp_path / "simclr.ckpt")
    out = tmp_path / "results.json"
    argv = ["--encoder", str(ckpt), "--fractions", "0.5", "--seeds", "3", "--lrs", "0.1", "--supervised-epochs", "1", "--k", "20",
            "--data-dir", str(vision_root.root), "--out", str(out), "--workdir", str(tmp_path / "runs"),
            "--extra=--trainer.limit_val_batches=1 --trainer.limit_test_batches=1"]  # fmt: skip
    results = bench.main(argv)
    assert json.loads(out.read_text()) == results
    (row,) = results["rows"]
    assert (row["fraction"], row["seed"], row["k"], row["test_images"]) == (0.5, 3, 20, 80) and row["supervised_lr"] == 0.1
    assert all(0.0 <= row[key] <= 1.0 for key in ("linear_probe_acc", "knn_acc", "supervised_acc", "supervised_val_acc"))
    (summary,) = results["summary"]
    assert summary["supervised_acc_std"] == 0.0 and summary["probe_minus_supervised"] == pytest.approx(row["linear_probe_acc"] - row["supervised_acc"])
    assert results["supervised"]["steps"] == 1  # one epoch of the 144 fixture training images in batches of 256, whatever the share
    assert results["supervised"]["architecture"] == {"widths": [4, 4, 8, 8], "stem_pool": False, "logit_scale": 1.0}
    assert results["encoder_description"]["weights"] == "self-supervised" and results["command"].startswith("python -m zoo.bench.simclr_label_efficiency --encoder ")
    # the supervised run trained the encoder's backbone from scratch, on the share the probe read
    (config_file,) = (tmp_path / "runs").rglob("config.yaml")
    config = yaml.safe_load(config_file.read_text())
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    assert config["model"]["class_path"] == "zoo.ResNet9" and model["widths"] == [4, 4, 8, 8] and model["stem_pool"] is False
    assert model["pretrained"] is None and model["lr"] == 0.1 and config["trainer"]["max_steps"] == 1
    assert (data["train_fraction"], data["train_subset_seed"], data["data_dir"]) == (0.5, 3, str(vision_root.root))
    from datamodules import FashionMNISTDataModule

    share = FashionMNISTDataModule(data_dir=str(vision_root.root), train_fraction=0.5, train_subset_seed=3)
    share.setup()
    assert row["train_labels"] == len(share.train_set)


def test_every_share_seed_and_rate_gets_a_supervised_run_of_the_backbone_with_one_budget(vision_root, tmp_path, monkeypatch):
    """The supervised runs' arguments, without running them: the backbone's architecture, its data folder, the same
    number of steps at every share; each seed's run at the rate chosen on validation joins its probe row."""
    calls = []

    def fake_fit(config, root, *, fraction, seed, lr, steps, args, label):
        calls.append((config, fraction, seed, lr, steps, args))
        return {"fraction": fraction, "seed": seed, "lr": lr, "val_acc": 0.5 + lr, "test_acc": 0.1 * seed + lr, "seconds": 1.0}

    monkeypatch.setattr(bench, "fit_on_share", fake_fit)
    ckpt = tiny_simclr_checkpoint(tmp_path / "simclr.ckpt")
    results = bench.main(["--encoder", str(ckpt), "--fractions", "0.25,1", "--seeds", "0,1", "--lrs", "0.1,0.3", "--supervised-epochs", "3",
                          "--data-dir", str(vision_root.root), "--out", str(tmp_path / "r.json"), "--extra=--trainer.limit_val_batches=1"])  # fmt: skip
    assert [c[1:5] for c in calls] == [(f, s, lr, 3) for f in (0.25, 1.0) for s in (0, 1) for lr in (0.1, 0.3)]  # 3 epochs of 1 step
    assert {c[0] for c in calls} == {bench.DEFAULT_SUPERVISED_CONFIG}
    assert calls[0][5] == ["--model.init_args.widths=[4, 4, 8, 8]", "--model.init_args.stem_pool=false", "--model.init_args.logit_scale=1.0",
                           f"--data.init_args.data_dir={vision_root.root}", "--trainer.limit_val_batches=1"]  # fmt: skip
    assert [(r["fraction"], r["seed"], r["supervised_lr"], r["supervised_acc"]) for r in results["rows"]] == [
        (0.25, 0, 0.3, 0.3), (0.25, 1, 0.3, 0.4), (1.0, 0, 0.3, 0.3), (1.0, 1, 0.3, 0.4)]  # fmt: skip
    assert len(results["runs"]) == 8 and results["summary"][0]["supervised_acc_mean"] == pytest.approx(0.35)


def test_probes_alone_when_no_supervised_budget_and_the_table_says_so(vision_root, tmp_path):
    ckpt = tiny_simclr_checkpoint(tmp_path / "simclr.ckpt")
    results = bench.main(["--encoder", str(ckpt), "--fractions", "0.25,1", "--seeds", "0,1", "--supervised-epochs", "0",
                          "--data-dir", str(vision_root.root), "--out", str(tmp_path / "r.json")])  # fmt: skip
    assert [(r["fraction"], r["seed"]) for r in results["rows"]] == [(0.25, 0), (0.25, 1), (1.0, 0), (1.0, 1)]
    assert results["runs"] == [] and all(r["supervised_acc"] is None for r in results["rows"])
    full = results["summary"][1]
    assert full["train_labels"] == [144, 144] and full["linear_probe_acc_std"] == 0.0 and full["supervised_acc_mean"] is None
    root = tmp_path / "repo"
    (root / "docs" / "results").mkdir(parents=True)
    shutil.copy(tmp_path / "r.json", root / self_supervised_tables.SIMCLR_LABEL_EFFICIENCY_RESULTS)
    table = self_supervised_tables.render_simclr_label_efficiency(root)
    assert "| 25% |" in table and "| not run | — | linear probe ≥ 88% | " in table and "| not run | — | — | — |" in table


def test_the_recipe_must_build_the_encoders_backbone():
    simclr = zoo.create_model("simclr", **TINY_SIMCLR)
    arch = bench.architecture_args(simclr.backbone)
    assert arch == {"widths": [4, 4, 8, 8], "stem_pool": False, "logit_scale": 1.0}
    bench.check_architecture(simclr.backbone, bench.DEFAULT_SUPERVISED_CONFIG, arch)
    with pytest.raises(ValueError, match="builds another network than the encoder's backbone: layer1.0.0.weight"):
        bench.check_architecture(simclr.backbone, bench.DEFAULT_SUPERVISED_CONFIG, {**arch, "widths": [4, 8, 8, 8]})
    resnet20 = zoo.create_model("simclr", backbone_args={"layers": [1, 1, 1], "widths": [8, 16, 16]})
    with pytest.raises(ValueError, match="trains a zoo.ResNet9, the encoder's backbone is a zoo.ResNet"):
        bench.check_architecture(resnet20.backbone, bench.DEFAULT_SUPERVISED_CONFIG, bench.architecture_args(resnet20.backbone))


def test_each_seed_gets_its_run_at_the_learning_rate_chosen_on_validation():
    probes = [{"fraction": 0.01, "seed": s, "linear_probe_acc": a, "knn_acc": 0.5, "train_labels": 540} for s, a in [(0, 0.80), (1, 0.70)]]
    runs = [{"fraction": 0.01, "seed": s, "lr": lr, "val_acc": v, "test_acc": t, "seconds": 9.0}
            for s, lr, v, t in [(0, 0.1, 0.60, 0.50), (1, 0.1, 0.70, 0.52), (0, 0.3, 0.66, 0.90), (1, 0.3, 0.66, 0.60)]]  # fmt: skip
    rows, (summary,) = bench.summarize(probes, runs)
    assert [(r["supervised_lr"], r["supervised_acc"]) for r in rows] == [(0.3, 0.90), (0.3, 0.60)]  # mean val 0.66 > 0.65; test chose nothing
    assert summary["supervised_acc_mean"] == pytest.approx(0.75) and summary["linear_probe_acc_std"] == pytest.approx(0.0707, abs=1e-4)
    assert summary["probe_minus_supervised"] == pytest.approx(0.0)


def test_a_recipe_of_another_network_a_missing_encoder_or_a_negative_budget_is_refused(vision_root, tmp_path, capsys):
    ckpt = tiny_simclr_checkpoint(tmp_path / "simclr.ckpt")
    common = ["--data-dir", str(vision_root.root), "--out", str(tmp_path / "x.json")]
    refusals = {"trains a zoo.ResNet, the encoder's backbone is a zoo.ResNet9": ["--encoder", str(ckpt), "--supervised-config", "configs/resnet20_fashionmnist.yaml"],
                "--encoder none.ckpt: no such file": ["--encoder", "none.ckpt"],
                "--supervised-epochs must be >= 0": ["--encoder", str(ckpt), "--supervised-epochs", "-1"]}  # fmt: skip
    for message, argv in refusals.items():
        with pytest.raises(SystemExit):
            bench.main([*argv, *common])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def summary(fraction: float, probe: float, supervised: float) -> dict:
    return {"fraction": fraction, "seeds": [0, 1], "train_labels": [540, 541], "linear_probe_acc_mean": probe, "linear_probe_acc_std": 0.01,
            "knn_acc_mean": probe - 0.02, "knn_acc_std": 0.02, "supervised_acc_mean": supervised, "supervised_acc_std": 0.03,
            "supervised_lr": 0.1, "probe_minus_supervised": probe - supervised}  # fmt: skip


RESULTS = {
    "command": "python -m zoo.bench.simclr_label_efficiency --encoder runs/simclr.ckpt", "hardware": "Some CPU, 2 cores, OMP_NUM_THREADS=1",
    "load_average_at_start": "1.00, 1.00, 1.00", "date": "2026-01-01 00:00", "versions": {"python": "3.11", "torch": "2.0", "lightning": "2.0"},
    "encoder": "runs/simclr.ckpt", "encoder_description": {"arch": "SimCLR, backbone resnet9_fast", "params": 477000},
    "features_seconds": 95.0, "k": 200, "fractions": [0.01, 1.0], "seeds": [0, 1],
    "supervised": {"config": "configs/resnet9_fast_fashionmnist_20min.yaml", "epochs": 20, "steps": 4220, "lrs": [0.03, 0.1],
                   "architecture": {"widths": [16, 32, 64, 128], "stem_pool": False}},
    "summary": [summary(1.0, 0.87, 0.94), summary(0.01, 0.80, 0.70)], "rows": [], "runs": [],
}  # fmt: skip


def test_the_table_is_rendered_from_the_results_file_with_the_targets_and_checked(docs_copy):
    root = docs_copy
    path = root / self_supervised_tables.SIMCLR_LABEL_EFFICIENCY_RESULTS
    path.unlink(missing_ok=True)
    empty = self_supervised_tables.render_simclr_label_efficiency(root)
    assert "| 1% | not measured | not measured | not measured | linear probe ≥ supervised + 5 points | not measured |" in empty
    assert "| 10% | not measured | not measured | not measured | — | — |" in empty and not re.search(r"\d\.\d+%", empty)  # no figure before a run
    assert "then `python -m zoo.bench.simclr_label_efficiency --encoder <the SimCLR checkpoint> --fractions 0.01,0.1,1.0 --seeds 0,1,2" in empty
    path.write_text(json.dumps(RESULTS))
    table = self_supervised_tables.render_simclr_label_efficiency(root)
    assert ("| 1% | 540–541 | 80.00% ± 1.00 | 78.00% ± 2.00 | 70.00% ± 3.00 (lr 0.1) | +10.00 points | linear probe ≥ supervised + 5 points "
            "| yes |") in table  # fmt: skip
    assert "| 100% | 540–541 | 87.00% ± 1.00 | 85.00% ± 2.00 | 94.00% ± 3.00 (lr 0.1) | -7.00 points | linear probe ≥ 88% | no |" in table
    assert table.index("| 1% |") < table.index("| 100% |") and RESULTS["command"] in table and "4,220 optimizer steps per run" in table
    assert "with widths=[16, 32, 64, 128], stem_pool=False" in table and "seeds 0, 1" in table
    args = ["--root", str(root)]
    assert model_card.main([*args, "--check"]) == 1  # the page still shows the repository's own block
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    assert table in (root / "docs" / "models" / "self-supervised.md").read_text()
