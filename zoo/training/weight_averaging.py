"""EMA and SWA of the weights with Lightning's ``WeightAveraging`` callback: ``train.py fit ... --weight_averaging ema``.

    python train.py fit --config configs/resnet20_fashionmnist.yaml --weight_averaging ema   # --ema_decay 0.999
    python train.py fit --config configs/resnet20_fashionmnist.yaml --weight_averaging swa   # --swa_epoch_start 0.75

``EMA`` keeps ``avg = decay * avg + (1 - decay) * w`` after every optimizer step (``torch.optim.swa_utils.get_ema_avg_fn``);
``SWA`` keeps the equal average of the weights at the end of each epoch from ``swa_epoch_start`` on (Izmailov et al.,
2018). Both come from Lightning's callback, which

* validates (so picks the best checkpoint) with the averaged weights, and copies them into the model when fit ends;
* writes the averaged weights as every checkpoint's ``state_dict``, the live ones as ``current_model_state`` and
  the average's counter as ``averaging_state``: ``zoo.load_checkpoint``, ``test --ckpt_path``, fine-tuning and
  ``zoo-export`` read the averaged weights, and ``fit --ckpt_path`` with the same flag resumes both;
* averages the buffers too (``use_buffers=True``): BatchNorm statistics are averaged like the weights.

Training progress is not averaged: the buffers a model lists in ``ZooModule.training_state`` (a DQN's replay buffer
and counters, a GAN's update counters and fixed noise) keep their live values in the model, through validation and
at the end of fit, and in every checkpoint's ``state_dict``.

These callbacks add ``checkpoint["weight_averaging"] = {"method": "ema", "decay": 0.999}`` (or ``"swa"``), which
``zoo-export`` copies into the manifest row and the entry's Hugging Face folder. SWA's averaged weights never ran
with the averaged BatchNorm statistics, so when fit ends it recomputes them with one pass over the training data in
train mode, through the datamodule's batch hooks (``torch.optim.swa_utils.update_bn``'s method), for the models whose
``forward`` reads the training batch's input; other models (GANs) keep the averaged statistics, and say so.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, WeightAveraging
from torch import nn

from zoo.core.base import ClassifierModule, RegressorModule
from zoo.hub.pretrained import _is_training_state
from zoo.models.generative.autoencoder import AutoencoderModule
from zoo.models.selfsupervised.simclr import SimCLR

__all__ = ["EMA", "RECORD_KEY", "SWA", "averaging_callback", "averaging_record", "recompute_batchnorm"]

log = logging.getLogger(__name__)

#: The checkpoint key that says which averaging its ``state_dict`` holds.
RECORD_KEY = "weight_averaging"


def averaging_record(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """What a checkpoint's ``state_dict`` holds: ``{"method": "ema", ...}``, ``{"method": "unknown"}`` when Lightning's
    callback wrote it without the zoo's record (``--trainer.callbacks+=...EMAWeightAveraging``), None for plain weights."""
    record = checkpoint.get(RECORD_KEY)
    if isinstance(record, dict) and record.get("method") in ("ema", "swa"):
        return dict(record)
    return {"method": "unknown"} if "current_model_state" in checkpoint else None


class _KeepsTrainingState(WeightAveraging):
    """Lightning's callback with the model's ``training_state`` buffers left live: swapping the averaged weights in
    for validation, copying them in when fit ends, and writing them as the checkpoint's ``state_dict``."""

    def _live_progress(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        return {n: b.detach().clone() for n, b in pl_module.named_buffers() if _is_training_state(pl_module, n)}

    def _restore(self, pl_module: L.LightningModule, live: dict[str, torch.Tensor]) -> None:
        buffers = dict(pl_module.named_buffers())
        for name, value in live.items():
            buffers[name].data.copy_(value)

    def _swap_models(self, pl_module: L.LightningModule) -> None:
        live = self._live_progress(pl_module)
        super()._swap_models(pl_module)
        self._restore(pl_module, live)

    def _copy_average_to_current(self, pl_module: L.LightningModule) -> None:
        live = self._live_progress(pl_module)
        super()._copy_average_to_current(pl_module)
        self._restore(pl_module, live)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        current = checkpoint.get("current_model_state")
        if current is not None:
            for key in [k for k in checkpoint["state_dict"] if _is_training_state(pl_module, k)]:
                checkpoint["state_dict"][key] = current[key]


class EMA(_KeepsTrainingState, EMAWeightAveraging):
    """Exponential moving average of the weights and buffers, updated after every optimizer step.

    Args:
        decay: weight of the average at each update; ``1 - decay`` goes to the current weights.
        update_starting_at_step: first optimizer step (0-based) that updates the average; None: the first.
    """

    def __init__(self, decay: float = 0.999, update_starting_at_step: int | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay is in (0, 1), got {decay}")
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self.decay = decay

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" in checkpoint:
            checkpoint[RECORD_KEY] = {"method": "ema", "decay": self.decay}


class SWA(_KeepsTrainingState):
    """Stochastic weight averaging: the equal average of the weights at the end of each epoch from ``swa_epoch_start``.

    Args:
        swa_epoch_start: the first epoch (0-based) averaged: an int, or a fraction of ``max_epochs`` in (0, 1).
        update_bn: recompute the BatchNorm statistics of the averaged weights when fit ends (one pass over the
            training data).
    """

    def __init__(self, swa_epoch_start: int | float = 0.75, update_bn: bool = True) -> None:
        if isinstance(swa_epoch_start, float) and swa_epoch_start.is_integer():
            swa_epoch_start = int(swa_epoch_start)  # "3.0" from a command line is epoch 3
        if swa_epoch_start < 0 or (isinstance(swa_epoch_start, float) and not 0.0 < swa_epoch_start < 1.0):
            raise ValueError(f"swa_epoch_start is an epoch (an int >= 0) or a fraction of max_epochs in (0, 1), got {swa_epoch_start}")
        super().__init__(use_buffers=True)
        self.swa_epoch_start = swa_epoch_start
        self.update_bn = update_bn
        self._start_epoch = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        start = self.swa_epoch_start
        if isinstance(start, float) and 0.0 < start < 1.0:
            if trainer.max_epochs is None or trainer.max_epochs < 0:
                raise ValueError("swa_epoch_start as a fraction needs max_epochs; give the first averaged epoch instead")
            start = int(start * trainer.max_epochs)
        self._start_epoch = int(start)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return epoch_idx is not None and epoch_idx >= self._start_epoch

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None and int(self._average_model.n_averaged) == 0:
            log.warning("SWA: no epoch reached swa_epoch_start=%s; the model keeps its last weights", self.swa_epoch_start)
            return
        super().on_train_end(trainer, pl_module)  # the averaged weights into the model
        if self.update_bn and recompute_batchnorm(trainer, pl_module):
            # The average's copy too: a checkpoint written after fit reads it (on_save_checkpoint).
            for average, current in zip(self._average_model.module.buffers(), pl_module.buffers()):
                average.data.copy_(current.data)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" in checkpoint:
            checkpoint[RECORD_KEY] = {"method": "swa", "swa_epoch_start": self.swa_epoch_start}


def averaging_callback(mode: str, callbacks: list, ema_decay: float = 0.999, swa_epoch_start: float = 0.75) -> WeightAveraging | None:
    """The callback of ``--weight_averaging mode`` ("none", "ema", "swa"); a ValueError when ``callbacks`` (the
    trainer's from the config) already hold a WeightAveraging callback: one average per run."""
    if mode == "none":
        return None
    if any(isinstance(c, WeightAveraging) for c in callbacks):
        raise ValueError("the trainer's callbacks already hold a WeightAveraging callback: keep one of the two")
    if mode == "ema":
        return EMA(decay=ema_decay)
    if mode == "swa":
        return SWA(swa_epoch_start=swa_epoch_start)
    raise ValueError(f"weight averaging is 'none', 'ema' or 'swa', got {mode!r}")


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recompute_batchnorm(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
    """Recompute the BatchNorm statistics of ``pl_module`` over the trainer's training data (cumulative averages,
    as ``torch.optim.swa_utils.update_bn``), each batch through the transfer hooks that normalize it. Returns whether
    it did: False for models without BatchNorm, and for those whose ``forward`` does not read the batch's input."""
    layers = _batchnorms(pl_module)
    if not layers:
        return False
    # The models trained on (x, y) batches (whose forward reads x) and SimCLR; not GANs (forward reads noise).
    if not isinstance(pl_module, (ClassifierModule, RegressorModule, AutoencoderModule, SimCLR)):
        log.warning("%s: its forward does not read the training batches; SWA keeps the averaged BatchNorm statistics", type(pl_module).__name__)
        return False
    loader = trainer.train_dataloader
    momenta = {}
    for layer in layers:
        layer.reset_running_stats()
        momenta[layer], layer.momentum = layer.momentum, None  # None: a cumulative average over the pass
    was_training = pl_module.training
    pl_module.train()
    with torch.no_grad():
        for batch in loader:
            batch = pl_module._apply_batch_transfer_handler(batch)
            pl_module(batch[0] if isinstance(batch, (list, tuple)) else batch)  # (B, *input_shape)
    for layer, momentum in momenta.items():
        layer.momentum = momentum
    pl_module.train(was_training)
    return True
