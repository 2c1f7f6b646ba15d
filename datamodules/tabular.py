"""Data that needs no download: scikit-learn's handwritten digits, 2-D blobs, and linear-regression data."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits, make_blobs
from torch import Tensor

from datamodules.base import ImageDataModule, ZooDataModule

__all__ = ["BlobsDataModule", "DigitsDataModule", "LinearRegressionDataModule"]


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 real 8x8 handwritten digits (UCI optdigits test set), 10 classes.

    Bundled with scikit-learn, so it works offline. Pixels (0-16) are stored as uint8 (0-255); with
    ``image_size`` above 8 every image is resized once, bilinearly, so LeNet-5 (32x32) can read them.
    There is no official test split: ``test_fraction`` of the images are held out with ``seed``.

    Args:
        image_size: side of the square images served (8 keeps the originals).
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of all images held out for testing.
        seed: seed of the train/val/test split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    num_classes = 10
    class_names = [str(i) for i in range(10)]
    # Statistics of the 8x8 images scaled to [0, 1].
    mean = (0.3053,)
    std = (0.3759,)

    def __init__(self, *, image_size: int = 8, batch_size: int = 64, **kwargs) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8 (the digits are 8x8), got {image_size}")
        self.image_size = image_size
        self.input_shape = (1, image_size, image_size)

    def load(self) -> tuple[tuple[Tensor, Tensor], None]:
        digits = load_digits()
        images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
        if self.image_size != 8:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)  # (N, 1, S, S)
        images = images.mul(255).round().clamp(0, 255).to(torch.uint8)
        return (images, torch.from_numpy(digits.target).long()), None


class BlobsDataModule(ZooDataModule):
    """Four Gaussian blobs in 2-D (scikit-learn ``make_blobs``) mapped to binary labels.

    The centers are (1, 1), (1, -1), (-1, 1), (-1, -1); ``label_map[i]`` is the label of blob ``i``.
    The default maps the first blob to 0 and the other three to 1; ``[0, 1, 1, 0]`` gives XOR.

    Args:
        n_samples: points drawn in total, split into train/val/test.
        cluster_std: standard deviation of each blob.
        label_map: label (0 or 1) of each of the four blobs.
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of all points held out for testing.
        seed: seed of the points and of the split.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    centers = [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]
    num_classes = 2
    input_shape = (2,)

    def __init__(
        self,
        *,
        n_samples: int = 2000,
        cluster_std: float = 0.3,
        label_map: list[int] = [0, 1, 1, 1],  # noqa: B006 (read only)
        batch_size: int = 64,
        **kwargs,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if len(label_map) != 4 or set(label_map) - {0, 1}:
            raise ValueError(f"label_map needs one label, 0 or 1, per blob (4), got {label_map}")
        self.n_samples = n_samples
        self.cluster_std = cluster_std
        self.label_map = list(label_map)
        self.class_names = ["0", "1"]

    def load(self) -> tuple[tuple[Tensor, Tensor], None]:
        x, blob = make_blobs(
            n_samples=self.n_samples, centers=self.centers, cluster_std=self.cluster_std, random_state=self.seed
        )
        y = torch.tensor(self.label_map)[torch.from_numpy(blob)]  # (N,) blob id -> label
        return (torch.from_numpy(x).float(), y.long()), None


class LinearRegressionDataModule(ZooDataModule):
    """Synthetic regression data ``y = x @ coefficients + bias + noise`` with ``x ~ N(0, 1)``.

    The default is the notes' y = 3*x1 + x2 - 2*x3.

    Args:
        coefficients: true weight of each feature; their number sets the input size.
        bias: true intercept.
        noise: standard deviation of the Gaussian noise added to y.
        n_samples: points drawn in total, split into train/val/test.
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of all points held out for testing.
        seed: seed of the points and of the split.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    def __init__(
        self,
        *,
        coefficients: list[float] = [3.0, 1.0, -2.0],  # noqa: B006 (read only)
        bias: float = 0.0,
        noise: float = 0.1,
        n_samples: int = 1000,
        batch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if not coefficients:
            raise ValueError("coefficients needs at least one value")
        self.coefficients = [float(c) for c in coefficients]
        self.bias = bias
        self.noise = noise
        self.n_samples = n_samples
        self.input_shape = (len(self.coefficients),)

    def load(self) -> tuple[tuple[Tensor, Tensor], None]:
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.n_samples, len(self.coefficients), generator=generator)  # (N, F)
        w = torch.tensor(self.coefficients)  # (F,)
        y = x @ w + self.bias + self.noise * torch.randn(self.n_samples, generator=generator)  # (N,)
        return (x, y.unsqueeze(1)), None  # y: (N, 1)
