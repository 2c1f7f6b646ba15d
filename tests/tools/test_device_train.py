"""zoo.tools.device_train (the GPU plan: its budget, its commands, its errors, its dry run on the CPU, whose checkpoints
zoo-export takes) and zoo.tools.carry_data (a dataset in parts that each fit one call to the GPU machine)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from zoo.core.registry import list_models
from zoo.evaluation import baselines
from zoo.tools import device_train
from zoo.tools import export as export_tool
from zoo.tools.carry_data import CarryError, join_parts, split_files
from zoo.tools.device_train import BATCH, PLAN, BudgetError, select, train_args

REPO = Path(__file__).resolve().parents[2]


def test_the_plan_fits_nine_minutes_of_one_gpu():
    entries = select(None, 540)
    assert entries == PLAN and sum(e.share_s for e in entries) <= 540
    for entry in entries:
        assert (REPO / entry.recipe).is_file()
        assert entry.name.split(".")[0] in list_models() and entry.name.endswith(".fashionmnist")
        assert entry.share_s > device_train.RESERVE_S + 30  # room for training once start-up and the test pass are kept
    # One batch shape per mode: no short last batch in the 54,000 / 6,000 / 10,000 images.
    assert all(n % BATCH == 0 for n in (54_000, 6_000, 10_000))


def test_only_picks_entries_by_entry_or_model_name_in_plan_order():
    assert [e.name for e in select("densenet_bc_100, googlenet_small.fashionmnist", 540)] == [
        "googlenet_small.fashionmnist",
        "densenet_bc_100.fashionmnist",
    ]


def test_an_unknown_entry_is_named_with_the_plan():
    with pytest.raises(BudgetError, match=r"unknown plan entry 'wrn28_10'.*wrn16_4\.fashionmnist"):
        select("wrn28_10", 540)


def test_a_budget_too_small_for_the_plan_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"error: the plan needs 520 s .* --budget-s is 300"):
        device_train.main(["--out", str(tmp_path / "out"), "--budget-s", "300"])
    assert not (tmp_path / "out").exists()
    assert device_train.main(["--list", "--only", "wrn16_4", "--budget-s", "300"]) == 0
    assert "wrn16_4.fashionmnist: 30 epochs" in capsys.readouterr().out


def test_without_a_gpu_only_the_dry_run_is_allowed(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU is visible.*--dry-run"):
        device_train.main(["--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="--data-dir .* is not a folder"):
        device_train.main(["--out", str(tmp_path / "out"), "--dry-run", "--data-dir", str(tmp_path / "absent")])


def test_gpu_commands_are_bf16_channels_last_compiled_and_time_bounded(tmp_path):
    wrn = next(e for e in PLAN if e.name.startswith("wrn16_4"))
    args = train_args(wrn, out=tmp_path, data_dir="/data/fm", dry_run=False, max_time_s=145)
    for expected in ("--trainer.accelerator=gpu", "--trainer.precision=bf16-mixed", "--model.init_args.compile=true",
                     f"--data.init_args.batch_size={BATCH}", "--trainer.max_epochs=30", "--trainer.max_time=00:00:02:25",
                     "--model.init_args.depth=16", "--data.init_args.data_dir=/data/fm", "--data.init_args.download=false",
                     "--trainer.enable_model_summary=false"):  # fmt: skip
        assert expected in args
    dry = train_args(wrn, out=tmp_path, data_dir=None, dry_run=True, max_time_s=None)
    assert "--trainer.accelerator=cpu" in dry and "--model.init_args.compile=false" in dry and "--trainer.precision=32-true" in dry
    assert not any(a.startswith("--trainer.max_time") for a in dry)
    # The recipes name channels_last: true themselves, or the plan adds it.
    for entry in PLAN:
        recipe = (REPO / entry.recipe).read_text()
        assert "channels_last: true" in recipe or entry.model_args.get("channels_last") is True


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_carried_parts_join_into_the_same_files(vision_root, tmp_path):
    source = vision_root.root / "FashionMNIST" / "raw"
    folders = split_files(source, tmp_path / "carry", name="fashion-mnist", part_bytes=20_000)
    assert len(folders) >= 2 and all(f.name == f"fashion-mnist-{i}" for i, f in enumerate(folders, start=1))
    assert _files(join_parts(tmp_path / "carry", tmp_path / "joined", name="fashion-mnist")) == _files(source)


def test_a_missing_or_damaged_part_is_one_clear_error(vision_root, tmp_path):
    folders = split_files(vision_root.root / "FashionMNIST" / "raw", tmp_path / "carry", name="fm", part_bytes=20_000)
    with pytest.raises(CarryError, match="no parts of other"):
        join_parts(tmp_path / "carry", tmp_path / "joined", name="other")
    last = folders[-1] / f"fm.tar.{len(folders)}"
    data = last.read_bytes()
    last.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CarryError, match="SHA-256 differs"):
        join_parts(tmp_path / "carry", tmp_path / "joined", name="fm")
    last.unlink()
    with pytest.raises(CarryError, match=f"1 of {len(folders)} parts missing: .*fm.tar.{len(folders)}"):
        join_parts(tmp_path / "carry", tmp_path / "joined", name="fm")


@pytest.mark.slow
def test_dry_run_writes_checkpoints_that_zoo_export_measures(vision_root, tmp_path, monkeypatch):
    """The whole plan for a few steps on the CPU (the fixture's Fashion-MNIST), then the printed zoo-export line of one
    entry, as a user runs it afterwards, re-measures its checkpoint (the shipping bar lifted: two steps are far below it)."""
    out = tmp_path / "runs"
    assert device_train.main(["--out", str(out), "--dry-run", "--data-dir", str(vision_root.root)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == [e.name for e in PLAN]
    for record in summary["runs"]:
        assert record["returncode"] == 0 and record["epochs_run"] == 1 and 0 <= record["test/acc"] <= 1
        checkpoint = torch.load(out / record["checkpoint"], weights_only=True)
        assert "optimizer_states" not in checkpoint and checkpoint["state_dict"]

    monkeypatch.setattr(baselines, "LINEAR_BASELINES", {})
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))  # the export's test set: the fixture's 80 images
    googlenet = next(r for r in summary["runs"] if r["name"].startswith("googlenet_small"))
    command = shlex.split(googlenet["export"])
    assert command[0] == "zoo-export"
    weights = tmp_path / "weights"
    assert export_tool.main([*command[1:], "--out", str(weights)]) == 0
    row = json.loads((weights / "manifest.json").read_text())["weights"][0]
    assert row["name"] == "googlenet_small.fashionmnist" and row["metric"]["name"] == "test/acc"
    assert row["reproduce"]["command"] == googlenet["command"] and row["reproduce"]["hardware"] == "CPU (dry run)"
    assert row["target"] == {"value": 0.937, "reached": False, "reference": PLAN[0].reference}


def test_the_devices_page_gives_the_plan_as_it_is():
    page = (REPO / "docs" / "guides" / "devices.md").read_text()
    table = page.split("<!-- plan:start -->")[1].split("<!-- plan:end -->")[0]
    rows = {cells[0].strip("` "): cells for line in table.splitlines()[3:] if (cells := [c.strip() for c in line.strip("|").split("|")])}
    assert set(rows) == {e.name for e in PLAN}
    for entry in PLAN:
        _, recipe, epochs, compiled, share, _ = rows[entry.name]
        assert recipe.startswith(f"`{Path(entry.recipe).stem}`")
        assert (int(epochs), compiled, share) == (entry.epochs, "yes" if entry.compile else "no", f"{entry.share_s} s")
