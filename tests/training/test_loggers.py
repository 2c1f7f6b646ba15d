"""Loggers from the CLI: CSV by default, TensorBoard and Weights & Biases (offline) on request, none with false.

Each run is ``train.py fit`` of configs/mlp_blobs.yaml for one epoch (it tests after fit), in process
(``zoo.cli.main``); the checks read what each logger wrote: metrics.csv and the PNG/CSV files beside
it, TensorBoard's event files, W&B's offline run folder.
"""

import csv
import json
import struct
import sys
import time
from pathlib import Path

import pytest

from zoo.training.cli import main

REPO = Path(__file__).resolve().parents[2]
RECIPE = ["fit", "--config", str(REPO / "configs" / "mlp_blobs.yaml"), "--trainer.max_epochs=1", "--data.n_samples=200"]


@pytest.fixture
def cli_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    return lambda *args: main([*RECIPE, f"--trainer.default_root_dir={tmp_path}", *args])


def test_csv_logger_is_the_default(cli_in, tmp_path):
    cli = cli_in()
    assert [type(logger).__name__ for logger in cli.trainer.loggers] == ["CSVLogger"]
    run = tmp_path / "lightning_logs" / "version_0"
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert any(row.get("val/acc") for row in rows) and any(row.get("test/acc") for row in rows)
    assert (run / "images" / "test_confusion_matrix_epoch001.png").stat().st_size > 1000  # a CSV logger takes no images
    assert (run / "tables" / "test_confusion_matrix_epoch001.csv").read_text().startswith("true \\ predicted,0,1")


def test_logger_false_disables_logging(cli_in, tmp_path):
    cli = cli_in("--trainer.logger=false")
    assert cli.trainer.loggers == []
    assert not (tmp_path / "lightning_logs").exists() and not list(tmp_path.rglob("metrics.csv"))


def test_tensorboard_logger_gets_metrics_images_and_tables(cli_in, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cli = cli_in("--trainer.logger=TensorBoardLogger", f"--trainer.logger.save_dir={tmp_path / 'tb'}")
    assert [type(logger).__name__ for logger in cli.trainer.loggers] == ["TensorBoardLogger"]
    run = tmp_path / "tb" / "lightning_logs" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {"val/acc", "val/loss", "test/acc"} <= set(tags["scalars"])
    assert "test/confusion_matrix" in tags["images"]
    image = events.Images("test/confusion_matrix")[-1]
    assert image.width >= 300 and image.encoded_image_string[:4] == b"\x89PNG"
    assert "test/confusion_matrix/text_summary" in tags["tensors"]  # the table, as markdown
    assert not list(run.rglob("*.png"))  # the logger took the images: no PNG fallback


def test_wandb_logger_offline_gets_metrics_images_and_tables(cli_in, tmp_path, monkeypatch):
    import wandb  # a dependency of the package
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    try:
        cli = cli_in("--trainer.logger=WandbLogger", f"--trainer.logger.save_dir={tmp_path / 'wb'}")
        assert [type(logger).__name__ for logger in cli.trainer.loggers] == ["WandbLogger"]
    finally:
        wandb.finish()  # writes the summary and closes the run
    (run,) = (tmp_path / "wb" / "wandb").glob("offline-run-*")
    (records,) = run.glob("run-*.wandb")  # what `wandb sync` uploads: history rows, summary, files
    deadline = time.monotonic() + 60
    while True:  # wandb-core may still be writing the run file when finish() returns
        history = wandb_history(records)
        logged = {key for row in history for key in row}
        if "test/acc" in logged or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {"val/acc", "val/loss", "test/acc", "test/confusion_matrix/_type"} <= logged
    (test_acc,) = [row["test/acc"] for row in history if "test/acc" in row]
    assert 0.0 <= test_acc <= 1.0
    (png,) = (run / "files" / "media" / "images" / "test").glob("confusion_matrix_*.png")
    assert png.stat().st_size > 1000
    (table,) = (run / "files" / "media" / "table" / "test").glob("confusion_matrix_*.table.json")
    assert json.loads(table.read_text())["columns"] == ["true \\ predicted", "0", "1"]


def wandb_history(path: Path) -> list[dict]:
    """The history rows of an offline W&B run file (``run-<id>.wandb``): a LevelDB-style log of protobuf records
    (a 7-byte file header; 32 KiB blocks of chunks, each with a 7-byte header: CRC, length, full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, chunks, rows = path.read_bytes(), 32 * 1024, 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # a chunk still being written
            break
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
    return rows
