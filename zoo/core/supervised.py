"""The bases of the models trained one loss per ``(x, y)`` batch, on ``ZooModule``'s steps
(``compute_loss(output, target)`` and torchmetrics per stage, ``zoo.core.module``).

``ClassifierModule``  cross-entropy (or BCE) loss, top-1/top-5 accuracy, timm's
                      ``forward_features`` / ``forward_head`` / ``num_features`` / ``reset_classifier``.
``RegressorModule``   MSE loss with MAE and RMSE.

Models with their own loop (GANs, DQN, the encoder-decoders) inherit ``ZooModule`` and write their steps
themselves. ``SupervisedModule``, the base that held the ``(x, y)`` steps before they moved into
``ZooModule``, stays a name of ``ZooModule``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import BinaryAccuracy

from zoo.core.metrics import TopKAccuracy
from zoo.core.module import ZooModule
from zoo.viz.classifier_figures import ClassifierTestFigures
from zoo.viz.figures import should_draw

__all__ = ["ClassifierModule", "IncompatibleDataError", "RegressorModule", "SupervisedModule"]

log = logging.getLogger(__name__)

#: The public name of the ``(x, y)``-batch base before its steps moved into ``ZooModule`` (kept for compatibility).
SupervisedModule = ZooModule


class IncompatibleDataError(ValueError):
    """A model handed data it cannot read: another number of classes, or another input shape."""


class ClassifierModule(ZooModule):
    """Base of every classifier: ``forward = forward_head(forward_features(x))``.

    Subclasses build ``self.head`` (an ``nn.Linear(num_features, num_outputs)``) and define
    ``forward_features`` and ``num_features``. A test run logs a confusion matrix with the class names and
    a grid of the most confident mistakes (``zoo.classifier_figures``) to the trainer's logger.

    Args:
        num_classes: number of classes; with ``binary`` it must be 2.
        binary: one logit and binary cross-entropy instead of ``num_classes`` logits and cross-entropy.
        label_smoothing: cross-entropy label smoothing (multi-class only).
        **kwargs: ``ZooModule``'s optimizer and scheduler arguments.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, *, num_classes: int = 10, binary: bool = False, label_smoothing: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if binary and num_classes != 2:
            raise ValueError(f"binary=True needs num_classes=2, got {num_classes}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.binary = binary
        self.label_smoothing = label_smoothing
        self._build_metrics()

    def setup(self, stage: str) -> None:
        """Before any step runs: check that the trainer's datamodule fits this model (``check_datamodule``)."""
        super().setup(stage)
        self.check_datamodule(getattr(self.trainer, "datamodule", None))

    def check_datamodule(self, datamodule: Any) -> None:
        """Raise ``IncompatibleDataError`` when ``datamodule`` has another number of classes than this model,
        or serves images of a shape it cannot read; say how to build the model for it.

        Without this, a 5-class model fitted on 10-class data fails inside the loss with an index error,
        and a wrong image size inside a convolution. A datamodule without ``num_classes`` / ``input_shape``
        (or none, with plain dataloaders) is not checked.
        """
        if datamodule is None:
            return
        name, data = type(self).__name__, type(datamodule).__name__
        classes = getattr(datamodule, "num_classes", None)
        if isinstance(classes, int) and classes != self.num_classes:
            raise IncompatibleDataError(
                f"{name} was built for {self.num_classes} classes but {data} has {classes}: build it with "
                f"num_classes={classes} (a pretrained= start then gets a fresh {classes}-class head)"
            )
        shape = getattr(datamodule, "input_shape", None)
        if isinstance(shape, tuple) and len(shape) == 3:  # images, float once preprocessed
            try:
                self.check_input(torch.zeros(1, *shape))
            except ValueError as e:
                raise IncompatibleDataError(f"{data} serves images of shape {shape}, which {name} cannot read: {e}") from None

    @property
    def num_outputs(self) -> int:
        """Width of the head: 1 logit in binary mode, else ``num_classes``."""
        return 1 if self.binary else self.num_classes

    def _build_metrics(self) -> None:
        if self.binary:
            metric = BinaryAccuracy()
        else:  # "acc", and "acc_top5" when there are more than 5 classes
            metric = TopKAccuracy(self.num_classes, k=5 if self.num_classes > 5 else 1)
        self._set_stage_metrics(MetricCollection({"acc": metric}))

    # -- timm's API ---------------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Width of the features that ``forward_features`` returns and the head reads."""
        return self.head.in_features

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, *input_shape) -> (B, num_features): everything but the classifier head."""
        raise NotImplementedError

    def forward_head(self, features: Tensor) -> Tensor:
        """(B, num_features) -> (B, num_outputs) logits."""
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        """(B, *input_shape) float -> (B, num_classes) logits, or (B, 1) in binary mode."""
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` classes (fine-tuning)."""
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if self.binary and num_classes != 2:
            raise ValueError(f"a binary classifier has 2 classes, got num_classes={num_classes}")
        log.info("%s: new %d-class head replaces the %d-class one", type(self).__name__, num_classes, self.num_classes)
        self.num_classes = num_classes
        self.hparams.num_classes = num_classes
        old = self.head
        self.head = nn.Linear(old.in_features, self.num_outputs, device=old.weight.device, dtype=old.weight.dtype)
        self._build_metrics()

    # -- loss and metrics ---------------------------------------------------------------------------
    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), target.float())
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)

    def metric_input(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits.squeeze(-1)) if self.binary else logits

    # -- test-time figures: confusion matrix, most confident mistakes (zoo.classifier_figures) --------
    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        # Every rank counts its share of the test set; the confusion matrix is summed over ranks at the end.
        self._test_figures = ClassifierTestFigures(num_classes=self.num_classes) if should_draw(self, every_rank=True) else None

    def _record_test_output(self, x: Tensor, logits: Tensor, target: Tensor) -> None:
        figures = getattr(self, "_test_figures", None)
        if figures is not None:
            p = torch.sigmoid(logits.detach().float())  # (B, 1) in binary mode
            figures.update(x, torch.cat([1 - p, p], dim=-1) if self.binary else logits.detach().float().softmax(-1), target)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        figures, self._test_figures = getattr(self, "_test_figures", None), None
        if figures is not None and self.trainer.world_size > 1:
            figures.matrix = self.all_gather(figures.matrix.to(self.device)).sum(0).cpu()  # (K, K) over every rank
        if figures is not None and self.trainer.is_global_zero:
            figures.log(self)  # the mistakes grid shows rank 0's share

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Class probabilities, (B, num_classes), in binary mode too."""
        logits = super().predict_step(batch, batch_idx)
        if self.binary:
            p = torch.sigmoid(logits)  # (B, 1)
            return torch.cat([1 - p, p], dim=-1)
        return logits.softmax(dim=-1)


class RegressorModule(ZooModule):
    """Base of the regression models: MSE loss, MAE and RMSE metrics.

    Takes ``ZooModule``'s optimizer and scheduler arguments; subclasses define ``num_outputs``.
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._set_stage_metrics(MetricCollection({"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)}))

    @property
    def num_outputs(self) -> int:
        """Number of predicted values per sample, the width of ``forward``'s output."""
        raise NotImplementedError

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target)
