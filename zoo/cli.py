"""The zoo's LightningCLI: ``python train.py {fit,validate,test,predict} --config configs/<recipe>.yaml``.

Any ``ZooModule`` and any ``ZooDataModule`` can be chosen by class name (``--model LeNet5``) or class
path (``--model zoo.LeNet5``). On top of Lightning's CLI it

* links the datamodule's ``num_classes`` and ``input_shape`` into the model (``num_classes``,
  ``in_channels``, ``image_size``, ``in_features``: whichever the model takes);
* adds a ModelCheckpoint that keeps the best model by the model's own metric (``val/acc`` for
  classifiers, ``val/loss`` for regressors) plus ``last.ckpt``, unless the config brings its own;
* shows a live progress bar on a terminal, one line per epoch elsewhere (logs, pipes, CI);
* adds ``--test_after_fit``: test the best checkpoint once fit ends, then print how to load it.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import datamodules  # noqa: F401  (makes every datamodule selectable by class name)
import zoo  # noqa: F401  (makes every model selectable by class name)
from datamodules.base import DataNotFoundError, ZooDataModule
from zoo.base import ZooModule
from zoo.callbacks import EpochLineProgressBar

__all__ = ["ZooCLI", "main"]

# The zoo's loaders index in-memory tensors: worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


def _channels(shape: tuple[int, ...]) -> int | None:
    return shape[0] if len(shape) == 3 else None


def _image_size(shape: tuple[int, ...]) -> int | None:
    return shape[-1] if len(shape) == 3 and shape[-1] == shape[-2] else None


def _num_features(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


_SEQUENCE_LINKS = (
    ("vocab_size", "vocab_size"),
    ("tokenizer", "tokenizer"),
    ("src_vocab_size", "src_vocab_size"),
    ("tgt_vocab_size", "tgt_vocab_size"),
    ("src_tokenizer", "src_tokenizer"),
    ("tgt_tokenizer", "tgt_tokenizer"),
    ("num_series", "input_size"),
    ("target_std", "target_std"),
    ("target", "target"),
    ("window", "window"),
    ("horizon", "horizon"),
)


def _relative(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, for copy-pasteable commands."""
    if not path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


class ZooCLI(LightningCLI):
    """LightningCLI with the zoo's argument links, default checkpointing and ``--test_after_fit``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, run the test split on the best checkpoint and print how to load it.",
        )
        # A link whose target the chosen model does not take is skipped.
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        for target, fn in (("in_channels", _channels), ("image_size", _image_size), ("in_features", _num_features)):
            parser.link_arguments("data.input_shape", f"model.init_args.{target}", compute_fn=fn, apply_on="instantiate")
        # Sequence data: vocabularies (as primitives, so checkpoints decode text), sizes and lengths. A link
        # whose source the chosen datamodule lacks is skipped too.
        for source, target in _SEQUENCE_LINKS:
            parser.link_arguments(f"data.{source}", f"model.init_args.{target}", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs):
        config = self._get(self.config_init, "trainer", default={})
        callbacks = list(config.get("callbacks") or [])
        added = []
        if config.get("enable_checkpointing") is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            added.append(
                ModelCheckpoint(
                    monitor=self.model.monitor,
                    mode=self.model.monitor_mode,
                    save_top_k=1,
                    save_last=True,
                    filename="epoch{epoch:03d}",
                    auto_insert_metric_name=False,
                )
            )
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            added.append(TQDMProgressBar() if sys.stdout.isatty() else EpochLineProgressBar())
        if added:
            kwargs["callbacks"] = callbacks + added
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        trainer = self.trainer
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else ""
        if self._get(self.config, "test_after_fit"):
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best" if best else None)
        if not best or not trainer.is_global_zero:
            return
        best, last = _relative(best), _relative(checkpoint.last_model_path)
        cls = type(self.model)
        score = checkpoint.best_model_score
        configs = self._get(self.config, "config") or []
        config = f"--config {configs[-1]}" if configs else "<your fit arguments>"
        lines = [
            f"Best checkpoint ({checkpoint.monitor}={float(score):.4f}): {best}" if score is not None else f"Best checkpoint: {best}",
            f"  load in Python: model = {cls.__module__.split('.')[0]}.{cls.__name__}.load_from_checkpoint({str(best)!r})",
            f"  evaluate:       python train.py test {config} --ckpt_path {best}",
        ]
        if last:
            lines.append(f"  resume:         python train.py fit {config} --ckpt_path {last}")
        print("\n".join(lines), flush=True)


def main(args=None) -> ZooCLI:
    """Entry point of ``train.py`` and of the ``zoo-train`` command.

    A dataset that cannot be found ends the run with its message (where to put the files) and exit
    status 1, not a traceback.
    """
    try:
        return ZooCLI(
            ZooModule,
            ZooDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except DataNotFoundError as e:
        if args is not None:  # called from Python: let the caller handle it
            raise
        sys.exit(f"error: {e}")
