"""Where the vision datasets come from: data_dir, a system copy used in place, downloads that are
atomic, and one clear error offline. Downloads are faked: nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from tests.conftest import FIXTURE_TRAIN, write_idx, write_idx_dataset
from torchvision.datasets import FashionMNIST

import datamodules.vision as vision
from datamodules import CIFAR10DataModule, DataNotFoundError, FashionMNISTDataModule, MNISTDataModule

IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _files_under(folder: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(folder) for f in files]


# --------------------------------------------------------------------------------------------------
# Where the files come from, offline
# --------------------------------------------------------------------------------------------------
def test_system_copy_is_used_in_place(tmp_path, monkeypatch):
    system = tmp_path / "system"
    arrays = write_idx_dataset(system, np.random.default_rng(1), gz=True)
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", (str(system),))
    data_dir = tmp_path / "data_dir"
    data_dir.mkdir()
    dm = FashionMNISTDataModule(data_dir=str(data_dir))
    dm.prepare_data()
    dm.setup()
    assert np.array_equal(dm.test_set.tensors[0][:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert len(dm.train_set) + len(dm.val_set) == FIXTURE_TRAIN
    assert list(data_dir.iterdir()) == []


def test_offline_without_files_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", (str(tmp_path / "no-such-folder"),))
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    dm = FashionMNISTDataModule(data_dir=str(data_dir))
    with pytest.raises(DataNotFoundError) as info:
        dm.setup()
    err = info.value
    assert isinstance(err, FileNotFoundError)
    message = str(err)
    assert str(data_dir / "FashionMNIST" / "raw") in message
    for name in IDX_NAMES:
        assert name in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert err.__cause__ is None
    assert err.__suppress_context__ is True
    assert list(data_dir.iterdir()) == []


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule])
def test_download_false_raises_without_trying(tmp_path, monkeypatch, cls):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())

    def must_not_download(*args, **kwargs):
        raise AssertionError("download=False must not download")

    monkeypatch.setattr(vision, "download_url", must_not_download)
    monkeypatch.setattr(vision, "download_and_extract_archive", must_not_download)
    dm = cls(data_dir=str(tmp_path / "data"), download=False)
    with pytest.raises(DataNotFoundError, match="download=False") as info:
        dm.setup()
    assert info.value.__cause__ is None and info.value.__suppress_context__ is True
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule])
def test_prepare_data_looks_up_the_files(tmp_path, monkeypatch, cls):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    dm = cls(data_dir=str(tmp_path / "data"))
    with pytest.raises(DataNotFoundError, match="download failed"):
        dm.prepare_data()


def test_default_data_dir_is_zoo_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "zoo"))
    assert MNISTDataModule().data_dir == tmp_path / "zoo"
    assert CIFAR10DataModule().data_dir == tmp_path / "zoo"


# --------------------------------------------------------------------------------------------------
# Downloads: atomic, nothing half-written
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_failed_idx_download_leaves_nothing(tmp_path, monkeypatch, cls):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    calls = []

    def partial_download(url, root, filename=None, md5=None, **kwargs):
        calls.append(url)
        Path(root, filename).write_bytes(b"\x1f\x8b\x08\x00partial")
        raise URLError("connection reset")

    monkeypatch.setattr(vision, "download_url", partial_download)
    data_dir = tmp_path / "fresh" / "data"
    with pytest.raises(DataNotFoundError, match="connection reset"):
        cls(data_dir=str(data_dir)).setup()
    assert calls  # the fake really ran
    assert not data_dir.exists() or _files_under(data_dir) == []
    assert _files_under(tmp_path) == []


def test_failed_idx_download_keeps_files_already_there(tmp_path, monkeypatch):
    """A failed download into an existing incomplete folder removes its own partial files, not the user's."""
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    kept = write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))

    def partial_download(url, root, filename=None, md5=None, **kwargs):
        Path(root, filename).write_bytes(b"partial")
        raise URLError("offline")

    monkeypatch.setattr(vision, "download_url", partial_download)
    with pytest.raises(DataNotFoundError):
        FashionMNISTDataModule(data_dir=str(tmp_path / "data")).setup()
    assert _files_under(tmp_path) == [kept]


def test_failed_cifar10_download_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def partial_archive(url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        calls.append(url)
        Path(download_root, filename or "archive.tar.gz").write_bytes(b"\x1f\x8b\x08\x00partial")
        raise URLError("connection reset")

    monkeypatch.setattr(vision, "download_and_extract_archive", partial_archive)
    data_dir = tmp_path / "fresh" / "data"
    with pytest.raises(DataNotFoundError, match="connection reset") as info:
        CIFAR10DataModule(data_dir=str(data_dir)).setup()
    assert calls
    assert info.value.__cause__ is None and info.value.__suppress_context__ is True
    assert not data_dir.exists() or _files_under(data_dir) == []
    assert _files_under(tmp_path) == []


def test_successful_download_is_moved_into_place(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    source = write_idx_dataset(tmp_path / "source", np.random.default_rng(2), gz=True)
    requested = []

    def fake_download(url, root, filename=None, md5=None, **kwargs):
        requested.append(filename)
        assert url.endswith(filename)
        write_idx(Path(root) / filename, source[filename.removesuffix(".gz")])

    monkeypatch.setattr(vision, "download_url", fake_download)
    data_dir = tmp_path / "data"
    dm = FashionMNISTDataModule(data_dir=str(data_dir))
    dm.prepare_data()
    assert sorted(requested) == sorted(name for name, _ in FashionMNIST.resources)
    raw = data_dir / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(requested)
    assert [p.name for p in (data_dir / "FashionMNIST").iterdir()] == ["raw"]  # no temporary folder left
    assert sorted(_files_under(data_dir)) == sorted(raw / name for name in requested)

    def no_second_download(*args, **kwargs):
        raise AssertionError("setup must find the downloaded files")

    monkeypatch.setattr(vision, "download_url", no_second_download)
    dm.setup()
    assert np.array_equal(dm.test_set.tensors[0][:, 0].numpy(), source["t10k-images-idx3-ubyte"])
    assert np.array_equal(dm.test_set.tensors[1].numpy(), source["t10k-labels-idx1-ubyte"])
    assert len(dm.train_set) + len(dm.val_set) == FIXTURE_TRAIN
