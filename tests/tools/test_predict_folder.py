"""zoo-predict on folders: a tidy CSV equal to zoo.predict's top-k, batching that changes nothing but the
number of forward passes, a progress bar when asked, unreadable images named (or skipped and listed), and
a CSV that is never left half-written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.serving.predict import UnreadableImageError, find_images
from zoo.tools import predict as tool


@pytest.fixture(scope="module")
def model():
    return zoo.create_model("lenet5", pretrained="fashionmnist")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """10 images in nested folders (PNG grey and RGB, JPEG), plus files that are not images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for i in range(10):
        sub = root / ("shirts" if i % 2 else "boots") / ("deep" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i % 4 == 1:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(sub / f"img{i}.jpg")
        else:
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(sub / f"img{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / "boots" / "._img0.png").write_bytes(b"macOS resource fork")  # hidden: skipped
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_is_searched_recursively_for_images(folder):
    files = find_images([folder])
    assert len(files) == 10 and files == sorted(files)
    assert all(f.endswith((".png", ".jpg")) and "/._" not in f for f in files)
    (folder / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        find_images([folder / "empty"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_images([folder / "missing.png"])


def test_csv_holds_zoo_predict_top_k_for_every_file(folder, model, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tool, "load_model", lambda *a, **k: model)
    extra = tmp_path / "single.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(extra)
    out = tmp_path / "preds.csv"
    tool.main(["--checkpoint", "lenet5.fashionmnist", str(folder), str(extra), "--topk", "3", "--out", str(out)])
    files = find_images([folder]) + [str(extra)]
    expected = zoo.predict(model, files, topk=3)
    rows = _rows(out)
    assert list(rows[0]) == ["path", "rank", "label", "probability"]
    assert len(rows) == 3 * len(files)
    for i, (path, top) in enumerate(zip(files, expected)):
        got = rows[3 * i : 3 * i + 3]
        assert [r["path"] for r in got] == [path] * 3 and [r["rank"] for r in got] == ["1", "2", "3"]
        assert [r["label"] for r in got] == [label for label, _ in top]
        np.testing.assert_allclose([float(r["probability"]) for r in got], [p for _, p in top], rtol=1e-6)
    assert set(r["label"] for r in rows) <= set(model.class_names)
    assert "wrote the top-3 classes of 11 images" in capsys.readouterr().err


def test_batches_give_the_answers_of_batch_size_one(folder, model, monkeypatch, tmp_path):
    monkeypatch.setattr(tool, "load_model", lambda *a, **k: model)
    sizes: list[int] = []
    real_step = type(model).predict_step
    monkeypatch.setattr(model, "predict_step", lambda x, i: sizes.append(len(x)) or real_step(model, x, i))
    results = {}
    for batch_size in (1, 4):
        sizes.clear()
        out = tmp_path / f"b{batch_size}.csv"
        tool.main([str(folder), "--batch-size", str(batch_size), "--out", str(out), "--no-progress"])
        results[batch_size] = _rows(out)
        assert sizes == ([1] * 10 if batch_size == 1 else [4, 4, 2])  # forward passes of the whole batch
    one, four = results[1], results[4]
    assert [(r["path"], r["rank"], r["label"]) for r in one] == [(r["path"], r["rank"], r["label"]) for r in four]
    np.testing.assert_allclose([float(r["probability"]) for r in one], [float(r["probability"]) for r in four], atol=1e-6)


def test_progress_bar_when_forced_and_not_otherwise(folder, model, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tool, "load_model", lambda *a, **k: model)
    out = str(tmp_path / "p.csv")
    tool.main([str(folder), "--out", out, "--progress", "--batch-size", "4"])
    err = capsys.readouterr().err
    assert "zoo-predict" in err and "10/10" in err
    for flags in ([], ["--no-progress"]):  # stderr is not a terminal under pytest: no bar by default
        tool.main([str(folder), "--out", out, *flags])
        assert "10/10" not in capsys.readouterr().err


def _corrupt(folder: Path) -> list[Path]:
    empty = folder / "boots" / "empty.png"
    empty.write_bytes(b"")
    truncated = folder / "shirts" / "truncated.png"
    data = (folder / "boots" / "deep" / "img0.png").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return [empty, truncated]


def test_unreadable_image_is_named_and_the_previous_csv_survives(folder, model, monkeypatch, tmp_path):
    monkeypatch.setattr(tool, "load_model", lambda *a, **k: model)
    empty, truncated = _corrupt(folder)
    out = tmp_path / "preds.csv"
    out.write_text("path,rank,label,probability\nold,1,Shirt,0.5\n")
    before = out.read_text()
    with pytest.raises(SystemExit, match=rf"cannot read image {empty}.*--skip-bad"):
        tool.main([str(folder), "--out", str(out), "--batch-size", "4"])
    assert out.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["images", "preds.csv"]
    with pytest.raises(UnreadableImageError, match=f"cannot read image {truncated}") as info:
        zoo.predict(model, [str(truncated)])
    assert info.value.path == str(truncated)


def test_skip_bad_lists_the_unreadable_images_and_predicts_the_rest(folder, model, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tool, "load_model", lambda *a, **k: model)
    bad = _corrupt(folder)
    out = tmp_path / "preds.csv"
    tool.main([str(folder), "--out", str(out), "--skip-bad", "--topk", "2", "--batch-size", "4"])
    err = capsys.readouterr().err
    assert "skipped 2 unreadable image(s)" in err and all(str(p) in err for p in bad)
    paths = [r["path"] for r in _rows(out)]
    assert len(paths) == 2 * 10 and not set(map(str, bad)) & set(paths)
