"""Comparison 2, data pipeline: the zoo's Fashion-MNIST datamodule against torchvision's per-sample dataset.

* zoo: ``FashionMNISTDataModule``: the images held in memory as uint8, a whole batch drawn with one
  indexing operation, then ``preprocess`` (to float, normalized) on the batch.
* torchvision: ``torchvision.datasets.FashionMNIST`` with ``ToTensor()`` + ``Normalize`` applied to each
  sample (PIL image -> tensor), collated by a ``DataLoader`` with ``shuffle=True``: the tutorial pipeline.
  It reads the same files, gunzipped into torchvision's ``raw/`` layout in a temporary folder (no download).

Both sides serve all 60,000 training images (the zoo's validation split is off). Each side is timed per
epoch twice: the loader alone (every batch made model-ready) and the loader feeding
a LeNet-5 training step (forward, backward, Adam step). No augmentation on either side.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

import zoo
from datamodules import FashionMNISTDataModule
from zoo.bench.profiling import maybe_profile
from zoo.bench.report import Table, median, plural, ratio
from zoo.bench.settings import BenchSettings

__all__ = ["run_data", "torchvision_layout"]


def torchvision_layout(files: dict[str, Path], root: Path) -> Path:
    """Write the four IDX files (gzipped or not) uncompressed into ``root/FashionMNIST/raw``, as
    torchvision's ``FashionMNIST(root, download=False)`` expects them; returns ``root``."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def _zoo_batches(settings: BenchSettings) -> tuple[Callable[[], Iterable], object]:

    # val_fraction=0: all 60,000 training images, as many as torchvision's dataset holds.
    dm = FashionMNISTDataModule(data_dir=settings.data_dir, batch_size=settings.batch_size, val_fraction=0.0)
    dm.setup("fit")
    device = torch.device(settings.device)

    def epoch():
        for x, y in dm.train_dataloader():
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            yield dm.preprocess(x, train=False), y  # (B, 1, 28, 28) float32, normalized

    return epoch, dm


def _torchvision_batches(settings: BenchSettings, dm, root: Path, workers: int) -> Callable[[], Iterable]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torchvision_layout(dm.locate(), root)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(dm.mean, dm.std)])
    dataset = datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=settings.device == "cuda")  # fmt: skip
    device = torch.device(settings.device)

    def epoch():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return epoch


def _time_epochs(batches: Callable[[], Iterable], settings: BenchSettings, step: Callable | None) -> tuple[list[float], int]:
    """Seconds per epoch (1 warm-up + ``repeats``) of drawing ``settings.batches`` batches (all: None), each
    through ``step``; and the images one epoch drew."""
    device = torch.device(settings.device)
    seconds, images = [], 0
    for _ in range(1 + settings.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, images = time.perf_counter(), 0
        for i, (x, y) in enumerate(batches()):
            if step is not None:
                step(x, y)
            images += len(y)
            if settings.batches and i + 1 >= settings.batches:
                break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds, images


def _lenet_step(settings: BenchSettings) -> Callable:
    torch.manual_seed(0)
    model = zoo.create_model("lenet5").to(settings.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run_data(settings: BenchSettings, torchvision_workers: list[int] | None = None) -> Table:
    """Per-epoch seconds of both pipelines, loader only and loader + LeNet-5 step; ratios torchvision / zoo."""
    workers = torchvision_workers if torchvision_workers is not None else ([0] if settings.quick else [0, 2])
    table = Table(
        name="data",
        title="2. Data pipeline: zoo FashionMNISTDataModule vs torchvision FashionMNIST + ToTensor + Normalize",
        columns=["pipeline", "images/epoch", "loader s/epoch", "loader + LeNet-5 step s/epoch", "loader speed-up", "epoch speed-up"],
        goal="speed-up >= 2x per epoch on the CPU (speed-up = torchvision seconds / zoo seconds)",
        notes=[
            f"Batch {settings.batch_size}, {'the whole training split' if not settings.batches else f'{settings.batches} batches'} "
            f"per epoch; median of {plural(settings.repeats, 'epoch')} after a warm-up epoch; no augmentation.",
        ],
    )
    zoo_epoch, dm = _zoo_batches(settings)
    with maybe_profile(settings.profile, "data: zoo datamodule, loader only"):
        zoo_load, images = _time_epochs(zoo_epoch, settings, None)
    zoo_step, _ = _time_epochs(zoo_epoch, settings, _lenet_step(settings))
    zoo_load, zoo_step = median(zoo_load[1:]), median(zoo_step[1:])
    table.rows.append({"pipeline": "zoo (in-memory uint8, batch preprocess)", "images/epoch": images, "loader s/epoch": zoo_load,
                       "loader + LeNet-5 step s/epoch": zoo_step, "loader speed-up": 1.0, "epoch speed-up": 1.0})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-torchvision-") as tmp:
        for n in workers:
            tv_epoch = _torchvision_batches(settings, dm, Path(tmp), n)
            with maybe_profile(settings.profile, f"data: torchvision, {n} workers, loader only"):
                tv_load, images = _time_epochs(tv_epoch, settings, None)
            tv_step, _ = _time_epochs(tv_epoch, settings, _lenet_step(settings))
            tv_load, tv_step = median(tv_load[1:]), median(tv_step[1:])
            key = f"torchvision_workers{n}"
            table.ratios[f"{key}_loader"] = ratio(tv_load, zoo_load)
            table.ratios[f"{key}_epoch"] = ratio(tv_step, zoo_step)
            table.rows.append({"pipeline": f"torchvision per-sample, num_workers={n}", "images/epoch": images, "loader s/epoch": tv_load,
                               "loader + LeNet-5 step s/epoch": tv_step, "loader speed-up": table.ratios[f"{key}_loader"],
                               "epoch speed-up": table.ratios[f"{key}_epoch"]})  # fmt: skip
    return table
