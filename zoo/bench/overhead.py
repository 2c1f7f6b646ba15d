"""Comparison 1, Lightning overhead: the zoo's ``train.py fit`` epoch against a hand-written PyTorch loop.

Both sides train the same model class with the same configuration (the recipe's), read the same batches
(the recipe's datamodule: its training loader, then ``preprocess(x, train=True)`` on each batch), use the
same batch size, optimizer, LR schedule and number of steps, in the same process, one after the other.
The zoo side is ``zoo.cli.main`` run in-process with the recipe, so everything a recipe brings is timed:
the Trainer loop, metrics and logging (CSV), the progress line, the fault-tolerance callbacks. Validation
is switched off on both sides (``limit_val_batches=0``): this compares training epochs. An epoch is timed
from ``on_train_epoch_start`` to ``on_train_epoch_end``.

The two sides alternate, one epoch each (zoo, hand, zoo, hand, ...), so a drift of the machine's speed
(another process, thermal limits) reaches both alike; each zoo epoch is its own one-epoch ``fit``. The
first round is a warm-up and not counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from zoo.bench.profiling import maybe_profile
from zoo.bench.report import Table, median, plural, ratio
from zoo.bench.settings import REPO, BenchSettings
from zoo.training.cli import main

__all__ = ["RECIPES", "EpochTimer", "hand_written_epochs", "run_overhead", "zoo_fit_epochs"]

#: Model label -> recipe whose model, data and optimizer both sides use.
RECIPES = {"lenet5": "configs/lenet5_fashionmnist.yaml", "resnet20": "configs/resnet20_fashionmnist.yaml"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer(Callback):
    """Records the wall-clock seconds of every training epoch (``seconds``), waiting for the GPU at both ends."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        _sync(pl_module.device)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _sync(pl_module.device)
        self.seconds.append(time.perf_counter() - self._start)


def zoo_fit_epochs(recipe: str, settings: BenchSettings, workdir: Path, epochs: int | None = None):
    """Run ``train.py fit --config recipe`` in-process for ``epochs`` (default 1 + ``repeats``) epochs;
    returns (cli, epoch seconds)."""

    args = [
        "fit", "--config", str(REPO / recipe),
        f"--trainer.max_epochs={epochs or 1 + settings.repeats}",
        "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--test_after_fit=false",
        f"--trainer.default_root_dir={workdir}",
        "--trainer.callbacks+=zoo.bench.overhead.EpochTimer",
        f"--data.init_args.batch_size={settings.batch_size}",
        *settings.data_args(), *settings.accelerator_args(),
    ]  # fmt: skip
    if settings.batches:
        args.append(f"--trainer.limit_train_batches={settings.batches}")
    cli = main(args)
    timer = next(c for c in cli.trainer.callbacks if isinstance(c, EpochTimer))
    return cli, timer.seconds


def _scheduler(model, optimizer: torch.optim.Optimizer, total_steps: int):
    """The per-step LR schedule ``configure_optimizers`` builds for the same run (None: none, or per-epoch)."""
    kind = model.hparams.get("scheduler", "none")
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=model.hparams.lr, total_steps=max(2, total_steps))
    return None


def hand_written_epochs(model, datamodule, settings: BenchSettings, epochs: int | None = None):
    """Train ``model`` with a plain PyTorch loop over the datamodule's training loader, one epoch per
    ``next()``: a generator of epoch seconds (``epochs`` of them, default 1 + ``repeats``), so a caller can
    interleave the epochs with other work.
    """
    device = torch.device(settings.device)
    model.to(device).train()
    optimizer = model.build_optimizer()
    loader = datamodule.train_dataloader()
    steps = len(loader) if not settings.batches else min(settings.batches, len(loader))
    epochs = epochs or 1 + settings.repeats
    scheduler = _scheduler(model, optimizer, steps * epochs)
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        for step, (x, y) in enumerate(loader):
            if step >= steps:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x = datamodule.preprocess(x, train=True)  # (B, C, H, W) normalized, augmented
            loss = model.compute_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        _sync(device)
        yield time.perf_counter() - start


def run_overhead(settings: BenchSettings, models: list[str] | None = None) -> Table:
    """Time LeNet-5 and ResNet-20 epochs both ways; the ratio is zoo / hand-written (medians after warm-up)."""
    table = Table(
        name="overhead",
        title="1. Lightning overhead: train.py fit epoch vs a hand-written PyTorch loop",
        columns=["model", "steps/epoch", "batch", "zoo fit s/epoch", "hand loop s/epoch", "ratio zoo/hand"],
        goal="ratio <= 1.05x per epoch",
        notes=[
            f"Median of {plural(settings.repeats, 'epoch')} after one warm-up epoch each, the two sides alternating epoch by "
            "epoch; validation off on both sides; same recipe model, optimizer, LR schedule, datamodule loader and batch "
            "preprocessing.",
        ],
    )
    rounds = 1 + settings.repeats
    for label in models or list(RECIPES):
        recipe = RECIPES[label]
        zoo_seconds: list[float] = []
        hand_seconds: list[float] = []
        hand = None
        for round_ in range(rounds):  # zoo epoch, hand epoch, zoo epoch, ...
            torch.manual_seed(round_)
            with maybe_profile(settings.profile and round_ == rounds - 1, f"overhead: zoo fit ({label})"):
                cli, seconds = zoo_fit_epochs(recipe, settings, settings.scratch("overhead", label, f"round{round_}"), epochs=1)
            zoo_seconds += seconds
            if hand is None:
                torch.manual_seed(0)
                hparams = {k: v for k, v in cli.model.hparams.items() if not k.startswith("_")}  # _class_path: the CLI's
                model = type(cli.model)(**hparams)  # a fresh model, the same configuration
                hand = hand_written_epochs(model, cli.datamodule, settings, epochs=rounds)
            with maybe_profile(settings.profile and round_ == rounds - 1, f"overhead: hand-written loop ({label})"):
                hand_seconds.append(next(hand))
        zoo_s, hand_s = median(zoo_seconds[1:]), median(hand_seconds[1:])
        table.ratios[label] = ratio(zoo_s, hand_s)
        table.rows.append({
            "model": label, "steps/epoch": cli.trainer.num_training_batches, "batch": settings.batch_size,
            "zoo fit s/epoch": zoo_s, "hand loop s/epoch": hand_s, "ratio zoo/hand": table.ratios[label],
        })  # fmt: skip
    return table
