"""``create_model``: a registered model built from its arguments, with weights when asked for.

    >>> model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32)  # doctest: +SKIP
    >>> model = create_model("resnet20", pretrained="fashionmnist", num_classes=5)    # doctest: +SKIP
    >>> model = create_model("resnet18", weights="DEFAULT", num_classes=10)           # doctest: +SKIP
    >>> backbone = create_model("resnet20", features_only=True, out_indices=(1, 2, 3))  # doctest: +SKIP

A model's constructor builds the network and loads nothing; this is where weights are applied: a shipped
entry (``zoo.hub.pretrained``), a training checkpoint or ``.safetensors`` file (``zoo.hub.finetune``), or
torchvision's ImageNet weights (``zoo.hub.imagenet``).
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from zoo.core.base import ZooModule
from zoo.core.features import FeatureBackbone
from zoo.core.registry import _entry
from zoo.hub.finetune import apply_pretrained
from zoo.hub.imagenet import build_pretrained
from zoo.hub.pretrained import list_pretrained, load_pretrained, pretrained_entry

__all__ = ["create_model"]


def create_model(
    name: str,
    pretrained: str | os.PathLike | None = None,
    *,
    features_only: bool = False,
    out_indices: int | list[int] | tuple[int, ...] | None = None,
    **overrides: Any,
) -> ZooModule | nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its default arguments.

    Args:
        name: a registry name, see ``list_models()``.
        pretrained: shipped weights (``zoo.list_pretrained()``): a dataset (``"fashionmnist"`` means the
            entry ``f"{name}.fashionmnist"``) or a full entry name. The model is built as it was trained and
            loaded; then ``num_classes=`` different from the entry's replaces the head (the log says so) and
            ``in_channels=`` adapts the first convolution. Other overrides replace the entry's arguments
            before building (``freeze_backbone=True``, ``lr=1e-4``). Returned in eval mode, like any loaded model.
            A path to a file (``.ckpt``, ``.safetensors``) instead is a fine-tuning start: the model is built
            from ``overrides`` and the file's weights are copied in (``zoo.hub.finetune.apply_pretrained``); so is
            the entry of a self-supervised encoder (SimCLR) whose backbone is a ``name`` (its backbone's weights,
            a fresh head; build it with the encoder's ``backbone_args``).
        features_only: return the model as a backbone (``zoo.core.features.FeatureBackbone``, timm's
            ``features_only``): images -> a list of feature maps, with ``feature_info`` (channels, reduction).
            Image classifiers only; the weights are applied first, as for the classifier.
        out_indices: with ``features_only``, the stages whose maps it returns (``model.feature_info``): None
            every one, an int n the last n, a list those named.
        **overrides: the model's constructor arguments; ``weights=`` loads torchvision's ImageNet weights
            (``zoo.hub.imagenet``) into the models that have them.
    """
    builder, cls = _entry(name)
    if out_indices is not None and not features_only:
        raise ValueError("out_indices= chooses the maps of a features_only backbone: pass features_only=True with it")
    if features_only and not callable(getattr(cls, "feature_stages", None)):
        raise ValueError(
            f"create_model({name!r}, features_only=True): a {cls.__name__} has no stages of feature maps; features_only "
            "takes an image classifier (ResNet, VGG, ViT, ...): see zoo.list_models() and zoo.ImageClassifier"
        )
    model = _create(name, builder, cls, pretrained, overrides)
    return FeatureBackbone(model, out_indices) if features_only else model


def _create(name: str, builder: Any, cls: type, pretrained: str | os.PathLike | None, overrides: dict[str, Any]) -> ZooModule:
    weights = overrides.pop("weights", None)
    if weights is not None:
        if pretrained is not None:
            raise ValueError("pretrained= (the zoo's shipped weights) and weights= (torchvision's ImageNet weights) exclude each other")
        return build_pretrained(name, builder, weights, overrides)
    if pretrained is None:
        return builder(**overrides)
    if isinstance(pretrained, os.PathLike) or (isinstance(pretrained, str) and os.path.isfile(pretrained)):
        model = builder(**overrides)
        apply_pretrained(model, os.fspath(pretrained))
        return model
    choices = ", ".join(list_pretrained(f"{name}.*")) or "none"
    if not isinstance(pretrained, str) or not pretrained:
        raise ValueError(f"pretrained= names a dataset or a shipped entry; {name} has: {choices}")
    entry_name = pretrained if "." in pretrained else f"{name}.{pretrained}"
    if entry_name not in list_pretrained():
        raise ValueError(f"no pretrained weights {entry_name!r} for {name}; {name} has: {choices}")
    arch = pretrained_entry(entry_name).get("arch", entry_name.split(".")[0])
    if arch != name:
        # A self-supervised encoder (SimCLR) whose backbone is a `name`: a fine-tuning start, as a file would be.
        if not isinstance(getattr(load_pretrained(entry_name), "backbone", None), cls):
            raise ValueError(f"{entry_name!r} holds weights of {arch}, not {name}; {name} has: {choices}")
        model = builder(**overrides)
        apply_pretrained(model, entry_name)
        return model
    model = load_pretrained(entry_name, **overrides)
    if not isinstance(model, cls):
        raise ValueError(f"{entry_name!r} holds a {type(model).__name__}, but {name} is a {cls.__name__}")
    return model
