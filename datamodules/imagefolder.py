"""A folder of JPEG / PNG images, one sub-folder per class, as an in-memory datamodule.

    <data_dir>/train/<class>/*.jpg|*.jpeg|*.png
    <data_dir>/val/<class>/...     (optional: else ``val_fraction`` of train is held out)
    <data_dir>/test/<class>/...    (optional: else the validation images are the test set)

Class names are the sorted sub-folder names of ``train`` (torchvision's ``ImageFolder`` order). Every
image is decoded once (PIL), its shorter side resized to ``image_size`` and center-cropped to a square,
and kept as uint8; training batches then get the datamodule's batch augmentation (random crop with
padding, horizontal flip) and all batches its normalization, on the batch's device.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from datamodules.base import CorruptDataError, DataNotFoundError, ImageDataModule, InMemoryDataset

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataModule"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderDataModule(ImageDataModule):
    """Images in class sub-folders of ``train``, ``val`` and optionally ``test``.

    Args:
        data_dir: folder holding ``train/`` (and ``val/``, ``test/``), each with one sub-folder per class.
        image_size: side of the square images the model reads (shorter side resized, then center crop).
        grayscale: read the images as one grey channel instead of three RGB channels.
        mean: per-channel normalization mean; default ImageNet's (for pretrained weights), or with
            ``grayscale`` one value, the average of ImageNet's three (0.449).
        std: per-channel normalization standard deviation; default ImageNet's, or with ``grayscale`` 0.226.
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        batch_size: samples per batch for every split.
        val_fraction: share of ``train`` held out for validation when there is no ``val`` folder.
        test_fraction: unused: the test split is the ``test`` folder (or the validation images).
        seed: seed of the train/val split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    def __init__(
        self,
        *,
        data_dir: str = "data/images",
        image_size: int = 224,
        grayscale: bool = False,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        random_crop_padding: int = 0,
        horizontal_flip: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(random_crop_padding=random_crop_padding, horizontal_flip=horizontal_flip, **kwargs)
        self.data_dir = Path(data_dir)
        self.image_size = image_size
        self.grayscale = grayscale
        channels = 1 if grayscale else 3
        if mean is None:
            mean = [round(sum(IMAGENET_MEAN) / 3, 3)] if grayscale else list(IMAGENET_MEAN)
        if std is None:
            std = [round(sum(IMAGENET_STD) / 3, 3)] if grayscale else list(IMAGENET_STD)
        if len(mean) not in (1, channels) or len(std) != len(mean):
            raise ValueError(f"mean and std need 1 or {channels} values each, got {mean} and {std}")
        self.mean = tuple(mean) * (channels // len(mean))
        self.std = tuple(std) * (channels // len(std))
        self.resize_size = image_size  # for the model's preprocessing: shorter side to image_size, then crop
        self.input_shape = (channels, image_size, image_size)
        self.class_names = self._find_classes(self.data_dir / "train")
        self.num_classes = len(self.class_names)

    @staticmethod
    def _find_classes(folder: Path) -> list[str]:
        if not folder.is_dir():
            raise DataNotFoundError(
                f"{folder} not found: an image folder dataset needs train/<class>/*.png|*.jpg "
                f"(and val/, optionally test/) under data_dir (--data.data_dir)"
            )
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(names) < 2:
            raise DataNotFoundError(f"{folder} needs at least two class sub-folders, found {names}")
        return names

    def read_image(self, path: Path) -> Tensor:
        """One file -> uint8 (C, image_size, image_size); ``CorruptDataError`` naming the file when it is
        empty, truncated or not an image."""
        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.grayscale else "RGB")  # decodes the whole file
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            size = path.stat().st_size if path.is_file() else 0
            what = "is empty" if size == 0 else f"cannot be read as an image ({type(e).__name__}: {e})"
            raise CorruptDataError(f"{path} {what}. Replace or delete the file.") from None
        image = TF.center_crop(TF.resize(image, [self.image_size], antialias=True), [self.image_size])
        return TF.pil_to_tensor(image)

    def read_split(self, split: str) -> tuple[Tensor, Tensor] | None:
        """``<data_dir>/<split>`` as (uint8 (N, C, S, S), labels (N,)), or None when the folder is absent."""
        folder = self.data_dir / split
        if not folder.is_dir():
            return None
        images, labels = [], []
        for label, name in enumerate(self.class_names):
            files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if (folder / name).is_dir() else []
            images += [self.read_image(p) for p in files]
            labels += [label] * len(files)
        if not images:
            raise DataNotFoundError(f"no .jpg, .jpeg or .png images in the class folders of {folder}")
        return torch.stack(images), torch.tensor(labels, dtype=torch.long)

    def load(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        return self.read_split("train"), self.read_split("test")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        (x, y), test = self.load()
        val = self.read_split("val")
        if val is None:  # hold out val_fraction of train
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
            n_val = math.floor(len(x) * self.val_fraction)
            val = (x[order[:n_val]], y[order[:n_val]])
            x, y = x[order[n_val:]], y[order[n_val:]]
        self.train_set = InMemoryDataset(x, y)
        self.val_set = InMemoryDataset(*val)
        self.test_set = InMemoryDataset(*(test if test is not None else val))
