"""What every zoo model shares, and the bases of the models trained one loss per ``(x, y)`` batch.

``ZooModule``         optimizer/scheduler from primitive arguments, input checks, example input: every model.
``SupervisedModule``  train/val/test steps: ``compute_loss(output, target)`` and torchmetrics per stage.
``ClassifierModule``  cross-entropy (or BCE) steps, top-1/top-5 accuracy, timm's
                      ``forward_features`` / ``forward_head`` / ``num_features`` / ``reset_classifier``.
``RegressorModule``   MSE steps with MAE and RMSE.

Models with their own loop (GANs, DQN, the encoder-decoders) inherit ``ZooModule`` and write their
steps themselves. Every argument is a primitive (str, int, float, bool, list), saved by
``save_hyperparameters()``, so a checkpoint loads under ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Iterable
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from zoo.core.registry import registered_name
from zoo.viz.classifier_figures import ClassifierTestFigures
from zoo.viz.figures import should_draw

__all__ = ["ClassifierModule", "IncompatibleDataError", "RegressorModule", "SupervisedModule", "ZooModule"]

log = logging.getLogger(__name__)

_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULERS = ("none", "cosine", "onecycle", "plateau")
_STAGES = ("train", "val", "test")


class IncompatibleDataError(ValueError):
    """A model handed data it cannot read: another number of classes, or another input shape."""


class _BuiltThenFinished(type):
    """Metaclass of ``ZooModule``: calls ``_after_init()`` once the outermost ``__init__`` has returned, so options
    that need every layer built (memory layout, frozen backbone, ``compile``) apply to models built any way:
    directly, by ``create_model``, by the CLI or by a checkpoint loader. It loads nothing."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        module = super().__call__(*args, **kwargs)
        module._after_init()
        return module

    @property
    def __signature__(cls) -> inspect.Signature:
        # The constructor's signature, not __call__'s (*args, **kwargs): inspect.signature(zoo.LeNet5) and --help read it.
        signature = inspect.signature(cls.__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


class ZooModule(L.LightningModule, metaclass=_BuiltThenFinished):
    """Base of every zoo model.

    Subclasses build their layers in ``__init__``, pass the shared arguments below through ``**kwargs``,
    and define ``input_shape`` (one sample's shape, checked by ``check_input``). The arguments are
    documented here only: a model's docstring lists its own, and ``python train.py fit --model.help
    <Model>`` shows both.

    Args:
        optimizer: "sgd" (with momentum, Nesterov), "adam" or "adamw". ``--optimizer`` on the CLI
            takes any torch optimizer instead.
        lr: learning rate (the peak rate for "onecycle").
        weight_decay: L2 penalty / decoupled weight decay on weight matrices and kernels (not on biases or norms).
        momentum: SGD momentum.
        scheduler: "none", "cosine" (per-step decay to 0 over the run), "onecycle" (per-step warm-up then
            decay) or "plateau" (x0.1 when the monitored metric stalls for 5 epochs).
        pretrained: start from these weights: a shipped entry ("resnet20.fashionmnist", see
            ``zoo.list_pretrained()``) or the path of a training checkpoint (``.ckpt``) or ``.safetensors``
            file of the same class. The constructor only records it: builders copy the weights in once the
            model is built (``zoo.create_model``, the CLI, ``zoo.hub.apply_pretrained``); given to the
            constructor directly it is a ValueError that says so. A
            different ``num_classes`` gets a fresh head, a different ``in_channels`` an adapted first
            convolution; any other mismatch is a ValueError. The optimizer, epoch and step start afresh
            (fine-tuning); ``fit --ckpt_path`` is the full resume.
        compile: compile the model in place with ``torch.compile`` (``nn.Module.compile``) once it is built:
            the first batches of each shape pay the compilation, later ones run the fused code. The
            state-dict keys stay those of the eager model, so checkpoints load either way.
    """

    #: Metric that tells the best checkpoint, and whether higher is better.
    monitor: str = "val/loss"
    monitor_mode: Literal["min", "max"] = "min"
    #: State-dict entries (names, or prefixes ending in ".") that record training progress, not weights
    #: (counters, schedules, a replay buffer): ``fit --ckpt_path`` restores them, ``pretrained=`` starts them afresh.
    training_state: tuple[str, ...] = ()
    #: DistributedDataParallel options the model's training step needs (``setup`` hands them to a DDP
    #: strategy that does not set them itself): the GANs' two optimizers each leave the other network's
    #: parameters without gradients (``find_unused_parameters``); the DQN's replay buffer and counters are
    #: per-rank experience, not state to copy from rank 0 at every step (``broadcast_buffers``).
    ddp_options: dict[str, Any] = {}

    def __init__(
        self,
        *,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        scheduler: str = "none",
        pretrained: str | None = None,
        compile: bool = False,  # noqa: A002  (the torch name for it; nn.Module.compile is what it calls)
    ) -> None:
        super().__init__()
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
        if scheduler not in _SCHEDULERS:
            raise ValueError(f"scheduler must be one of {_SCHEDULERS}, got {scheduler!r}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if pretrained:
            name = registered_name(type(self)) or "<registry name>"
            raise ValueError(
                f"{type(self).__name__}(pretrained={pretrained!r}): a model's constructor builds the network and loads "
                f"no weights. Use zoo.create_model({name!r}, pretrained={pretrained!r}), or build the model and call "
                f"zoo.hub.apply_pretrained(model, {pretrained!r})."
            )
        # Collects the arguments of every __init__ in the subclass chain, not only these. Under the CLI,
        # Lightning records the parsed arguments instead; the CLI links data only into arguments the model takes.
        self.save_hyperparameters()

    def _after_init(self) -> None:
        """Run once the outermost ``__init__`` has returned (``_BuiltThenFinished``), when every layer exists:
        ``compile=True`` compiles in place. Never loads weights: builders do (``zoo.hub``).

        Subclasses that extend it (``ImageClassifier``: memory layout, frozen backbone) call ``super()._after_init()`` last.
        """
        if self.hparams.get("compile"):
            # In place (not torch.compile(model)'s wrapper), so the keys carry no "_orig_mod." prefix.
            self.compile()

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Lightning's, with ``pretrained=None``: the checkpoint holds the weights, its recorded start is not read."""
        kwargs.setdefault("pretrained", None)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def setup(self, stage: str) -> None:
        """Before the strategy wraps the model: pass ``ddp_options`` to a DDP strategy (an explicit
        ``DDPStrategy(find_unused_parameters=...)`` or ``strategy="ddp_find_unused_parameters_false"`` wins)."""
        from lightning.pytorch.strategies import DDPStrategy

        strategy = self.trainer.strategy
        if self.ddp_options and isinstance(strategy, DDPStrategy):
            for key, value in self.ddp_options.items():
                if strategy._ddp_kwargs.setdefault(key, value) != value:
                    log.warning("%s: DDP option %s=%r kept as configured; the model expects %r", type(self).__name__, key, strategy._ddp_kwargs[key], value)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Names the class for zoo.load_checkpoint, which looks it up among the zoo's own classes only.
        checkpoint["zoo_class"] = type(self).__name__

    # -- input ------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (1, 28, 28)."""
        raise NotImplementedError

    @property
    def example_input_array(self) -> Tensor:
        return torch.zeros(2, *self.input_shape)  # (B=2, *input_shape)

    def _describe_shape(self) -> str:
        names = {1: ("F",), 2: ("T", "F"), 3: ("C", "H", "W")}.get(len(self.input_shape))
        dims = [f"{n}={d}" for n, d in zip(names, self.input_shape)] if names else list(map(str, self.input_shape))
        return f"(B, {', '.join(dims)})"

    def check_input(self, x: Tensor) -> Tensor:
        """Raise a ValueError naming the expected shape when ``x`` is not a float batch of ``input_shape``."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expects a torch.Tensor of shape {self._describe_shape()}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(
                f"{name} expects a floating-point tensor of shape {self._describe_shape()}, got dtype {x.dtype}. "
                "Scale uint8 images to [0, 1] and normalize them first (the datamodule's preprocess() does both)."
            )
        if tuple(x.shape[1:]) != tuple(self.input_shape) or x.ndim != len(self.input_shape) + 1:
            raise ValueError(
                f"{name} expects input of shape {self._describe_shape()}, got {tuple(x.shape)}. "
                "Build the model for your data (e.g. in_channels=, image_size=) or resize the data."
            )
        return x

    # -- inference --------------------------------------------------------------------------------
    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The model's output for the batch's inputs (its first element when the batch is a tuple)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    # -- optimization -----------------------------------------------------------------------------
    def _param_groups(self, parameters: Iterable[nn.Parameter] | None = None) -> list[dict[str, Any]]:
        decay, no_decay = [], []
        for p in self.parameters() if parameters is None else parameters:
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)  # biases and norm scales: no decay
        return [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def build_optimizer(self, parameters: Iterable[nn.Parameter] | None = None, **options: Any) -> torch.optim.Optimizer:
        """The configured optimizer over ``parameters`` (default: all of them), weight decay on weights
        only; ``options`` (say Adam's ``betas``) go to the optimizer's constructor."""
        hp = self.hparams
        groups = self._param_groups(parameters)
        if hp.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0, **options)
        cls = torch.optim.Adam if hp.optimizer == "adam" else torch.optim.AdamW
        return cls(groups, lr=hp.lr, **options)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        opt = self.build_optimizer()
        if hp.scheduler == "none":
            return opt
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=self.monitor_mode, factor=0.1, patience=5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": self.monitor}}
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(f"scheduler={hp.scheduler!r} needs a finite run: set max_epochs or max_steps")
        if hp.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(total)))
        else:
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=max(2, int(total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class SupervisedModule(ZooModule):
    """Base of the models trained one loss per ``(x, y)`` batch: train, validation and test steps.

    Each step computes ``compute_loss(self(x), y)``, updates the stage's metrics with
    ``metric_input(output)`` and ``y``, and logs ``{stage}/loss`` and ``{stage}/<metric>``. Subclasses define
    ``compute_loss`` and call ``_set_stage_metrics`` once in ``__init__``; a step that needs more (another
    input, extra metrics) overrides ``_shared_step``.
    """

    def _set_stage_metrics(self, collection: MetricCollection) -> None:
        """One copy of ``collection`` per stage, logged as ``train/...``, ``val/...``, ``test/...``."""
        for stage in _STAGES:
            setattr(self, f"{stage}_metrics", collection.clone(prefix=f"{stage}/"))

    def _metrics(self, stage: str) -> MetricCollection:
        return getattr(self, f"{stage}_metrics")

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training objective of one batch: ``forward``'s output against the targets."""
        raise NotImplementedError

    def metric_input(self, output: Tensor) -> Tensor:
        """What the metrics compare with the target (logits, probabilities or values)."""
        return output

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        output = self(x)
        loss = self.compute_loss(output, y)
        metrics = self._metrics(stage)
        metrics.update(self.metric_input(output).detach(), y)
        if stage == "test":
            self._record_test_output(x, output, y)
        on_step = stage == "train"
        # sync_dist: under DDP the logged loss is the mean over every rank's samples (metrics sync themselves).
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=len(x))
        return loss

    def _record_test_output(self, x: Tensor, output: Tensor, target: Tensor) -> None:
        """Called with every test batch's inputs, outputs and targets, for test-time figures (classifiers)."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")


class ClassifierModule(SupervisedModule):
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
            metrics = {"acc": BinaryAccuracy()}
        else:
            metrics = {"acc": MulticlassAccuracy(self.num_classes, average="micro")}
            if self.num_classes > 5:
                metrics["acc_top5"] = MulticlassAccuracy(self.num_classes, top_k=5, average="micro")
        self._set_stage_metrics(MetricCollection(metrics))

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


class RegressorModule(SupervisedModule):
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
