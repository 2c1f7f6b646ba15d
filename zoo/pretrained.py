"""torchvision's published ImageNet weights for the zoo's AlexNet, VGG and ResNet, and fine-tuning adapters.

    >>> model = zoo.create_model("vgg16", weights="IMAGENET1K_V1")                 # doctest: +SKIP
    >>> model = zoo.create_model("resnet18", weights="DEFAULT", num_classes=10,    # doctest: +SKIP
    ...                          in_channels=1, freeze_backbone=True)

torchvision downloads the file once (progress bar, SHA-256 prefix check) into torch.hub's cache,
``<torch.hub.get_dir()>/checkpoints``; offline, a file already there is used, and without it
``PretrainedWeightsUnavailable`` says which file to put where. The zoo's modules keep torchvision's
names except the classifier (``head``), so the only key mapping is the head's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor

from zoo.image import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier, ImagePreprocessing

__all__ = ["ImageNetWeights", "PretrainedWeightsUnavailable", "build_pretrained", "get_weights", "imagenet_weights_for"]

log = logging.getLogger(__name__)

# zoo name -> (torchvision weights enum, torchvision key prefix -> zoo key prefix)
_HEAD_FC = {"fc.": "head."}
_HEAD_CLASSIFIER6 = {"classifier.6.": "head."}
_ARCHS: dict[str, tuple[str, dict[str, str]]] = {
    "alexnet": ("AlexNet_Weights", _HEAD_CLASSIFIER6),
    **{f"vgg{d}{bn}": (f"VGG{d}{bn.upper()}_Weights", _HEAD_CLASSIFIER6) for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    "resnet18": ("ResNet18_Weights", _HEAD_FC),
    "resnet34": ("ResNet34_Weights", _HEAD_FC),
    "resnet50": ("ResNet50_Weights", _HEAD_FC),
}


class PretrainedWeightsUnavailable(RuntimeError):
    """The weights file is neither in torch.hub's cache nor downloadable; the message says where to put it."""


class ImageNetWeights:
    """One of torchvision's weight sets for a zoo architecture: its file, class names and preprocessing.

    Args:
        arch: zoo model name, e.g. "vgg16".
        tv_weights: torchvision's weights enum member, e.g. ``VGG16_Weights.IMAGENET1K_V1``.
    """

    def __init__(self, arch: str, tv_weights: torchvision.models.WeightsEnum) -> None:
        self.arch = arch
        self.tv_weights = tv_weights
        self.name = f"{type(tv_weights).__name__}.{tv_weights.name}"
        self.url = tv_weights.url
        self.meta = tv_weights.meta

    def __repr__(self) -> str:
        return f"ImageNetWeights({self.arch!r}, {self.name})"

    @property
    def categories(self) -> list[str]:
        """The 1000 ImageNet class names, in label order (torchvision's metadata: no download)."""
        return list(self.meta["categories"])

    @property
    def filename(self) -> str:
        return os.path.basename(urlparse(self.url).path)

    @property
    def cache_path(self) -> str:
        """Where torch.hub keeps (and looks for) the file."""
        return os.path.join(torch.hub.get_dir(), "checkpoints", self.filename)

    def transforms(self) -> ImagePreprocessing:
        """Resize the shorter side to 256, center-crop 224, ImageNet mean and std (torchvision's recipe)."""
        tv = self.tv_weights.transforms()
        return ImagePreprocessing(
            crop_size=tv.crop_size[0],
            resize_size=tv.resize_size[0],
            mean=tv.mean,
            std=tv.std,
            channels=3,
            class_names=self.categories,
        )

    def get_state_dict(self, progress: bool = True) -> dict[str, Tensor]:
        """torchvision's state dict with its keys renamed to the zoo module's; downloads on first use."""
        try:
            state = self.tv_weights.get_state_dict(progress=progress, check_hash=True)
        except (URLError, OSError) as e:  # offline, DNS failure, HTTP error
            raise PretrainedWeightsUnavailable(
                f"could not download {self.name} ({self.url}): {getattr(e, 'reason', e)}.\n"
                f"Download that file elsewhere and put it at {self.cache_path}\n"
                f"  (torch.hub's cache: $TORCH_HOME/hub/checkpoints, see torch.hub.get_dir()); it is then used offline."
            ) from None
        return remap_keys(state, _ARCHS[self.arch][1])


def remap_keys(state: dict[str, Tensor], prefixes: dict[str, str]) -> dict[str, Tensor]:
    """Rename keys starting with a prefix of ``prefixes`` (torchvision's) to the mapped prefix (the zoo's)."""
    out = {}
    for key, value in state.items():
        for old, new in prefixes.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def get_weights(arch: str, weights: str = "DEFAULT") -> ImageNetWeights:
    """``get_weights("vgg16", "IMAGENET1K_V1")``: torchvision's weights for a zoo model, without downloading.

    ``weights`` is a member of torchvision's enum ("IMAGENET1K_V1", "IMAGENET1K_V2", "DEFAULT") or its
    full name ("VGG16_Weights.IMAGENET1K_V1").
    """
    if arch not in _ARCHS:
        raise ValueError(f"no ImageNet weights for {arch!r}; models with weights: {', '.join(_ARCHS)}")
    enum_name = _ARCHS[arch][0]
    member = weights.split(".", 1)[1] if weights.startswith(enum_name + ".") else weights
    enum = torchvision.models.get_model_weights(arch)
    try:
        return ImageNetWeights(arch, enum[member] if member != "DEFAULT" else enum.DEFAULT)
    except KeyError:
        raise ValueError(f"{arch} has no weights {weights!r}; available: {', '.join(enum.__members__)}") from None


def imagenet_weights_for(arch: str) -> list[str]:
    """Names of the weight sets torchvision publishes for ``arch`` (e.g. ["IMAGENET1K_V1", "IMAGENET1K_V2"])."""
    return list(torchvision.models.get_model_weights(arch).__members__) if arch in _ARCHS else []


def build_pretrained(
    arch: str,
    cls: Callable[..., ImageClassifier],
    defaults: dict[str, Any],
    weights: str | None,
    overrides: dict[str, Any],
) -> ImageClassifier:
    """Build ``cls(**defaults, **overrides)``; with ``weights``, load them and then adapt head and first conv.

    With weights the model is built as trained (1000 classes, 3 channels), loaded, and then
    ``num_classes=`` replaces the head (the ImageNet head's weights are dropped, and the log says so)
    and ``in_channels=`` adapts the first convolution (see ``ImageClassifier.adapt_input_channels``).
    """
    if weights is None:
        return cls(**{**defaults, **overrides})
    spec = get_weights(arch, weights)
    kwargs = {**defaults, **overrides}
    num_classes = kwargs.pop("num_classes", 1000)
    in_channels = kwargs.pop("in_channels", 3)
    model = cls(**{**kwargs, "num_classes": 1000, "in_channels": 3})
    model.load_state_dict(spec.get_state_dict())
    model.preprocessing = spec.transforms()
    log.info("%s: loaded %s", arch, spec.name)
    if num_classes != 1000:
        log.info("%s: the 1000-class ImageNet head of %s is dropped; a new %d-class head is initialised", arch, spec.name, num_classes)
        model.reset_classifier(num_classes)
    if in_channels != 3:
        model.adapt_input_channels(in_channels)
    return model
