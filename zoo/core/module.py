"""``ZooModule``, the base of every zoo model: optimizer and scheduler from primitive arguments, input checks,
example input, the options applied once the layers exist (``compile``), and the train / validation / test
steps of the models trained one loss per ``(x, y)`` batch (models with their own loop replace them).

Every argument is a primitive (str, int, float, bool, list), saved by ``save_hyperparameters()``, so a
checkpoint loads under ``torch.load(weights_only=True)``. The classifier and regressor bases are in
``zoo.core.supervised``; ``zoo.core.base`` names them all.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import lightning as L
import torch
from torch import Tensor, nn

from zoo.core.metrics import LossMean
from zoo.core.registry import registered_name

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["ZooModule", "provide_folder_io"]

log = logging.getLogger(__name__)

_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULERS = ("none", "cosine", "onecycle", "plateau")
_STAGES = ("train", "val", "test")

#: What ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` call: "save", "load", "push", handed over by the
#: loaders' layer (``zoo.hub.folder``, which ``import zoo`` imports) through ``provide_folder_io``: a model's layer
#: imports no loader, and the loader reads a file's class the way every zoo loader does (docs/guides/security.md).
_FOLDER_IO: dict[str, Any] = {}


def provide_folder_io(**functions: Any) -> None:
    """Called once by ``zoo.hub.folder`` with the functions behind the Hugging Face folder methods of ``ZooModule``."""
    _FOLDER_IO.update(functions)


def _folder_io(name: str) -> Any:
    if name not in _FOLDER_IO:
        raise RuntimeError("the Hugging Face folder methods need zoo.hub.folder: import zoo first")
    return _FOLDER_IO[name]


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

    The train, validation and test steps are those of a model trained one loss per ``(x, y)`` batch: each
    computes ``compute_loss(self(x), y)``, updates the stage's metrics with ``metric_input(output)`` and
    ``y``, and logs ``{stage}/loss`` and ``{stage}/<metric>``. Such a model (``ClassifierModule``,
    ``RegressorModule``) defines ``compute_loss`` and calls ``_set_stage_metrics`` once in ``__init__``; a
    step that needs more (another input, extra metrics) overrides ``_shared_step``. Models with their own
    loop (GANs, DQN, the encoder-decoders) write ``training_step``, ``validation_step`` and ``test_step``.

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

    # -- Hugging Face folders (zoo.hub.folder) ------------------------------------------------------
    def save_pretrained(self, save_directory: Any, *, metrics: dict[str, float] | None = None, **kwargs: Any) -> Any:
        """Write ``config.json`` (constructor arguments, preprocessing), ``model.safetensors`` and a ``README.md`` card
        (from ``metrics``) into ``save_directory``, huggingface_hub's ``PyTorchModelHubMixin`` layout; returns the folder.
        Options (``weight_averaging="ema"``, ``arch="resnet20"``): ``zoo.hub.folder.save_folder``."""
        return _folder_io("save")(self, save_directory, metrics=metrics, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> Any:
        """The model in a folder ``save_pretrained`` wrote, or in a Hub repo id holding one (needs huggingface_hub), in
        eval mode; it must be a ``cls``. Options (``revision``, ``cache_dir``, ``local_files_only``, ``map_location``,
        ``num_classes=`` and other overrides): ``zoo.hub.folder.load_folder``."""
        return _folder_io("load")(pretrained_model_name_or_path, model=cls, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """``save_pretrained`` into a temporary folder uploaded to the Hub repo ``repo_id`` (needs huggingface_hub, a
        network and a token); returns the commit URL. Options: ``zoo.hub.folder.push_folder``."""
        return _folder_io("push")(self, repo_id, **kwargs)

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

    # -- the (x, y)-batch steps ---------------------------------------------------------------------
    def _set_stage_metrics(self, collection: MetricCollection) -> None:
        """One copy of ``collection`` per stage, logged as ``train/...``, ``val/...``, ``test/...``."""
        for stage in _STAGES:
            setattr(self, f"{stage}_metrics", collection.clone(prefix=f"{stage}/"))

    def _metrics(self, stage: str) -> MetricCollection:
        return getattr(self, f"{stage}_metrics")

    def compute_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training objective of one ``(x, y)`` batch: ``forward``'s output against the targets."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no compute_loss(output, target): define it, or write training_step, "
            "validation_step and test_step for a model with its own loop"
        )

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
        self._log_loss(stage, loss, len(x))
        return loss  # the metrics are logged once, at the end of the epoch (_log_epoch_metrics)

    def _log_loss(self, stage: str, loss: Tensor, batch_size: int) -> None:
        """Add a batch's loss to the stage's epoch mean (``train/loss_epoch``, ``val/loss``, ``test/loss``, logged by
        ``_log_epoch_metrics``); in training, also log it as ``train/loss_step`` on the steps the logger writes.

        What ``self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=batch_size,
        sync_dist=True)`` logs, without its per-call cost every step: the logger receives the same values (it
        writes step values every ``log_every_n_steps`` steps), and the progress bar refreshes the step loss then.
        """
        mean = getattr(self, f"{stage}_loss_mean", None)
        if mean is None:  # made on first use: models with their own metrics share this step
            mean = LossMean().to(loss.device)
            setattr(self, f"{stage}_loss_mean", mean)
        mean.update(loss, batch_size)
        trainer = self._trainer
        if stage == "train" and trainer is not None and trainer._logger_connector.should_update_logs:
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)

    def _epoch_metrics(self, stage: str) -> list[tuple[MetricCollection, bool]]:
        """The stage's metric collections that ``_log_epoch_metrics`` logs, each with whether the progress line shows it."""
        collection = getattr(self, f"{stage}_metrics", None)
        return [] if collection is None else [(collection, stage != "train")]

    def _log_epoch_metrics(self, stage: str) -> None:
        """Log the stage's torchmetrics once per epoch, over every sample it saw on every rank, and reset them.

        The steps only ``update`` them: computing and logging what is shown per epoch once per epoch, instead of
        handing the metric objects to ``self.log`` every step, keeps the per-step cost of a small network's
        training step close to a hand-written loop's (BENCHMARKS.md, table 1). The values are the same.
        """
        mean = getattr(self, f"{stage}_loss_mean", None)
        if mean is not None and mean.update_called:
            # compute() sums every rank's totals first; sync_dist then averages identical values (no warning).
            self.log(f"{stage}/loss_epoch" if stage == "train" else f"{stage}/loss", mean.compute(), prog_bar=True, sync_dist=True)
            mean.reset()
        for collection, prog_bar in self._epoch_metrics(stage):
            if not any(metric.update_called for metric in collection.values()):
                continue  # no batch of this stage this epoch (limit_*_batches=0)
            # compute() gathers every rank's counts first; sync_dist then averages identical values (no warning).
            self.log_dict(collection.compute(), prog_bar=prog_bar, sync_dist=True)
            collection.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def _record_test_output(self, x: Tensor, output: Tensor, target: Tensor) -> None:
        """Called with every test batch's inputs, outputs and targets, for test-time figures (classifiers)."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

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
