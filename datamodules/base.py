"""What every zoo datamodule shares: in-memory tensors, a seeded split, fast loaders and batch transforms.

Datasets here are small enough to live in memory, so each one is read from disk once into tensors
(images as uint8). A DataLoader then draws whole batches with one indexing operation
(``InMemoryDataset.__getitems__``) instead of collating samples one by one, and the work that
depends on the batch (uint8 -> float, augmentation, normalization) runs in
``on_after_batch_transfer``: after the batch reached the model's device, so on the GPU when there is one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.sampler import ResumableDataLoader, ResumableSampler
from zoo.core.preprocessing import channel_stats

__all__ = [
    "CorruptDataError",
    "DataNotFoundError",
    "ImageDataModule",
    "InMemoryDataset",
    "ZooDataModule",
    "random_crop",
    "random_erasing",
    "random_horizontal_flip",
    "stratified_subset",
]


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable; the message says where to put them."""


class CorruptDataError(ValueError):
    """A data file that cannot be read as its format says (truncated, wrong magic number, malformed line,
    missing column, undecodable image); the message names the file, and the line where there is one."""


def stratified_subset(indices: Tensor, labels: Tensor, fraction: float, *, seed: int) -> Tensor:
    """A seeded share ``fraction`` of ``indices`` in every class of ``labels`` (at least one per class), in the
    order of ``indices``; for one seed a smaller fraction's subset lies inside a larger one's.

    Args:
        indices: (N,) the indices to draw from.
        labels: (N,) the class of each.
        fraction: the share kept, in (0, 1].
        seed: the seed of the draw.
    """
    g = torch.Generator().manual_seed(seed)
    keep = torch.zeros(len(indices), dtype=torch.bool)
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().squeeze(1)  # (N_c,)
        order = members[torch.randperm(len(members), generator=g)]
        keep[order[: max(1, round(fraction * len(members)))]] = True
    return indices[keep]


# --------------------------------------------------------------------------------------------------
# Dataset and loaders
# --------------------------------------------------------------------------------------------------
class InMemoryDataset(Dataset):
    """Tensors with a shared first dimension, indexed a sample or a whole batch at a time.

    ``DataLoader`` calls ``__getitems__`` with a batch's indices, so a batch costs one
    ``index_select`` per tensor rather than ``batch_size`` Python calls and a collate.
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError(f"tensors need the same first dimension, got {[tuple(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, ...]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return tuple(t.index_select(0, idx) for t in self.tensors)


def _keep_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    # __getitems__ already returns the batched tensors: nothing left to collate.
    return batch


# --------------------------------------------------------------------------------------------------
# Batch transforms (whole batches, any device)
# --------------------------------------------------------------------------------------------------
def random_crop(images: Tensor, padding: int) -> Tensor:
    """Zero-pad each side by ``padding`` and crop back to the original size at a random offset per image.

    Args:
        images: (B, C, H, W) batch.
        padding: pixels added on each side before cropping.
    """
    if padding <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    top = torch.randint(0, 2 * padding + 1, (b, 1), device=images.device)
    left = torch.randint(0, 2 * padding + 1, (b, 1), device=images.device)
    rows = top + torch.arange(h, device=images.device)  # (B, H)
    cols = left + torch.arange(w, device=images.device)  # (B, W)
    batch_idx = torch.arange(b, device=images.device)[:, None, None]
    crops = padded.permute(0, 2, 3, 1)[batch_idx, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return crops.permute(0, 3, 1, 2).contiguous()


def random_horizontal_flip(images: Tensor, p: float = 0.5) -> Tensor:
    """Mirror each image left-right with probability ``p``. images: (B, C, H, W)."""
    flip = torch.rand(images.shape[0], device=images.device) < p  # (B,)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_erasing(images: Tensor, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.4), ratio: tuple[float, float] = (0.3, 3.3)) -> Tensor:
    """Random erasing (Zhong et al., 2017): with probability ``p`` per image, a rectangle of ``scale`` x the
    image's area and log-uniform aspect ratio in ``ratio`` gets uniform random pixels in [0, 1].

    The paper redraws a rectangle that does not fit; here its sides are clipped to the image instead.

    Args:
        images: (B, C, H, W) batch of pixels in [0, 1].
        p: probability that an image is erased.
        scale: range of the erased area, as a fraction of the image.
        ratio: range of the rectangle's aspect ratio (height / width).
    """
    if p <= 0:
        return images
    b, _, h, w = images.shape
    device = images.device
    area = torch.empty(b, device=device).uniform_(*scale) * h * w  # (B,)
    aspect = torch.empty(b, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp()  # (B,)
    eh = (area * aspect).sqrt().round().clamp(1, h).long()  # (B,) rectangle height
    ew = (area / aspect).sqrt().round().clamp(1, w).long()  # (B,) rectangle width
    top = (torch.rand(b, device=device) * (h - eh + 1)).long()
    left = (torch.rand(b, device=device) * (w - ew + 1)).long()
    rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # (B, W)
    erase = in_rows[:, :, None] & in_cols[:, None, :] & (torch.rand(b, device=device) < p)[:, None, None]  # (B, H, W)
    return torch.where(erase[:, None], torch.rand_like(images), images)


# --------------------------------------------------------------------------------------------------
# Datamodules
# --------------------------------------------------------------------------------------------------
class ZooDataModule(L.LightningDataModule):
    """Base of every zoo datamodule: loads once, splits with a seed, serves whole batches.

    Subclasses implement ``load()``; they set ``num_classes``, ``input_shape`` and ``class_names`` in
    ``__init__`` (before any data is read) so the CLI can link them into the model.

    Args:
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of the data held out for testing, for datasets without an official test split.
        seed: seed of the train/val/test split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    #: Number of classes, or None for regression data.
    num_classes: int | None = None
    #: Shape of one input sample, e.g. (1, 28, 28) or (3,).
    input_shape: tuple[int, ...] = ()
    #: One name per class, in label order, or None.
    class_names: list[str] | None = None

    def __init__(
        self,
        *,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.train_set: InMemoryDataset | None = None
        self.val_set: InMemoryDataset | None = None
        self.test_set: InMemoryDataset | None = None
        self._train_sampler: ResumableSampler | None = None
        self._train_sampler_state: dict[str, Any] | None = None  # restored from a checkpoint, applied to the next sampler

    # -- to implement -------------------------------------------------------------------------------
    def load(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        """Read the data: ``((x_train, y_train), (x_test, y_test))``, or ``(..., None)`` without an
        official test split, in which case ``test_fraction`` of the data is held out."""
        raise NotImplementedError

    def preprocess(self, x: Tensor, train: bool = False) -> Tensor:
        """Turn a stored batch into model input (on the batch's device). ``train`` enables augmentation."""
        return x

    # -- shared machinery ---------------------------------------------------------------------------
    @property
    def normalization(self) -> dict[str, list[float]] | None:
        """The per-channel ``mean`` and ``std`` applied by ``preprocess``, or None."""
        return None

    def split_indices(self, n: int, has_test: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """(train, val, test or None) indices into ``n`` loaded samples: seeded with ``seed``; without an
        official test split (``has_test`` false) ``test_fraction`` is held out first."""
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        test_idx = None
        if not has_test:
            n_test = math.floor(n * self.test_fraction)
            test_idx, order = order[:n_test], order[n_test:]
        n_val = math.floor(len(order) * self.val_fraction)
        return order[n_val:], order[:n_val], test_idx

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:  # loaded once, for every stage
            return
        (x, y), test = self.load()
        train_idx, val_idx, test_idx = self.split_indices(len(x), has_test=test is not None)
        if test is None:
            test = (x[test_idx], y[test_idx])
        self.train_set = InMemoryDataset(x[train_idx], y[train_idx])
        self.val_set = InMemoryDataset(x[val_idx], y[val_idx])
        self.test_set = InMemoryDataset(*test)

    def _loader(self, dataset: InMemoryDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for a dataloader")
        options = dict(batch_size=self.batch_size, collate_fn=_keep_batch, num_workers=self.num_workers,
                       persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())  # fmt: skip
        if shuffle and self.trainer is not None and self.trainer.world_size > 1:
            # Several processes: Lightning shards a shuffling loader with its DistributedSampler (resumable
            # at epoch ends only).
            return DataLoader(dataset, shuffle=True, **options)
        sampler = None
        if shuffle:  # the training loader: resumable mid-epoch, and blind to the global RNG
            sampler = ResumableSampler(len(dataset), shuffle=True)
            if self._train_sampler_state is not None:
                sampler.load_state_dict(self._train_sampler_state)
                self._train_sampler_state = None
            self._train_sampler = sampler
        # A private generator: creating an iterator then draws no number from the global RNG, so what the
        # model draws (dropout, augmentation) does not depend on how often a loader was iterated.
        options["generator"] = torch.Generator().manual_seed(sampler.seed if sampler is not None else 0)
        if sampler is not None:
            return ResumableDataLoader(dataset, sampler=sampler, consumed=self._consumed_train_samples, **options)
        return DataLoader(dataset, shuffle=False, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    # -- resume -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The training sampler's seed, epoch and position, saved by Lightning in every checkpoint.

        The training loader saves the same state (Lightning's ``combined_loader``); the datamodule's copy is
        restored before any loader exists, so it also holds when ``configure_optimizers`` builds the loaders
        early (``estimated_stepping_batches``, for the cosine and one-cycle schedules).
        """
        if self._train_sampler is None:
            return {}
        return {"train_sampler": self._train_sampler.state_dict(position=self._consumed_train_samples())}

    def _consumed_train_samples(self) -> int:
        """Samples of the current epoch the training loop has used: its loader's iterator runs a batch ahead
        (Lightning prefetches), so the loop's own count is the one to trust. A finished epoch
        (``limit_train_batches`` included) counts as the whole data."""
        sampler, trainer = self._train_sampler, self.trainer
        if sampler is None or trainer is None:
            return 0
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if batches >= trainer.num_training_batches:
            return len(sampler)
        return min(batches * self.batch_size, len(sampler))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved: the next training loader continues the interrupted epoch."""
        self._train_sampler_state = state_dict.get("train_sampler")
        if self._train_sampler is not None and self._train_sampler_state is not None:
            self._train_sampler.load_state_dict(self._train_sampler_state)
            self._train_sampler_state = None

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is not None and len(self.val_set) == 0:
            return []  # val_fraction=0: no validation loop
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def on_after_batch_transfer(self, batch: Tensor | tuple[Tensor, ...], dataloader_idx: int) -> Tensor | tuple[Tensor, ...]:
        if isinstance(batch, Tensor):
            # Lightning passes the model's example_input_array through here for its summary; it is
            # already model input (and an MLP's is flat), so it is left as it is.
            return batch
        train = self.trainer is not None and self.trainer.training
        x, *rest = batch
        return (self.preprocess(x, train=train), *rest)


class ImageDataModule(ZooDataModule):
    """Images stored as uint8 (N, C, H, W); turned into normalized floats, and augmented, per batch.

    Args:
        random_crop_padding: training augmentation: pad by this many pixels and crop back at random (0: off).
        horizontal_flip: training augmentation: mirror half of the images left-right.
        random_erasing: training augmentation: probability that an image gets a random rectangle of noise (0: off).
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of the data held out for testing, for datasets without an official test split.
        seed: seed of the train/val/test split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    #: Per-channel statistics of the training images in [0, 1], set by each dataset.
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __init__(self, *, random_crop_padding: int = 0, horizontal_flip: bool = False, random_erasing: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if random_crop_padding < 0:
            raise ValueError(f"random_crop_padding must be >= 0, got {random_crop_padding}")
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
        self.random_crop_padding = random_crop_padding
        self.horizontal_flip = horizontal_flip
        self.random_erasing = random_erasing

    @property
    def normalization(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    def preprocess(self, x: Tensor, train: bool = False) -> Tensor:
        """uint8 (B, C, H, W) -> normalized float32 (B, C, H, W), augmented when ``train``."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if train:
            x = random_crop(x, self.random_crop_padding)
            if self.horizontal_flip:
                x = random_horizontal_flip(x)
            x = random_erasing(x, self.random_erasing)
        mean, std = self._channel_stats(x)
        return (x - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        """Inverse of the normalization in ``preprocess``: model input -> pixels in [0, 1]."""
        mean, std = self._channel_stats(x)
        return x * std + mean

    def _channel_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``mean`` and ``std`` as (1, C, 1, 1) tensors on ``x``'s device and dtype (``zoo.core.preprocessing.channel_stats``)."""
        return channel_stats(self.mean, self.std, x)
