"""Image datasets larger than memory, streamed from chunk files written by Lightning's ``litdata``.

A streaming copy of a dataset is a folder (local, or a ``s3://`` / ``gs://`` / ``azure://`` URL that
``litdata`` reads) holding one ``litdata`` dataset per split and a description of the data::

    <data_dir>/dataset.json          class names, input shape, mean/std, the source and its split
    <data_dir>/train/index.json, chunk-*.bin
    <data_dir>/val/...               (absent when the source held no validation data out)
    <data_dir>/test/...

Each sample is ``{"image": uint8 (C, H, W) tensor, "label": int}``. ``write_streaming_dataset`` writes
such a copy from any zoo image datamodule (command line: ``python -m zoo.tools.stream
--source FashionMNISTDataModule --out DIR``); ``StreamingImageDataModule`` reads it back chunk by chunk
(``litdata.StreamingDataset``: shuffled training, sharded across DDP ranks and loader workers) and
hands the uint8 batches to ``ImageDataModule.preprocess``, so the models see exactly what the
in-memory datamodule gives them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from datamodules.base import CorruptDataError, DataNotFoundError, ImageDataModule
from datamodules.vision import resolve_data_dir

__all__ = ["ACCEPTED_FORMATS", "StreamingImageDataModule", "check_index", "read_metadata", "source_datamodules", "write_split", "write_streaming_dataset"]

METADATA = "dataset.json"
SPLITS = ("train", "val", "test")
_INSTALL_HINT = "streaming needs litdata: pip install 'lightning-zoo[stream]' (or pip install litdata)"


def _litdata():
    # litdata asks PyPI for a newer version of itself (30 s timeout) each time a dataset is created, unless told
    # not to; a training run (and an offline cluster) should not.
    os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
    try:
        import litdata
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    return litdata


def _is_remote(path: str) -> bool:
    """A URL that litdata downloads from (``s3://``, ``gs://``, ...; ``local:/path`` goes through the same cache)."""
    return "://" in path or path.startswith("local:")


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def write_split(images: Tensor, labels: Tensor, out_dir: str | Path, *, chunk_bytes: str = "64MB") -> Path:
    """Write one split as a ``litdata`` dataset, samples in their given order.

    Args:
        images: uint8 (N, C, H, W) images.
        labels: (N,) integer class labels.
        out_dir: folder to create; it must not exist yet.
        chunk_bytes: size of each chunk file (litdata's ``chunk_bytes``), e.g. ``"64MB"``.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be ({images.shape[0]},), one per image, got {tuple(labels.shape)}")
    if len(images) == 0:
        raise ValueError(f"cannot write an empty split to {out_dir}")
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; delete it or choose another out_dir")
    out_dir.mkdir(parents=True)
    _litdata()
    from litdata.streaming.writer import BinaryWriter

    # litdata.optimize's own writer, run in this process: no worker processes to spawn (they re-import
    # __main__), and the samples keep their order, which several writers would interleave.
    writer = BinaryWriter(str(out_dir), chunk_bytes=chunk_bytes)
    labels = labels.long()
    for index in range(len(images)):
        writer.add_item(index, {"image": images[index].contiguous(), "label": int(labels[index])})  # (C, H, W) uint8
    writer.done()
    writer.merge()
    return out_dir


def write_streaming_dataset(datamodule: ImageDataModule, out_dir: str | Path, *, chunk_bytes: str = "64MB") -> Path:
    """Write the train, val and test splits of a zoo image datamodule as a streaming copy in ``out_dir``.

    The splits are the datamodule's own (its ``val_fraction`` and ``seed``), so the copy streams the same
    samples in the same order. The folder appears whole or not at all: it is written next to ``out_dir``
    and renamed into place.

    Args:
        datamodule: an ``ImageDataModule`` (FashionMNISTDataModule, CIFAR10DataModule, ImageFolderDataModule, ...).
        out_dir: folder to create; it must not exist yet.
        chunk_bytes: size of each chunk file, e.g. ``"64MB"``.
    """
    if not isinstance(datamodule, ImageDataModule):
        raise TypeError(f"datamodule must be an ImageDataModule (uint8 images), got {type(datamodule).__name__}")
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; delete it or choose another out_dir")
    datamodule.prepare_data()
    datamodule.setup("fit")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        sizes = {}
        for split in SPLITS:
            dataset = getattr(datamodule, f"{split}_set")
            if dataset is None or len(dataset) == 0:
                continue
            images, labels = dataset.tensors[:2]
            write_split(images, labels, tmp / split, chunk_bytes=chunk_bytes)
            sizes[split] = len(images)
        metadata = {
            "source": type(datamodule).__name__,
            "val_fraction": datamodule.val_fraction,
            "seed": datamodule.seed,
            "num_classes": datamodule.num_classes,
            "input_shape": list(datamodule.input_shape),
            "class_names": list(datamodule.class_names or []),
            "mean": list(datamodule.mean),
            "std": list(datamodule.std),
            "sizes": sizes,
        }
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def read_metadata(data_dir: str) -> dict[str, Any]:
    """``<data_dir>/dataset.json``, fetched through litdata's downloader when ``data_dir`` is a URL."""
    if not _is_remote(data_dir):
        path = Path(data_dir) / METADATA
        if not path.is_file():
            raise DataNotFoundError(
                f"no streaming dataset in {data_dir} ({METADATA} is missing). Write one with\n"
                f"  python -m zoo.tools.stream --source FashionMNISTDataModule --out {data_dir}\n"
                f"or give the datamodule a source (--data.source FashionMNISTDataModule) to write it on first use."
            )
        return json.loads(path.read_text())
    _litdata()
    from litdata.streaming.downloader import get_downloader

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, METADATA)
        get_downloader(data_dir, tmp, []).download_file(f"{data_dir.rstrip('/')}/{METADATA}", local)
        return json.loads(Path(local).read_text())


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
#: What ``write_split`` declares in a split's ``index.json``: litdata's serializers for a uint8 tensor and an
#: int, read by its PyTreeLoader from a ``{"image", "label"}`` dict. litdata unpickles any field declared
#: ``"pickle"`` (and decodes others through third-party codecs), so a downloaded copy declaring anything
#: else is refused before a chunk is read.
ACCEPTED_FORMATS = frozenset({"tensor", "int"})
_ACCEPTED_LOADERS = (None, "PyTreeLoader")
_ACCEPTED_TREE_TYPES = (None, "builtins.dict")


def _tree_types(spec: Any) -> list[Any]:
    """Every ``"type"`` in a serialized torch pytree spec (litdata's ``data_spec``)."""
    if isinstance(spec, list):
        return [t for item in spec for t in _tree_types(item)]
    if isinstance(spec, dict):
        return [spec.get("type"), *_tree_types(spec.get("children_spec", []))]
    return []


def check_index(index: Any, where: str) -> None:
    """Refuse a split's ``index.json`` that declares anything but what ``write_split`` writes.

    Args:
        index: the parsed ``index.json``.
        where: the file, named in the error.

    Raises:
        ValueError: a data format other than ``ACCEPTED_FORMATS`` (``"pickle"`` above all), another item
            loader or tree type, compression or encryption.
    """
    config = index.get("config") if isinstance(index, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{where} is not a litdata index (no 'config')")
    formats = config.get("data_format")
    if not isinstance(formats, list) or not formats:
        raise ValueError(f"{where} declares no data_format")
    types = config.get("types") or {}
    declared = [*formats, *(types.values() if isinstance(types, dict) else [types])]
    refused = [f for f in declared if f not in ACCEPTED_FORMATS]
    if refused:
        raise ValueError(
            f"{where} declares the data format {refused[0]!r}; the zoo reads only streaming copies it writes "
            f"({', '.join(sorted(ACCEPTED_FORMATS))}: uint8 images and int labels). Fields declared 'pickle' would "
            "be unpickled, which runs code, so nothing of it is read."
        )
    if config.get("item_loader") not in _ACCEPTED_LOADERS:
        raise ValueError(f"{where} declares the item loader {config.get('item_loader')!r}; only litdata's PyTreeLoader is read")
    try:
        spec = json.loads(config["data_spec"]) if isinstance(config.get("data_spec"), str) else []
    except ValueError:
        raise ValueError(f"{where}: its data_spec is not JSON") from None
    odd = [t for t in _tree_types(spec) if t not in _ACCEPTED_TREE_TYPES]
    if odd:
        raise ValueError(f"{where} declares samples of type {odd[0]!r}; the zoo writes {{'image', 'label'}} dicts")
    for key in ("compression", "encryption"):
        if config.get(key):
            raise ValueError(f"{where} declares {key} {config[key]!r}; the zoo writes neither compression nor encryption")


def _image_batch(samples: list[dict[str, Any]]) -> tuple[Tensor, Tensor]:
    """litdata samples -> (uint8 (B, C, H, W), int64 (B,)), the in-memory loaders' batch layout."""
    images = torch.stack([s["image"] for s in samples])  # (B, C, H, W)
    return images, torch.tensor([s["label"] for s in samples], dtype=torch.long)


def source_datamodules() -> dict[str, type[ImageDataModule]]:
    """The zoo's image datamodules that a streaming copy can be written from, by class name."""
    import datamodules

    return {n: c for n in datamodules.__all__ if isinstance(c := getattr(datamodules, n), type)
            and issubclass(c, ImageDataModule) and c is not ImageDataModule and c.__name__ != "StreamingImageDataModule"}  # fmt: skip


class StreamingImageDataModule(ImageDataModule):
    """Images streamed from a ``litdata`` copy (``write_streaming_dataset``), never held in memory whole.

    Batches are the in-memory datamodules' uint8 (B, C, H, W) images and labels; augmentation and
    normalization run on them after the transfer to the model's device (``ImageDataModule.preprocess``).
    With ``source`` set and ``data_dir`` absent, the copy is written from that zoo datamodule on first use.

    Args:
        data_dir: the streaming copy: a local folder or a URL that litdata reads (``s3://bucket/fmnist``).
            Default: ``<$ZOO_DATA_DIR or ./data>/streaming/<source>``.
        source: a zoo image datamodule (``FashionMNISTDataModule``, ``MNISTDataModule``, ``CIFAR10DataModule``)
            whose data is written to ``data_dir`` when ``data_dir`` is absent; None: ``data_dir`` must exist.
        source_dir: the source's ``data_dir`` (where its files are); default its own default.
        cache_dir: where litdata keeps the chunks it downloads from a remote ``data_dir``; default litdata's.
        max_cache_size: bound on that cache, e.g. ``"50GB"``; chunks already read are evicted beyond it.
            Default: litdata's.
        chunk_bytes: size of each chunk file when writing from ``source``.
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        batch_size: samples per batch for every split.
        val_fraction: share of the source's training data held out for validation when writing (0: none).
        test_fraction: share held out for testing when writing, for sources without an official test split.
        seed: seed of the source's split when writing, and of the training shuffle.
        num_workers: DataLoader worker processes reading chunks; each streams its own share.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        source: str | None = None,
        source_dir: str | None = None,
        cache_dir: str | None = None,
        max_cache_size: str | None = None,
        chunk_bytes: str = "64MB",
        random_crop_padding: int = 0,
        horizontal_flip: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(random_crop_padding=random_crop_padding, horizontal_flip=horizontal_flip, **kwargs)
        choices = source_datamodules()
        if source is not None and source not in choices:
            raise ValueError(f"source must be one of {sorted(choices)} or None, got {source!r}")
        if data_dir is None:
            if source is None:
                raise ValueError("give data_dir (a streaming copy), or source (a zoo datamodule to write it from)")
            data_dir = str(resolve_data_dir(None) / "streaming" / source)
        self.data_dir = data_dir if _is_remote(data_dir) else str(Path(data_dir).expanduser().resolve())
        self.source, self.source_dir = source, source_dir
        self.cache_dir, self.max_cache_size, self.chunk_bytes = cache_dir, max_cache_size, chunk_bytes
        self.streams: dict[str, Any] = {}
        if source is not None and not self._exists():
            # Known before any data is written, so that the CLI can link it into the model.
            dm = self._source_datamodule()
            metadata = {"num_classes": dm.num_classes, "input_shape": dm.input_shape, "class_names": dm.class_names,
                        "mean": dm.mean, "std": dm.std}  # fmt: skip
        else:
            metadata = read_metadata(self.data_dir)
        self.num_classes = metadata["num_classes"]
        self.input_shape = tuple(metadata["input_shape"])
        self.class_names = list(metadata["class_names"]) or None
        self.mean, self.std = tuple(metadata["mean"]), tuple(metadata["std"])

    def _exists(self) -> bool:
        return _is_remote(self.data_dir) or (Path(self.data_dir) / METADATA).is_file()

    def _source_datamodule(self) -> ImageDataModule:
        options = {} if self.source_dir is None else {"data_dir": self.source_dir}
        return source_datamodules()[self.source](batch_size=self.batch_size, val_fraction=self.val_fraction,
                                              test_fraction=self.test_fraction, seed=self.seed, **options)  # fmt: skip

    def prepare_data(self) -> None:
        """Write the streaming copy from ``source`` when it is absent (once per node: Lightning calls this on
        local rank 0 only); refuse a copy written with another source or split."""
        if self.source is None:
            return
        if not self._exists():
            write_streaming_dataset(self._source_datamodule(), self.data_dir, chunk_bytes=self.chunk_bytes)
            return
        metadata = read_metadata(self.data_dir)
        wanted = {"source": self.source, "val_fraction": self.val_fraction, "seed": self.seed}
        found = {key: metadata.get(key) for key in wanted}
        if found != wanted:
            raise ValueError(
                f"{self.data_dir} was written with {found}, not {wanted}: delete it to write it again, "
                f"or choose another data_dir"
            )

    def setup(self, stage: str | None = None) -> None:
        if self.streams:
            return
        litdata = _litdata()
        splits = read_metadata(self.data_dir).get("sizes", {})
        for split in SPLITS:
            if split in splits:
                url = self.data_dir if _is_remote(self.data_dir) else Path(self.data_dir).as_posix()
                # batch_decode off: "auto" decoded 32 neighbours per shuffled sample, 2.7x slower here.
                # drop_last left to litdata: on under DDP, so that every rank gets as many batches (uneven
                # counts hang the gradient all-reduce); off in one process, where every sample is served.
                cache = {} if self.max_cache_size is None else {"max_cache_size": self.max_cache_size}
                dataset = litdata.StreamingDataset(
                    f"{url.rstrip('/')}/{split}", cache_dir=self.cache_dir, shuffle=split == "train", seed=self.seed,
                    batch_decode=False, **cache,
                )  # fmt: skip
                # The index litdata itself will read (its local copy, for a URL), checked before any chunk is.
                index = Path(dataset.input_dir.path) / "index.json"
                try:
                    check_index(json.loads(index.read_text()), f"{url.rstrip('/')}/{split}/index.json")
                except ValueError as e:
                    self.streams.clear()
                    raise CorruptDataError(str(e)) from None
                self.streams[split] = dataset

    def _stream_loader(self, split: str):
        if not self.streams:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for a dataloader")
        dataset = self.streams.get(split)
        if dataset is None:
            if split == "val":
                return []  # no validation split written: no validation loop
            raise DataNotFoundError(f"{self.data_dir} holds no {split} split (it has {sorted(self.streams)})")
        # Workers end with each epoch: litdata's persistent workers took 11 s to shut down here, every time.
        return _litdata().StreamingDataLoader(
            dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_image_batch,
            pin_memory=torch.cuda.is_available(), persistent_workers=False,
        )  # fmt: skip

    def train_dataloader(self):
        return self._stream_loader("train")

    def val_dataloader(self):
        return self._stream_loader("val")

    def test_dataloader(self):
        return self._stream_loader("test")

    def predict_dataloader(self):
        return self._stream_loader("test")

    # The training loader (StreamingDataLoader) saves and restores its own position in Lightning's
    # checkpoints; the in-memory sampler state of ZooDataModule does not apply.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass
