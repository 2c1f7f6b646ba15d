"""Fine-tuning strategies, as Lightning's ``BaseFinetuning`` callbacks: from Python and from the CLI.

    trainer = L.Trainer(callbacks=[FreezeUnfreeze(unfreeze_at_epoch=2, backbone_lr_ratio=0.1)])
    python train.py fit --config configs/resnet20_digits_finetune.yaml \\
        --trainer.callbacks+=zoo.training.finetuning.DiscriminativeLR --trainer.callbacks.lr_decay=0.5

``LinearProbe``       only the head trains; the backbone is a fixed feature extractor (its batch norms in eval mode).
``FreezeUnfreeze``    the head trains alone, then at epoch N the backbone joins with a lower learning rate.
``DiscriminativeLR``  every layer group trains from the start, each with its own learning rate: the head
                      (and what follows the last stage) at ``lr``, the group below at ``lr * lr_decay``, the
                      next at ``lr * lr_decay**2``, ... (layer-wise decay: per block for ViT and BERT, with the
                      embeddings below the first block; per stage of ``feature_info`` for the CNNs).

Lightning's recipe: ``freeze_before_training`` freezes, so ``configure_optimizers`` sees only the head; then
``finetune_function`` (at each epoch start) unfreezes parameters and adds them to the optimizer as new
groups. Each new group's learning rate is a ratio of the head's, and it follows the run's schedule
("cosine", "onecycle", "plateau") at that ratio. Weight decay applies to weights, not biases and norms, as
in ``ZooModule``. A resumed run (``fit --ckpt_path``) gets its groups back (``BaseFinetuning`` saves them).
"""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer

from zoo.core.base import ClassifierModule
from zoo.core.image import ImageClassifier
from zoo.models.sequence.bert import BertClassifier
from zoo.models.vision.vit import VisionTransformer

__all__ = ["DiscriminativeLR", "FreezeUnfreeze", "LinearProbe", "layer_groups"]

log = logging.getLogger(__name__)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The model's parameters below the head, in groups from the input up; the head, and whatever runs after
    the last group (VGG's fully connected layers, ViT's final norm), are the group above them all.

    ViT: the patch and position embeddings and the class token, then one group per block. BERT: the
    embeddings, then one group per encoder layer. The other image classifiers: one group per stage of
    ``feature_info`` (ResNet: the stem, layer1, layer2, ...).
    """
    if isinstance(model, VisionTransformer):
        prefixes = [("patch_embed", "cls_token", "pos_embed"), *((f"blocks.{i}",) for i in range(len(model.blocks)))]
    elif isinstance(model, BertClassifier):
        prefixes = [("bert.embeddings",), *((f"bert.layers.layers.{i}",) for i in range(model.hparams.num_layers))]
    elif isinstance(model, ImageClassifier):
        prefixes = [stage.params for stage in model.feature_stages()]
    else:
        raise ValueError(
            f"{type(model).__name__} has no layer groups for discriminative learning rates: they are defined for the "
            "image classifiers (per stage, per block for ViT) and BertClassifier (per layer)"
        )
    groups: list[list[nn.Parameter]] = [[] for _ in prefixes]
    for name, p in model.named_parameters():
        for group, names in zip(groups, prefixes):
            if any(name == n or name.startswith(n + ".") for n in names):
                group.append(p)
                break
    return groups


def _backbone(model: nn.Module) -> list[nn.Parameter]:
    return [p for name, p in model.named_parameters() if not name.startswith("head.")]


class _Finetuning(BaseFinetuning):
    """What the strategies share: check the model, freeze all but the head, unfreeze groups at a ratio of its rate."""

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, ClassifierModule) or not isinstance(getattr(pl_module, "head", None), nn.Module):
            raise ValueError(f"{type(self).__name__} fine-tunes a zoo classifier (a model with a `head`), not a {type(pl_module).__name__}")
        if isinstance(pl_module, ImageClassifier):
            pl_module.freeze_backbone_()  # batch norms of the backbone stay in eval mode: a fixed feature extractor
        else:
            self.freeze([m for name, m in pl_module.named_children() if name != "head"], train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        raise NotImplementedError

    @staticmethod
    def _unfreeze_backbone(pl_module: L.LightningModule) -> None:
        if isinstance(pl_module, ImageClassifier):
            if pl_module.freeze_backbone:
                pl_module.unfreeze_backbone_()
        else:
            BaseFinetuning.make_trainable([m for name, m in pl_module.named_children() if name != "head"])

    @staticmethod
    def add_param_groups(pl_module: L.LightningModule, optimizer: Optimizer, params: list[nn.Parameter], ratio: float) -> None:
        """Add the ``params`` not yet in ``optimizer`` as new groups whose learning rates are ``ratio`` times the
        first group's (the head's): its current rate, and the rates its LR scheduler keeps (base, peak, floor)."""
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        params = [p for p in params if id(p) not in present]  # by identity: equal values are not the same parameter
        if not params:
            return
        reference = optimizer.param_groups[0]
        template = {k: v for k, v in reference.items() if k not in ("params", "weight_decay")}
        for key, value in template.items():
            if (key == "lr" or key.endswith("_lr")) and isinstance(value, float):
                template[key] = value * ratio  # lr, and the scheduler's initial_lr, max_lr, min_lr
        added = 0
        for group in pl_module._param_groups(params):  # weights with the model's weight decay, biases and norms without
            if group["params"]:
                optimizer.add_param_group({**template, **group})
                added += 1
        trainer = getattr(pl_module, "_trainer", None)
        for config in trainer.lr_scheduler_configs if trainer is not None else []:
            scheduler = config.scheduler
            if getattr(scheduler, "optimizer", None) is not optimizer:
                continue
            for name in ("base_lrs", "_last_lr"):  # the new groups follow the schedule at ``ratio``
                values = getattr(scheduler, name, None)
                if isinstance(values, list) and values:
                    values.extend([values[0] * ratio] * added)
            min_lrs = getattr(scheduler, "min_lrs", None)  # ReduceLROnPlateau
            if isinstance(min_lrs, list) and min_lrs:
                min_lrs.extend([min_lrs[0]] * added)


class LinearProbe(_Finetuning):
    """Linear probe: only the head trains, on the frozen backbone's features (its batch norms in eval mode).

    For the image classifiers it is their ``freeze_backbone=True``.
    """

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        pass  # the backbone stays frozen for the whole run


class FreezeUnfreeze(_Finetuning):
    """The head trains alone on the frozen backbone, then at epoch ``unfreeze_at_epoch`` the backbone joins.

    Args:
        unfreeze_at_epoch: the epoch (counted from 0) from which the backbone trains too.
        backbone_lr_ratio: the backbone's learning rate as a fraction of the head's (at every step of the schedule).
    """

    def __init__(self, unfreeze_at_epoch: int = 1, backbone_lr_ratio: float = 0.1) -> None:
        super().__init__()
        if unfreeze_at_epoch < 0:
            raise ValueError(f"unfreeze_at_epoch must be >= 0, got {unfreeze_at_epoch}")
        if not 0.0 < backbone_lr_ratio <= 1.0:
            raise ValueError(f"backbone_lr_ratio must be in (0, 1], got {backbone_lr_ratio}")
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.backbone_lr_ratio = backbone_lr_ratio

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if trainer.max_epochs is not None and 0 <= trainer.max_epochs <= self.unfreeze_at_epoch:
            log.warning("FreezeUnfreeze: unfreeze_at_epoch=%d but max_epochs=%d: the backbone never trains", self.unfreeze_at_epoch, trainer.max_epochs)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch < self.unfreeze_at_epoch:
            return
        self._unfreeze_backbone(pl_module)  # again after a resume: the groups come back, requires_grad does not
        self.add_param_groups(pl_module, optimizer, _backbone(pl_module), self.backbone_lr_ratio)
        if epoch == self.unfreeze_at_epoch:
            log.info("FreezeUnfreeze: epoch %d, the backbone trains at %g x the head's learning rate", epoch, self.backbone_lr_ratio)


class DiscriminativeLR(_Finetuning):
    """Discriminative (layer-wise) learning rates: the head at ``lr``, each layer group below at ``lr_decay`` times
    the rate of the group above it (``layer_groups``: per block for ViT and BERT, per stage for the CNNs).

    Args:
        lr_decay: the ratio between a group's learning rate and the next group up's, in (0, 1].
    """

    def __init__(self, lr_decay: float = 0.5) -> None:
        super().__init__()
        if not 0.0 < lr_decay <= 1.0:
            raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay}")
        self.lr_decay = lr_decay

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        layer_groups(pl_module)  # a model without groups fails here, before training starts
        super().freeze_before_training(pl_module)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        self._unfreeze_backbone(pl_module)
        groups = layer_groups(pl_module)
        for depth, params in enumerate(reversed(groups), start=1):  # the group just below the head first
            self.add_param_groups(pl_module, optimizer, params, self.lr_decay**depth)
        # parameters in no group (a neck between the stages and the head) train at the head's rate
        self.add_param_groups(pl_module, optimizer, _backbone(pl_module), 1.0)

    def learning_rates(self, pl_module: L.LightningModule, lr: float) -> list[float]:
        """The rate of each group of ``layer_groups``, input first, for a head at ``lr``."""
        n = len(layer_groups(pl_module))
        return [lr * self.lr_decay ** (n - i) for i in range(n)]

