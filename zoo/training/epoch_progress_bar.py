"""Callbacks shared by the zoo's recipes."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.trainer.states import TrainerFn

__all__ = ["EpochLineProgressBar"]


class EpochLineProgressBar(ProgressBar):
    """One line per training epoch and per validate/test run, instead of a live bar.

    Meant for logs, pipes and CI, where a redrawn bar turns into pages of carriage returns. The CLI
    picks it when standard output is not a terminal.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, trainer: L.Trainer, prefix: str) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = self.get_metrics(trainer, trainer.lightning_module)
        shown = "  ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(metrics.items())
            if k != "v_num" and not k.endswith("_step")
        )
        print(f"{prefix} ({time.perf_counter() - self._start:.1f} s)  {shown}", flush=True)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()  # a fit resumed mid-epoch gets no on_train_epoch_start for that epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        self._line(trainer, f"Epoch {trainer.current_epoch + 1}{total}")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # not the validation inside fit
            self._start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._line(trainer, "Validation")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
