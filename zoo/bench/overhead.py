"""Comparison 1, Lightning overhead: the zoo's ``train.py fit`` epoch against a hand-written PyTorch loop.

Both sides train the same model class with the same configuration (the recipe's), read the same batches
(the recipe's datamodule: its training loader, then ``preprocess(x, train=True)`` on each batch), use the
same batch size, optimizer, LR schedule and number of steps, in the same process, one after the other.
The zoo side is ``zoo.cli.main`` run in-process with the recipe, so everything a recipe brings is timed:
the Trainer loop, metrics and logging (CSV), the progress line, the fault-tolerance callbacks. Validation
is switched off on both sides (``limit_val_batches=0``): this compares training epochs. An epoch is timed
from ``on_train_epoch_start`` to ``on_train_epoch_end``.

A third side shows the floor that Lightning itself sets: the same model, batches, optimizer and schedule in
a bare ``LightningModule`` (a ``training_step`` and ``configure_optimizers``, nothing else) under a bare
``Trainer`` (no logger, checkpoints, progress bar or callbacks). zoo / bare is what the zoo adds on top of
Lightning (metrics, logging, the fault-tolerance callbacks); bare / hand is Lightning's own loop.

The sides alternate, one epoch each (zoo, bare, hand, zoo, ...), so a drift of the machine's speed
(another process, thermal limits) reaches them alike; each zoo and bare epoch is its own one-epoch
``fit``. The first round is a warm-up and not counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from zoo.bench.profiling import maybe_profile
from zoo.bench.report import Table, median, plural, ratio
from zoo.bench.settings import REPO, BenchSettings
from zoo.training.cli import main

__all__ = ["RECIPES", "EpochTimer", "bare_lightning_epoch", "hand_written_epochs", "run_overhead", "zoo_fit_epochs"]

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


class _BareLightning(L.LightningModule):
    """``model`` trained on ``datamodule``'s batches with nothing but a training step and its optimizer."""

    def __init__(self, model, datamodule, total_steps: int) -> None:
        super().__init__()
        self.model, self._preprocess, self._total_steps = model, datamodule.preprocess, total_steps

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        x = self._preprocess(x, train=True)  # (B, C, H, W) normalized, augmented
        return self.model.compute_loss(self.model(x), y)

    def configure_optimizers(self):
        optimizer = self.model.build_optimizer()
        scheduler = _scheduler(self.model, optimizer, self._total_steps)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def bare_lightning_epoch(model, datamodule, settings: BenchSettings, workdir: Path) -> float:
    """One epoch of ``model`` in a bare ``LightningModule`` and ``Trainer`` (the floor Lightning sets); its seconds."""
    loader = datamodule.train_dataloader()
    steps = len(loader) if not settings.batches else min(settings.batches, len(loader))
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator="cuda" if settings.device == "cuda" else "cpu", devices=1, max_epochs=1, limit_train_batches=steps,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer], default_root_dir=workdir,
    )  # fmt: skip
    trainer.fit(_BareLightning(model, datamodule, steps), train_dataloaders=loader)
    return timer.seconds[0]


def run_overhead(settings: BenchSettings, models: list[str] | None = None) -> Table:
    """Time LeNet-5 and ResNet-20 epochs both ways; the ratio is zoo / hand-written (medians after warm-up)."""
    table = Table(
        name="overhead",
        title="1. Lightning overhead: train.py fit epoch vs a hand-written PyTorch loop",
        columns=["model", "steps/epoch", "batch", "zoo fit s/epoch", "bare Lightning s/epoch", "hand loop s/epoch",
                 "ratio zoo/hand", "ratio bare/hand"],
        goal="ratio zoo/hand <= 1.05x per epoch",
        notes=[
            f"Median of {plural(settings.repeats, 'epoch')} after one warm-up epoch each, the three sides alternating epoch by "
            "epoch; validation off; same recipe model, optimizer, LR schedule, datamodule loader and batch preprocessing. "
            "Bare Lightning: the same steps in a LightningModule with only training_step and configure_optimizers, under a "
            "Trainer without logger, checkpoints, progress bar or callbacks: the floor Lightning's loop sets.",
        ],
    )
    rounds = 1 + settings.repeats
    for label in models or list(RECIPES):
        recipe = RECIPES[label]
        zoo_seconds: list[float] = []
        bare_seconds: list[float] = []
        hand_seconds: list[float] = []
        hand = None
        for round_ in range(rounds):  # zoo epoch, bare epoch, hand epoch, zoo epoch, ...
            torch.manual_seed(round_)
            profiled = settings.profile and round_ == rounds - 1
            with maybe_profile(profiled, f"overhead: zoo fit ({label})"):
                cli, seconds = zoo_fit_epochs(recipe, settings, settings.scratch("overhead", label, f"round{round_}"), epochs=1)
            zoo_seconds += seconds
            hparams = {k: v for k, v in cli.model.hparams.items() if not k.startswith("_")}  # _class_path: the CLI's
            torch.manual_seed(round_)
            with maybe_profile(profiled, f"overhead: bare Lightning ({label})"):
                bare = type(cli.model)(**hparams)  # a fresh model, the same configuration
                bare_seconds.append(bare_lightning_epoch(bare, cli.datamodule, settings, settings.scratch("overhead", label, f"bare{round_}")))
            if hand is None:
                torch.manual_seed(0)
                hand = hand_written_epochs(type(cli.model)(**hparams), cli.datamodule, settings, epochs=rounds)
            with maybe_profile(profiled, f"overhead: hand-written loop ({label})"):
                hand_seconds.append(next(hand))
        zoo_s, bare_s, hand_s = median(zoo_seconds[1:]), median(bare_seconds[1:]), median(hand_seconds[1:])
        table.ratios[label] = ratio(zoo_s, hand_s)
        table.rows.append({
            "model": label, "steps/epoch": cli.trainer.num_training_batches, "batch": settings.batch_size,
            "zoo fit s/epoch": zoo_s, "bare Lightning s/epoch": bare_s, "hand loop s/epoch": hand_s,
            "ratio zoo/hand": table.ratios[label], "ratio bare/hand": ratio(bare_s, hand_s),
        })  # fmt: skip
    return table
