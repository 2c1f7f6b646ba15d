"""The zoo's LightningCLI: ``python train.py {fit,validate,test,predict} --config configs/<recipe>.yaml``.

Any ``ZooModule`` and any ``ZooDataModule`` can be chosen by class name (``--model LeNet5``) or class
path (``--model zoo.LeNet5``). On top of Lightning's CLI it

* links the datamodule's attributes into the model arguments that the chosen model takes, one
  explicit link per argument (``DATA_LINKS``, ``zoo.training.data_links``): ``num_classes``; ``in_channels``, ``image_size``,
  ``in_features`` and ``image_shape`` from ``input_shape``; ``mean`` and ``std`` from ``normalization``;
  ``class_names``; vocabularies and series sizes. An argument the model does not take gets no link, so
  the checkpoint's hyperparameters are exactly the model's arguments;
* adds a ModelCheckpoint that keeps the best model by the model's own metric (``val/acc`` for
  classifiers, ``val/loss`` for regressors) and a ``LastCheckpoint`` that keeps ``last.ckpt`` current,
  unless the config brings its own;
* logs to CSV (``<default_root_dir>/lightning_logs/version_N/metrics.csv``) unless ``--trainer.logger``
  names another logger (``TensorBoardLogger``, ``WandbLogger``) or ``false``;
* shows a live (rich) progress bar on a terminal, one line per epoch elsewhere (logs, pipes, CI);
* adds ``--test_after_fit``: test the best checkpoint once fit ends, then print how to load it;
* survives faults: checkpoints are written atomically (``zoo.checkpoint_io``), ``--checkpoint_every_n_steps N``
  refreshes ``last.ckpt`` mid-epoch, the random generators and the data order are saved in every
  checkpoint (``zoo.resume``), ``--ckpt_path last`` finds the newest ``last.ckpt`` of earlier runs, and
  ``--on_nonfinite_loss raise|skip`` stops or skips a step whose loss or gradient is NaN/inf (``zoo.guards``);
* adds ``--weight_averaging ema|swa`` (``--ema_decay``, ``--swa_epoch_start``): Lightning's ``WeightAveraging``
  callback, whose averaged weights the checkpoints hold (``zoo.training.weight_averaging``).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import CheckpointIO

import datamodules  # noqa: F401  (makes every datamodule selectable by class name)
import zoo.models  # noqa: F401  (makes every model selectable by class name)
from datamodules.base import DataNotFoundError, ZooDataModule
from zoo.core.base import IncompatibleDataError, ZooModule
from zoo.hub.checkpoint import resolve_model_class
from zoo.hub.finetune import apply_pretrained
from zoo.training.atomic_checkpoint_io import AtomicCheckpointIO
from zoo.training.cli_errors import ConfigError, ZooArgumentParser, check_linked_arguments, constructor_error
from zoo.training.data_links import DATA_LINKS
from zoo.training.epoch_progress_bar import EpochLineProgressBar
from zoo.training.nonfinite_guard import NonFiniteLossError, NonFiniteLossGuard
from zoo.training.resume import LastCheckpoint, RNGStateCallback, find_last_checkpoint
from zoo.training.weight_averaging import averaging_callback

__all__ = ["DATA_LINKS", "USER_ERRORS", "ZooCLI", "build_cli", "checkpoint_hparams", "main"]

# The zoo's loaders index in-memory tensors: worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


def _as_list(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _relative(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, for copy-pasteable commands."""
    if not path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


#: The only ``_instantiator`` a checkpoint may record: the one Lightning's CLI writes.
LIGHTNING_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"
#: jsonargparse's keys that name a class to import; no value read from a checkpoint may hold them.
_CODE_KEYS = frozenset({"class_path", "init_args", "dict_kwargs", "__path__"})


def _code_keys(value: Any, where: str = "") -> list[str]:
    """Where in ``value`` (nested dicts and lists) a key jsonargparse would read as a class to import sits."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            found += [here] if key in _CODE_KEYS else _code_keys(item, here)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found += _code_keys(item, f"{where}[{i}]")
    return found


def checkpoint_hparams(checkpoint: Any, path: str | os.PathLike) -> dict[str, Any]:
    """A ``--ckpt_path`` checkpoint's hyperparameters, safe to hand to jsonargparse.

    A value read from a file never names code: the recorded ``_class_path`` must be one of the zoo's model
    classes (looked up, never imported: ``zoo.hub.checkpoint.resolve_model_class``) and is replaced by that class's
    own path, so checkpoints that name an old module path (``zoo.resnet.ResNet``) or ``zoo.LeNet5`` keep loading;
    ``_instantiator`` must be Lightning's; and no hyperparameter may hold jsonargparse's ``class_path`` /
    ``init_args`` keys. Anything else is a ``ConfigError`` naming the file and the refused value.
    """
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{path} is not a Lightning checkpoint")
    hparams = checkpoint.get("hyper_parameters") or {}
    if not isinstance(hparams, dict):
        raise ConfigError(f"{path}: its hyper_parameters are not a mapping")
    hparams = dict(hparams)
    instantiator = hparams.pop("_instantiator", None)
    if instantiator is not None and instantiator != LIGHTNING_INSTANTIATOR:
        raise ConfigError(f"{path} records _instantiator {instantiator!r}; only Lightning's ({LIGHTNING_INSTANTIATOR}) is accepted")
    if "_class_path" in hparams:
        recorded = hparams["_class_path"]
        try:
            cls = resolve_model_class(recorded) if isinstance(recorded, str) else None
        except ValueError:
            cls = None
        if cls is None:
            raise ConfigError(
                f"{path} records the model class {recorded!r}, which is not one of the zoo's model classes; "
                "it is not imported. Load checkpoints written by the zoo's own models."
            )
        hparams["_class_path"] = f"{cls.__module__}.{cls.__qualname__}"
    refused = _code_keys(hparams)
    if refused:
        raise ConfigError(f"{path}: hyperparameter {refused[0]!r} would name a class to import; the checkpoint is refused")
    return hparams


class ZooCLI(LightningCLI):
    """LightningCLI with the zoo's argument links, default checkpointing and ``--test_after_fit``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, run the test split on the best checkpoint and print how to load it.",
        )
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=0,
            help="Also refresh last.ckpt every N training steps, mid-epoch included (0: at validation ends only).",
        )
        parser.add_argument(
            "--on_nonfinite_loss",
            type=Literal["raise", "skip"],
            default="raise",
            help="A NaN/inf loss or gradient: 'raise' stops training naming the step; 'skip' drops the step with a warning.",
        )
        parser.add_argument(
            "--weight_averaging",
            type=Literal["none", "ema", "swa"],
            default="none",
            help="Average the weights: 'ema' (moving average after every step) or 'swa' (equal average of epoch ends); "
            "validation, checkpoints and the final model use the averaged weights.",
        )
        parser.add_argument("--ema_decay", type=float, default=0.999, help="--weight_averaging ema: the average's decay per step.")
        parser.add_argument(
            "--swa_epoch_start",
            type=float,
            default=0.75,
            help="--weight_averaging swa: the first averaged epoch (0, 1, 2, ...) or a fraction of max_epochs between 0 and 1.",
        )

    def _parse_ckpt_path(self) -> None:
        """Lightning's reading of a ``--ckpt_path`` checkpoint's hyperparameters into the config, with the file's
        values checked first (``checkpoint_hparams``): Lightning would hand the recorded ``_class_path`` to
        jsonargparse, which imports whatever module it names."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        checkpoint = torch.load(ckpt_path, weights_only=True, map_location="cpu")
        if subcommand == "fit" and "current_model_state" in checkpoint and not self._averages(self.config[subcommand]):
            raise ConfigError(
                f"{ckpt_path} was written with weight averaging: its state_dict holds the averaged weights and the live "
                "ones are kept apart. Resume it with the same --weight_averaging (ema or swa) to continue both."
            )
        hparams = checkpoint_hparams(checkpoint, ckpt_path)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write(f"Parsing of the hyperparameters of {ckpt_path} failed!\n")
            raise

    def before_instantiate_classes(self) -> None:
        """Link the datamodule's attributes (``DATA_LINKS``) into the arguments the chosen model takes.

        The links are made once the model class is known, so a model gets a value only for an argument
        it takes, and its checkpoint records exactly its own arguments. They apply when the classes are
        instantiated: the datamodule first, then the model built with the values read from it.
        """
        init_args = (self._get(self.config, "model") or {}).get("init_args")
        taken = set(vars(init_args)) if init_args is not None else set()  # the chosen class's arguments
        parser = self._parser(self.subcommand)
        for argument, (attribute, convert) in DATA_LINKS.items():
            if argument in taken:
                parser.link_arguments(f"data.{attribute}", f"model.init_args.{argument}", compute_fn=convert, apply_on="instantiate")

    def instantiate_classes(self) -> None:
        """Lightning's, with a constructor's ValueError / TypeError (``lr=-1``, ``batch_size=0``, an image size
        the model cannot take) as a ``ConfigError`` naming the class, and linked arguments checked (``cli_errors``).

        ``--model.init_args.pretrained`` is applied here, as every builder applies it: the model is built
        without it, then takes the source's weights (``zoo.hub.apply_pretrained``, which records the source in
        ``model.hparams["pretrained"]``, so the checkpoints name it); the saved config keeps it as given.
        """
        optimizer = (self._get(self.config, "optimizer") or {}).get("init_args") or {}
        if isinstance(optimizer.get("lr"), (int, float)) and optimizer.get("lr") <= 0:
            raise ConfigError(f"--optimizer.lr must be > 0, got {optimizer.get('lr')}")
        init_args = (self._get(self.config, "model") or {}).get("init_args")
        pretrained = getattr(init_args, "pretrained", None) if init_args is not None else None
        if pretrained:
            init_args.pretrained = None  # a model's constructor loads nothing
        try:
            super().instantiate_classes()
            if pretrained:
                apply_pretrained(self.model, pretrained)
        except (ValueError, TypeError) as e:
            raise constructor_error(e) from e
        finally:
            if pretrained:
                init_args.pretrained = pretrained
        ckpt_path = self._get(self.config, "ckpt_path")
        ckpt_path = ckpt_path if ckpt_path and os.path.isfile(ckpt_path) else None
        check_linked_arguments(self.config[self.subcommand] if self.subcommand else self.config, self.model, self.datamodule, ckpt_path)

    def instantiate_trainer(self, **kwargs):
        config = self._get(self.config_init, "trainer", default={})
        # A subclass's own callbacks and plugins (zoo.tools.ray_train: Ray's) join the config's.
        callbacks = [*_as_list(config.get("callbacks")), *_as_list(kwargs.pop("callbacks", None))]
        plugins = [*_as_list(config.get("plugins")), *_as_list(kwargs.pop("plugins", None))]
        added = []
        every = self._get(self.config, "checkpoint_every_n_steps") or 0
        if every < 0:
            raise ConfigError(f"--checkpoint_every_n_steps must be >= 0 (0: at validation ends only), got {every}")
        if config.get("enable_checkpointing") is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            added.append(
                ModelCheckpoint(
                    monitor=self.model.monitor,
                    mode=self.model.monitor_mode,
                    save_top_k=1,
                    filename="epoch{epoch:03d}",
                    auto_insert_metric_name=False,
                )
            )
            # last.ckpt at every validation, and every N steps: after the best-model checkpoint, which stays
            # trainer.checkpoint_callback (Lightning's save_last refreshes last.ckpt only on a new best).
            added.append(LastCheckpoint(every_n_steps=every))
        elif every and config.get("enable_checkpointing") is not False:
            added.append(LastCheckpoint(every_n_steps=every))
        added += self._fault_callbacks(callbacks)
        added += self._averaging_callbacks(callbacks)
        kwargs["plugins"] = plugins if any(isinstance(p, CheckpointIO) for p in plugins) else [*plugins, AtomicCheckpointIO()]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            added.append(RichProgressBar() if sys.stdout.isatty() else EpochLineProgressBar())
        if config.get("logger") in (None, True) and "logger" not in kwargs:  # none chosen: CSV, not TensorBoard
            kwargs["logger"] = CSVLogger(save_dir=config.get("default_root_dir") or os.getcwd())
        kwargs["callbacks"] = callbacks + added
        return super().instantiate_trainer(**kwargs)

    @staticmethod
    def _averages(config: Any) -> bool:
        """Whether the run averages weights: ``--weight_averaging`` or a WeightAveraging callback in the trainer's."""
        callbacks = (config.get("trainer") or {}).get("callbacks") or []
        return config.get("weight_averaging", "none") != "none" or "WeightAveraging" in str(callbacks)

    def _averaging_callbacks(self, callbacks: list) -> list:
        """``--weight_averaging``'s callback (``zoo.training.weight_averaging.averaging_callback``)."""
        mode = self._get(self.config, "weight_averaging") or "none"
        try:
            callback = averaging_callback(mode, callbacks, self._get(self.config, "ema_decay"), self._get(self.config, "swa_epoch_start"))
        except ValueError as e:
            raise ConfigError(f"--weight_averaging {mode}: {e}") from None
        return [callback] if callback is not None else []

    def _fault_callbacks(self, callbacks: list) -> list:
        """The random generators' checkpointing and the non-finite loss guard, unless the config brings its own."""
        added = []
        if not any(isinstance(c, RNGStateCallback) for c in callbacks):
            added.append(RNGStateCallback())
        if not any(isinstance(c, NonFiniteLossGuard) for c in callbacks):
            added.append(NonFiniteLossGuard(mode=self._get(self.config, "on_nonfinite_loss") or "raise"))
        return added

    def before_fit(self) -> None:
        """``--ckpt_path last``: the newest ``last.ckpt`` of the earlier runs logged beside this one.

        Every run logs to a new ``version_N`` folder, where Lightning alone would find no ``last.ckpt``.
        """
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        trainer = self.trainer
        folders = [cb.dirpath for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
        folders += [root for logger in trainer.loggers if (root := getattr(logger, "root_dir", None))]
        folders.append(os.path.join(trainer.default_root_dir, "checkpoints"))
        found = find_last_checkpoint(*folders)
        if found is not None:
            config["ckpt_path"] = found
            print(f"Resuming from {_relative(found)}", flush=True)

    def after_fit(self) -> None:
        trainer = self.trainer
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else ""
        if self._get(self.config, "test_after_fit"):
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)  # the path: "best" warns with 2 ModelCheckpoints
        if not best or not trainer.is_global_zero:
            return
        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if getattr(c, "last_model_path", "")), "")
        best, last = _relative(best), _relative(last)
        score = checkpoint.best_model_score
        configs = self._get(self.config, "config") or []
        config = f"--config {configs[-1]}" if configs else "<your fit arguments>"
        lines = [
            f"Best checkpoint ({checkpoint.monitor}={float(score):.4f}): {best}" if score is not None else f"Best checkpoint: {best}",
            f"  load in Python: model = zoo.load_checkpoint({str(best)!r})",
            f"  evaluate:       python train.py test {config} --ckpt_path {best}",
        ]
        if last:
            lines.append(f"  resume:         python train.py fit {config} --ckpt_path {last}")
        print("\n".join(lines), flush=True)


#: What ends a run with one ``error: <message>`` line instead of a traceback (``main``, ``zoo.tools.ray_train``).
USER_ERRORS = (DataNotFoundError, ConfigError, IncompatibleDataError, NonFiniteLossError)


def build_cli(args: Any = None, cli_class: type[ZooCLI] = ZooCLI) -> ZooCLI:
    """``cli_class`` (``ZooCLI`` or a subclass) made as ``train.py`` makes it, which parses ``args`` and runs them.

    Args:
        args: the command line after ``train.py`` (``["fit", "--config", ...]``); None reads ``sys.argv``.
        cli_class: the CLI class: any ``ZooModule`` and ``ZooDataModule`` by name, the zoo's argument parser and errors.
    """
    return cli_class(
        ZooModule,
        ZooDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_class=ZooArgumentParser,
        args=args,
    )


def main(args=None) -> ZooCLI:
    """Entry point of ``train.py`` and of the ``zoo-train`` command.

    A dataset that cannot be found, a configuration mistake (``ConfigError``: an invalid argument, a
    model argument the datamodule contradicts) or a model that cannot read the data
    (``IncompatibleDataError``) ends the run with ``error: <message>`` and exit status 1, not a
    traceback; a name that is not a zoo class ends it with the valid names and exit status 2.
    """
    try:
        return build_cli(args)
    except USER_ERRORS as e:
        if args is not None:  # called from Python: let the caller handle it
            raise
        sys.exit(f"error: {e}")
