"""A download or a save interrupted mid-stream (Ctrl-C: ``KeyboardInterrupt``, not only a network error)
leaves neither the final file nor a stray partial one that a later run would read.

``test_data_sources`` covers failed (URLError) dataset downloads and ``test_export`` / ``test_pretrained``
failed saves; these interrupt the other writers the same way and then run again, offline, to show that
the next run reports the data missing instead of reading half a file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import torch.hub

import datamodules.vision as vision
import zoo
from datamodules import CIFAR10DataModule, DataNotFoundError, FashionMNISTDataModule, IMDBDataModule, TranslationDataModule
from zoo.hub.pretrained import PretrainedWeightsUnavailable, save_pretrained


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _interrupt_after_half(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1f\x8b\x08\x00half a file")
    raise KeyboardInterrupt


def test_an_interrupted_idx_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())
    fetched = []

    def interrupted(url, root, filename=None, md5=None, **kwargs):
        fetched.append(filename)
        if len(fetched) == 1:  # the first file arrives whole
            Path(root, filename).write_bytes(b"\x1f\x8b\x08\x00a whole file")
            return
        _interrupt_after_half(Path(root, filename))

    monkeypatch.setattr(vision, "download_url", interrupted)
    data_dir = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        FashionMNISTDataModule(data_dir=str(data_dir)).setup()
    assert len(fetched) == 2 and _files_under(tmp_path) == []  # not even the complete first file
    with pytest.raises(DataNotFoundError):  # the next run finds nothing to misread
        FashionMNISTDataModule(data_dir=str(data_dir), download=False).setup()


def test_an_interrupted_cifar10_extraction_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        Path(download_root, filename).write_bytes(b"the whole archive")
        (Path(download_root) / "cifar-10-batches-py").mkdir()
        _interrupt_after_half(Path(download_root) / "cifar-10-batches-py" / "data_batch_1")

    monkeypatch.setattr(vision, "download_and_extract_archive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        CIFAR10DataModule(data_dir=str(tmp_path / "data")).setup()
    assert _files_under(tmp_path) == []


def test_an_interrupted_imdb_download_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        (Path(download_root) / "aclImdb" / "train" / "pos").mkdir(parents=True)
        _interrupt_after_half(Path(download_root) / "aclImdb" / "train" / "pos" / "0_9.txt")

    monkeypatch.setattr(vision, "download_and_extract_archive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        IMDBDataModule(data_dir=str(tmp_path / "data")).setup()
    assert _files_under(tmp_path) == []
    with pytest.raises(DataNotFoundError):
        IMDBDataModule(data_dir=str(tmp_path / "data"), download=False).setup()


def test_an_interrupted_tsv_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(vision, "download_url", lambda url, root, filename=None, **kw: _interrupt_after_half(Path(root, filename)))
    dm = TranslationDataModule(tsv_path="https://example.org/fra.txt", data_dir=str(tmp_path / "data"))
    with pytest.raises(KeyboardInterrupt):
        dm.setup()
    assert _files_under(tmp_path) == []


class _Response(io.BytesIO):
    """What ``urlopen`` returns, serving half of ``size`` bytes before Ctrl-C."""

    def __init__(self, size: int) -> None:
        super().__init__(b"\x00" * (size // 2))
        self.size = size

    def info(self):
        return _Headers(self.size)

    def read(self, n: int = -1) -> bytes:
        chunk = super().read(n)
        if not chunk:
            raise KeyboardInterrupt
        return chunk


class _Headers:
    def __init__(self, size: int) -> None:
        self.size = size

    def get_all(self, name: str):
        return [str(self.size)] if name == "Content-Length" else None


def test_an_interrupted_imagenet_weights_download_leaves_nothing(tmp_path, monkeypatch):
    """torch.hub's download (through ``zoo.get_weights``) into the hub cache, cut off halfway by Ctrl-C."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "urlopen", lambda request, *a, **kw: _Response(64 * 1024))
    weights = zoo.get_weights("resnet18", "IMAGENET1K_V1")
    with pytest.raises(KeyboardInterrupt):
        weights.download(progress=False)
    assert _files_under(tmp_path / "hub") == []
    monkeypatch.setattr(torch.hub, "urlopen", lambda *a, **kw: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(PretrainedWeightsUnavailable):  # the next run downloads again, it does not load a stub
        zoo.create_model("resnet18", weights="IMAGENET1K_V1")


def test_an_interrupted_save_pretrained_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", lambda tensors, filename, metadata=None: _interrupt_after_half(Path(filename)))
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(zoo.LeNet5(), tmp_path, "lenet5.tiny")
    assert _files_under(tmp_path) == []
