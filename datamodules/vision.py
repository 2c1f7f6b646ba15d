"""MNIST, Fashion-MNIST and CIFAR-10 as in-memory uint8 tensors.

Where the files come from, first match wins:

1. ``data_dir`` in torchvision's layout (``<data_dir>/FashionMNIST/raw/...``, ``<data_dir>/cifar-10-batches-py``),
   or ``data_dir`` holding the files themselves; IDX files may be gzipped or not;
2. a system copy, used in place: Debian's ``dataset-fashion-mnist`` puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``;
3. a download from torchvision's mirrors (``download=True``) into ``<data_dir>`` in torchvision's layout.
   Files are fetched into a temporary folder and moved into place only once all of them passed their
   MD5 check, so a failed or interrupted download leaves nothing half-written.

With none of these, ``DataNotFoundError`` says where the files were looked for and where to put them.

CIFAR-10's batches are Python pickles, and unpickling runs whatever code a file names: each batch's MD5
is checked against torchvision's list (``CIFAR10_MD5``) before it is unpickled, and a mismatch is refused.
Only that list is trusted: nothing outside the code (no file, no environment variable) can add to it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tempfile
import zlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST
from torchvision.datasets.utils import download_and_extract_archive, download_url

from datamodules.base import CorruptDataError, DataNotFoundError, ImageDataModule, InMemoryDataset, stratified_subset

__all__ = ["CIFAR10_MD5", "CIFAR10DataModule", "FashionMNISTDataModule", "MNISTDataModule", "read_idx", "resolve_data_dir"]

# The MD5 of each official CIFAR-10 batch (torchvision's CIFAR10.train_list and test_list).
CIFAR10_MD5 = dict(CIFAR10.train_list + CIFAR10.test_list)

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"), big-endian on disk.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def resolve_data_dir(data_dir: str | None) -> Path:
    """``data_dir``, else ``$ZOO_DATA_DIR``, else ``./data``."""
    return Path(data_dir or os.environ.get("ZOO_DATA_DIR") or "data").expanduser()


def read_idx(path: str | Path) -> Tensor:
    """Read an IDX file (gzipped when its name ends in .gz) into a tensor of its stored shape and type.

    A truncated or damaged file, or one that is not IDX, raises ``CorruptDataError`` naming it.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # an interrupted download or a damaged archive
        raise CorruptDataError(f"{path} is truncated or corrupt: {e}. Delete it and download it again.") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise CorruptDataError(
            f"{path} is not an IDX file (bad magic number {data[:4]!r}; IDX starts with 0, 0, a type code "
            f"({', '.join(f'0x{code:02X}' for code in _IDX_DTYPES)}) and the number of dimensions)"
        )
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(data) < offset or len(data) != expected:
        raise CorruptDataError(
            f"{path} is truncated or corrupt: {len(data)} bytes, its header (shape {shape}) says {expected}. "
            "Delete it and download it again."
        )
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _download_atomically(target: Path, fetch) -> None:
    """Run ``fetch(tmp_dir)`` in a temporary folder beside ``target``, then move what it made into ``target``.

    On failure the temporary folder is removed, and so is every folder this call created on the way.
    """
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        produced = fetch(tmp)  # the folder to install as `target`
        if target.is_dir():  # an existing, incomplete folder: add the files to it
            for item in produced.iterdir():
                item.replace(target / item.name)
        else:
            produced.replace(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)


class _DownloadFailed(Exception):
    pass


def _fetch_each(resources: list[tuple[str, str]], mirrors: list[str], folder: Path) -> None:
    """Download every (filename, md5) from the first mirror that serves it, checking the MD5."""
    for filename, md5 in resources:
        errors = []
        for mirror in mirrors:
            try:
                download_url(mirror + filename, root=str(folder), filename=filename, md5=md5)
                break
            except (URLError, OSError, RuntimeError) as e:  # offline, HTTP error, MD5 mismatch
                (folder / filename).unlink(missing_ok=True)
                errors.append(f"{mirror + filename}: {getattr(e, 'reason', e)}")
        else:
            raise _DownloadFailed("; ".join(errors))


# --------------------------------------------------------------------------------------------------
# MNIST family (IDX files)
# --------------------------------------------------------------------------------------------------
class _IDXDataModule(ImageDataModule):
    """Shared reader for datasets stored as four IDX files (train/test images and labels)."""

    folder: str = ""  # torchvision's folder name under data_dir
    torchvision_dataset: type[MNIST] = MNIST  # source of the mirrors, file names and MD5s
    system_dirs: tuple[str, ...] = ()  # system-wide copies used in place
    install_hint: str = ""
    files = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    input_shape = (1, 28, 28)
    num_classes = 10

    def __init__(self, *, data_dir: str | None = None, download: bool = True, train_fraction: float = 1.0, train_subset_seed: int = 0,
                 **kwargs) -> None:  # fmt: skip
        super().__init__(**kwargs)
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        self.data_dir = resolve_data_dir(data_dir)
        self.download = download
        self.train_fraction = train_fraction
        self.train_subset_seed = train_subset_seed
        self.class_names = list(self.torchvision_dataset.classes)

    # -- locating the files --------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        """Where torchvision keeps (and this module downloads) the files: ``<data_dir>/<folder>/raw``."""
        return self.data_dir / self.folder / "raw"

    def candidate_dirs(self) -> list[Path]:
        return [self.raw_dir, self.data_dir, *map(Path, self.system_dirs)]

    @staticmethod
    def _find(folder: Path, name: str) -> Path | None:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def locate(self) -> dict[str, Path]:
        """Paths of the four files, downloading them when allowed; DataNotFoundError otherwise."""
        names = [n for pair in self.files.values() for n in pair]
        for folder in self.candidate_dirs():
            found = {n: self._find(folder, n) for n in names}
            if all(found.values()):
                return found
        reason = "download=False"
        if self.download:
            try:
                _download_atomically(self.raw_dir, self._fetch)
                return {n: self._find(self.raw_dir, n) for n in names}
            except _DownloadFailed as e:
                reason = f"the download failed: {e}"
        looked = "\n".join(f"  {d}" for d in self.candidate_dirs())
        wanted = ", ".join(f"{n}.gz" for n in names)
        hint = f"\n  or install them system-wide: {self.install_hint}" if self.install_hint else ""
        raise DataNotFoundError(
            f"{self.folder} not found; looked in\n{looked}\nand {reason}.\n"
            f"Put {wanted} (gzipped or not) in {self.raw_dir}{hint}\n"
            f"  or point data_dir (--data.data_dir) at a folder that holds them."
        ) from None

    def _fetch(self, tmp: Path) -> Path:
        raw = tmp / "raw"
        raw.mkdir()
        _fetch_each(list(self.torchvision_dataset.resources), list(self.torchvision_dataset.mirrors), raw)
        return raw

    # -- reading ------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.locate()  # download once, on one process

    def load(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        paths = self.locate()
        splits = []
        for images_name, labels_name in self.files.values():
            images = read_idx(paths[images_name]).unsqueeze(1)  # (N, 1, 28, 28) uint8
            labels = read_idx(paths[labels_name]).long()  # (N,)
            if images.shape[0] != labels.shape[0]:
                raise CorruptDataError(
                    f"{paths[images_name]} has {images.shape[0]} images but {paths[labels_name]} {labels.shape[0]} labels"
                )
            splits.append((images, labels))
        return splits[0], splits[1]

    def setup(self, stage: str | None = None) -> None:
        """The seeded train/val split, then ``train_fraction`` of each class of the training split (never of
        validation or test): ``stratified_subset`` with ``train_subset_seed``, nested as the fraction grows."""
        if self.train_set is not None:
            return
        super().setup(stage)
        if self.train_fraction < 1.0:
            x, y = self.train_set.tensors
            keep = stratified_subset(torch.arange(len(y)), y, self.train_fraction, seed=self.train_subset_seed)  # (n,)
            self.train_set = InMemoryDataset(x[keep], y[keep])


class MNISTDataModule(_IDXDataModule):
    """MNIST handwritten digits, 60,000 train / 10,000 test, 1x28x28.

    Args:
        data_dir: root in torchvision's layout (files in ``<data_dir>/MNIST/raw``), or a folder holding
            the four IDX files. Default: ``$ZOO_DATA_DIR``, else ``./data``.
        download: fetch the files from torchvision's mirrors when they are not found.
        train_fraction: share of each class of the training split kept (a seeded, stratified subset, nested as the
            fraction grows); validation and test are unchanged. For label-efficiency curves.
        train_subset_seed: seed of that subset.
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        random_erasing: training augmentation: probability that an image gets a random rectangle of noise (0: off).
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: unused: MNIST has an official test split.
        seed: seed of the train/val split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    folder = "MNIST"
    torchvision_dataset = MNIST
    mean = (0.1307,)
    std = (0.3081,)


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST (Zalando) clothing images, 60,000 train / 10,000 test, 1x28x28, 10 classes.

    Uses Debian's ``dataset-fashion-mnist`` files in place when they are installed.

    Args:
        data_dir: root in torchvision's layout (files in ``<data_dir>/FashionMNIST/raw``), or a folder
            holding the four IDX files. Default: ``$ZOO_DATA_DIR``, else ``./data``.
        download: fetch the files from torchvision's mirror when they are not found.
        train_fraction: share of each class of the training split kept (a seeded, stratified subset, nested as the
            fraction grows); validation and test are unchanged. For label-efficiency curves.
        train_subset_seed: seed of that subset.
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        random_erasing: training augmentation: probability that an image gets a random rectangle of noise (0: off).
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: unused: Fashion-MNIST has an official test split.
        seed: seed of the train/val split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    folder = "FashionMNIST"
    torchvision_dataset = FashionMNIST
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    install_hint = "apt-get install dataset-fashion-mnist (Debian/Ubuntu)"
    # Statistics of the 60,000 training images (tests/datamodules/test_vision_data.py checks them on the real files).
    mean = (0.2860,)
    std = (0.3530,)


# --------------------------------------------------------------------------------------------------
# CIFAR-10 (python pickle batches)
# --------------------------------------------------------------------------------------------------
class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10, 50,000 train / 10,000 test colour images, 3x32x32, 10 classes.

    Reads the official "python version" pickle batches (``data_batch_1`` ... ``data_batch_5``, ``test_batch``).

    Args:
        data_dir: root holding ``cifar-10-batches-py`` (torchvision's layout), or that folder itself.
            Default: ``$ZOO_DATA_DIR``, else ``./data``.
        download: fetch and unpack the official archive when the batches are not found.
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        random_erasing: training augmentation: probability that an image gets a random rectangle of noise (0: off).
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: unused: CIFAR-10 has an official test split.
        seed: seed of the train/val split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    folder = "cifar-10-batches-py"
    train_batches = [f"data_batch_{i}" for i in range(1, 6)]
    test_batches = ["test_batch"]
    input_shape = (3, 32, 32)
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(self, *, data_dir: str | None = None, download: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_dir = resolve_data_dir(data_dir)
        self.download = download
        self.class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def candidate_dirs(self) -> list[Path]:
        return [self.data_dir / self.folder, self.data_dir]

    def locate(self) -> Path:
        """The folder holding the batches, downloading them when allowed; DataNotFoundError otherwise."""
        for folder in self.candidate_dirs():
            if all((folder / name).is_file() for name in self.train_batches + self.test_batches):
                return folder
        reason = "download=False"
        if self.download:
            try:
                _download_atomically(self.data_dir / self.folder, self._fetch)
                return self.data_dir / self.folder
            except _DownloadFailed as e:
                reason = f"the download failed: {e}"
        looked = "\n".join(f"  {d}" for d in self.candidate_dirs())
        raise DataNotFoundError(
            f"CIFAR-10 not found; looked in\n{looked}\nand {reason}.\n"
            f"Unpack cifar-10-python.tar.gz ({CIFAR10.url}) so that {self.data_dir / self.folder} holds "
            f"data_batch_1 ... data_batch_5 and test_batch,\n"
            f"  or point data_dir (--data.data_dir) at a folder that holds them."
        ) from None

    @staticmethod
    def _fetch(tmp: Path) -> Path:
        try:
            download_and_extract_archive(CIFAR10.url, str(tmp), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
        except (URLError, OSError, RuntimeError) as e:
            raise _DownloadFailed(f"{CIFAR10.url}: {getattr(e, 'reason', e)}") from None
        return tmp / CIFAR10.base_folder

    def prepare_data(self) -> None:
        self.locate()

    @staticmethod
    def accepted_md5s(name: str) -> set[str]:
        """MD5s accepted for batch ``name``: torchvision's (``CIFAR10_MD5``), and nothing else."""
        return {md5 for md5 in (CIFAR10_MD5.get(name),) if md5}

    @classmethod
    def read_batch(cls, path: Path) -> dict:
        """One pickled batch, unpickled only once its MD5 matched a known one (a pickle can run code)."""
        data = path.read_bytes()
        md5 = hashlib.md5(data).hexdigest()
        accepted = cls.accepted_md5s(path.name)
        if md5 not in accepted:
            expected = " or ".join(sorted(accepted)) or "none (not a CIFAR-10 batch name)"
            raise CorruptDataError(
                f"{path} is not CIFAR-10's: its MD5 is {md5}, expected {expected}. It is not unpickled, since "
                f"unpickling can run code.\nDelete {path.parent} and download it again (download=True), "
                f"or unpack the official {CIFAR10.url} there."
            )
        return pickle.loads(data, encoding="latin1")

    @classmethod
    def read_batches(cls, folder: Path, names: list[str]) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for name in names:
            entry = cls.read_batch(folder / name)
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))  # (N, 3, 32, 32)
            labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)

    def load(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        folder = self.locate()
        return self.read_batches(folder, self.train_batches), self.read_batches(folder, self.test_batches)
