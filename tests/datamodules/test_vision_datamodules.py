"""Vision datamodules on tiny fixture files in the real formats: reading, splitting, loaders, batch transforms."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.conftest import FIXTURE_TEST, FIXTURE_TRAIN, write_idx
from torchvision.datasets import MNIST, FashionMNIST

from datamodules import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule
from datamodules.base import random_crop, random_horizontal_flip
from datamodules.vision import read_idx

IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _rows(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> list[tuple[bytes, int]]:
    """Each sample as (image bytes, label), sorted: equal lists mean the same multiset of samples, in any order."""
    x, y = np.asarray(x), np.asarray(y)
    return sorted((img.tobytes(), int(label)) for img, label in zip(x.reshape(len(x), -1), y, strict=True))


def _files_under(folder: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(folder) for f in files]


def _idx_fixture(vision_root, which: str) -> tuple[type, Path, dict[str, np.ndarray]]:
    if which == "mnist":
        return MNISTDataModule, vision_root.root / "MNIST" / "raw", vision_root.mnist
    return FashionMNISTDataModule, vision_root.root / "FashionMNIST" / "raw", vision_root.fashion


# --------------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which, ext", [("mnist", ""), ("fashion", ".gz")])
@pytest.mark.parametrize("name", IDX_NAMES)
def test_read_idx_returns_the_written_array(vision_root, which, ext, name):
    _, folder, arrays = _idx_fixture(vision_root, which)
    tensor = read_idx(folder / f"{name}{ext}")
    assert tensor.dtype == torch.uint8
    assert tuple(tensor.shape) == arrays[name].shape
    assert np.array_equal(tensor.numpy(), arrays[name])


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_read_idx_rejects_truncated_file(tmp_path, ext):
    full = write_idx(tmp_path / "full", np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)).read_bytes()
    path = tmp_path / f"cut{ext}"
    data = full[:-10]
    if ext:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize(
    "header",
    [
        b"\x01\x00\x08\x02",  # first byte must be 0
        b"\x00\x01\x08\x02",  # second byte must be 0
        b"\x00\x00\x07\x02",  # 0x07 is no IDX type code
        b"\x1f\x8b\x08\x00",  # a gzip stream read as raw IDX
    ],
)
def test_read_idx_rejects_bad_magic_number(tmp_path, header):
    path = tmp_path / "bad"
    path.write_bytes(header + struct.pack(">2I", 3, 4) + bytes(12))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_read_idx_rejects_file_shorter_than_magic(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError):
        read_idx(path)


# --------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["mnist", "fashion"])
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_idx_datamodule_reads_the_fixture(vision_root, which, layout):
    cls, folder, arrays = _idx_fixture(vision_root, which)
    dm = cls(data_dir=str(vision_root.root if layout == "torchvision" else folder))
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == FIXTURE_TRAIN
    assert len(dm.val_set) == int(FIXTURE_TRAIN * 0.1)
    x_test, y_test = dm.test_set.tensors
    assert x_test.dtype == torch.uint8 and x_test.shape == (FIXTURE_TEST, 1, 28, 28)
    assert np.array_equal(x_test[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert y_test.dtype == torch.int64
    assert np.array_equal(y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    x_pool = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    y_pool = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1]])
    assert _rows(x_pool[:, 0], y_pool) == _rows(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"])


@pytest.mark.parametrize("cls, torchvision_cls", [(MNISTDataModule, MNIST), (FashionMNISTDataModule, FashionMNIST)])
def test_idx_datamodule_metadata(tmp_path, cls, torchvision_cls):
    """Known before any file is read, so the CLI can link them into the model."""
    dm = cls(data_dir=str(tmp_path))
    assert dm.input_shape == (1, 28, 28)
    assert dm.num_classes == 10
    assert dm.class_names == list(torchvision_cls.classes)
    norm = dm.normalization
    assert set(norm) == {"mean", "std"}
    assert norm["mean"] == list(cls.mean) and norm["std"] == list(cls.std)
    assert len(norm["mean"]) == len(norm["std"]) == 1
    assert all(isinstance(v, float) for v in norm["mean"] + norm["std"])


# --------------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_cifar10_reads_the_pickles(vision_root, layout):
    data_dir = vision_root.root if layout == "torchvision" else vision_root.root / "cifar-10-batches-py"
    dm = CIFAR10DataModule(data_dir=str(data_dir))
    dm.setup()
    cifar = vision_root.cifar
    x_test, y_test = dm.test_set.tensors
    assert x_test.dtype == torch.uint8 and x_test.shape == (FIXTURE_TEST, 3, 32, 32)
    assert np.array_equal(x_test.numpy(), cifar["test_x"])
    assert np.array_equal(y_test.numpy(), cifar["test_y"])
    assert len(dm.train_set) + len(dm.val_set) == FIXTURE_TRAIN
    x_pool = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    y_pool = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1]])
    assert x_pool.dtype == torch.uint8 and x_pool.shape == (FIXTURE_TRAIN, 3, 32, 32)
    assert _rows(x_pool, y_pool) == _rows(cifar["train_x"], cifar["train_y"])


def test_cifar10_read_batches_keeps_batch_order(vision_root):
    x, y = CIFAR10DataModule.read_batches(
        vision_root.root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)]
    )
    assert np.array_equal(x.numpy(), vision_root.cifar["train_x"])
    assert np.array_equal(y.numpy(), vision_root.cifar["train_y"])


def test_cifar10_metadata(tmp_path):
    dm = CIFAR10DataModule(data_dir=str(tmp_path))
    assert dm.input_shape == (3, 32, 32)
    assert dm.num_classes == 10
    assert dm.class_names == CIFAR_NAMES
    assert len(dm.normalization["mean"]) == len(dm.normalization["std"]) == 3


# --------------------------------------------------------------------------------------------------
# Seeded split
# --------------------------------------------------------------------------------------------------
def _split(vision_root, seed: int, val_fraction: float = 0.25):
    dm = MNISTDataModule(data_dir=str(vision_root.root), seed=seed, val_fraction=val_fraction)
    dm.setup()
    return dm.train_set.tensors, dm.val_set.tensors


def test_same_seed_gives_the_same_split(vision_root):
    (xt1, yt1), (xv1, yv1) = _split(vision_root, seed=7)
    (xt2, yt2), (xv2, yv2) = _split(vision_root, seed=7)
    assert torch.equal(xt1, xt2) and torch.equal(yt1, yt2)
    assert torch.equal(xv1, xv2) and torch.equal(yv1, yv2)


def test_different_seed_gives_a_different_split(vision_root):
    (xt1, _), (xv1, _) = _split(vision_root, seed=7)
    (xt2, _), (xv2, _) = _split(vision_root, seed=8)
    assert xt1.shape == xt2.shape and xv1.shape == xv2.shape
    assert not torch.equal(xv1, xv2)
    assert _rows(xv1, torch.zeros(len(xv1))) != _rows(xv2, torch.zeros(len(xv2)))  # other images, not just reordered
    assert not torch.equal(xt1, xt2)


def test_split_is_disjoint_and_covers_the_training_pool(vision_root):
    (xt, yt), (xv, yv) = _split(vision_root, seed=3)
    assert len(xv) == int(FIXTURE_TRAIN * 0.25) and len(xt) == FIXTURE_TRAIN - len(xv)
    train_images = {img.tobytes() for img in xt.numpy()}
    val_images = {img.tobytes() for img in xv.numpy()}
    assert len(train_images) == len(xt) and len(val_images) == len(xv)
    assert train_images.isdisjoint(val_images)
    assert _rows(torch.cat([xt, xv])[:, 0], torch.cat([yt, yv])) == _rows(
        vision_root.mnist["train-images-idx3-ubyte"], vision_root.mnist["train-labels-idx1-ubyte"]
    )


def test_train_fraction_is_a_seeded_class_balanced_share_of_the_training_split_only(vision_root):
    """The labels of a label-efficiency run: a share of each class of the training split, drawn with its own seed and
    nested as the share grows; the validation and test splits are those of the whole data."""
    full = FashionMNISTDataModule(data_dir=str(vision_root.root))
    full.setup()
    subsets = {}
    for fraction, subset_seed in [(0.25, 0), (0.5, 0), (0.25, 1)]:
        dm = FashionMNISTDataModule(data_dir=str(vision_root.root), train_fraction=fraction, train_subset_seed=subset_seed)
        dm.setup()
        assert torch.equal(dm.val_set.tensors[0], full.val_set.tensors[0]) and torch.equal(dm.test_set.tensors[0], full.test_set.tensors[0])
        x, y = dm.train_set.tensors
        per_class = torch.bincount(full.train_set.tensors[1], minlength=10)
        assert torch.equal(torch.bincount(y, minlength=10), (per_class * fraction).round().long().clamp_min(1))  # each class's share
        subsets[fraction, subset_seed] = set(_rows(x, y))
        assert subsets[fraction, subset_seed] <= set(_rows(*full.train_set.tensors))
        assert subsets[fraction, subset_seed].isdisjoint(_rows(*full.val_set.tensors))
    assert subsets[0.25, 0] < subsets[0.5, 0] and subsets[0.25, 0] != subsets[0.25, 1]  # nested for a seed; another seed, others
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\]"):
        FashionMNISTDataModule(data_dir=str(vision_root.root), train_fraction=0.0)


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------
def test_train_loader_serves_whole_uint8_batches(vision_root):
    dm = MNISTDataModule(data_dir=str(vision_root.root), batch_size=64)
    dm.setup()
    batches = list(dm.train_dataloader())
    sizes = [len(b[0]) for b in batches]
    n_train = len(dm.train_set)
    assert sizes == [64] * (n_train // 64) + [n_train % 64]
    assert sizes[-1] < 64
    x, y = batches[0]
    assert isinstance(batches[0], tuple) and len(batches[0]) == 2
    assert x.dtype == torch.uint8 and x.shape == (64, 1, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (64,)
    seen_x = torch.cat([b[0] for b in batches])
    seen_y = torch.cat([b[1] for b in batches])
    assert _rows(seen_x, seen_y) == _rows(*dm.train_set.tensors)  # one epoch = every training sample once


def test_eval_loaders_keep_order(vision_root):
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32)
    dm.setup()
    x = torch.cat([b[0] for b in dm.test_dataloader()])
    assert torch.equal(x, dm.test_set.tensors[0])
    x = torch.cat([b[0] for b in dm.val_dataloader()])
    assert torch.equal(x, dm.val_set.tensors[0])


def test_val_fraction_zero_disables_validation(vision_root):
    dm = MNISTDataModule(data_dir=str(vision_root.root), val_fraction=0.0)
    dm.setup()
    assert len(dm.train_set) == FIXTURE_TRAIN
    assert dm.val_dataloader() == []


# --------------------------------------------------------------------------------------------------
# Batch transforms
# --------------------------------------------------------------------------------------------------
def _uint8_batch(shape=(6, 1, 28, 28), seed=0) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.parametrize("cls, shape", [(MNISTDataModule, (6, 1, 28, 28)), (CIFAR10DataModule, (6, 3, 32, 32))])
def test_preprocess_normalizes_and_denormalize_inverts(tmp_path, cls, shape):
    dm = cls(data_dir=str(tmp_path))
    x = _uint8_batch(shape)
    out = dm.preprocess(x, train=False)
    assert out.dtype == torch.float32 and out.shape == x.shape
    mean = torch.tensor(cls.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(cls.std, dtype=torch.float32).view(1, -1, 1, 1)
    assert torch.equal(out, (x.float() / 255 - mean) / std)
    assert torch.allclose(dm.denormalize(out), x.float() / 255, atol=1e-6)


def test_preprocess_train_without_augmentation_equals_eval(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path))
    x = _uint8_batch()
    assert torch.equal(dm.preprocess(x, train=True), dm.preprocess(x, train=False))


def _is_window_of_padded(crop: torch.Tensor, image: torch.Tensor, padding: int) -> bool:
    """Whether ``crop`` (C, H, W) equals some HxW window of ``image`` zero-padded by ``padding``."""
    _, h, w = image.shape
    padded = F.pad(image, (padding,) * 4)
    return any(
        torch.equal(crop, padded[:, top : top + h, left : left + w])
        for top in range(2 * padding + 1)
        for left in range(2 * padding + 1)
    )


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_random_crop_is_a_window_of_the_padded_image(padding):
    torch.manual_seed(padding)
    images = _uint8_batch((16, 3, 12, 10)).float() + 1  # +1: no pixel is 0, so padding is visible
    crops = random_crop(images, padding)
    assert crops.shape == images.shape
    for crop, image in zip(crops, images, strict=True):
        assert _is_window_of_padded(crop, image, padding)
    assert not torch.equal(crops, images)  # 16 images at offset (p, p) by chance: (2p+1)^-32


def test_random_crop_zero_padding_is_identity():
    images = _uint8_batch().float()
    assert torch.equal(random_crop(images, 0), images)


def test_preprocess_with_random_crop_is_a_normalized_window(tmp_path):
    torch.manual_seed(0)
    dm = MNISTDataModule(data_dir=str(tmp_path), random_crop_padding=2)
    x = _uint8_batch((8, 1, 28, 28)) | 1  # no zero pixel: padding stays visible after normalization
    out = dm.preprocess(x, train=True)
    assert out.shape == x.shape and out.dtype == torch.float32
    pixels = dm.denormalize(out).mul(255).round()
    # Padding is 0 in [0, 1] before normalization, so it comes back as 0 after denormalize.
    for crop, image in zip(pixels, x.float(), strict=True):
        assert _is_window_of_padded(crop, image, 2)


@pytest.mark.parametrize("p, flipped", [(1.0, True), (0.0, False)])
def test_random_horizontal_flip_extremes(p, flipped):
    images = _uint8_batch((10, 3, 5, 7)).float()
    out = random_horizontal_flip(images, p=p)
    assert torch.equal(out, images.flip(-1) if flipped else images)


def test_random_horizontal_flip_mixes_at_half():
    torch.manual_seed(0)
    images = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)
    out = random_horizontal_flip(images, p=0.5)
    is_flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, images, strict=True)]
    is_same = [torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f != s for f, s in zip(is_flipped, is_same, strict=True))  # each image either flipped or kept
    assert 0 < sum(is_flipped) < 64


def test_on_after_batch_transfer_preprocesses_inputs_only(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path))
    x = _uint8_batch()
    y = torch.arange(6)
    out = dm.on_after_batch_transfer((x, y), 0)
    assert isinstance(out, tuple) and len(out) == 2
    assert torch.equal(out[0], dm.preprocess(x))
    assert out[1] is y
    example = torch.zeros(2, 784)  # a model's example_input_array (here an MLP's) is already model input
    assert dm.on_after_batch_transfer(example, 0) is example


def test_truncated_gzip_is_a_value_error_naming_the_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])  # an interrupted download
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is truncated or corrupt"):
        read_idx(path)
