"""torchvision's published ImageNet weights for the zoo's AlexNet, VGG, ResNet, GoogLeNet and DenseNet, and fine-tuning adapters.

    >>> model = zoo.create_model("vgg16", weights="IMAGENET1K_V1")                 # doctest: +SKIP
    >>> model = zoo.create_model("resnet18", weights="DEFAULT", num_classes=10,    # doctest: +SKIP
    ...                          in_channels=1, freeze_backbone=True)

The file is downloaded once (progress bar) into torch.hub's cache, ``<torch.hub.get_dir()>/checkpoints``;
offline, a file already there is used, and without it ``PretrainedWeightsUnavailable`` says which file
to put where. Every load, not only the download, checks the file's SHA-256 against the prefix in
torchvision's file name (``resnet18-f37072fd.pth``) and then reads it with ``torch.load(weights_only=True)``,
so a file planted or damaged in the cache is refused (``PretrainedWeightsCorrupt``) and never unpickled.

What the prefix check protects, and what it does not: torchvision's names carry the first 8 hex digits of
the SHA-256 (32 bits). That catches a damaged or truncated download and a file swapped by mistake, but
not a determined attacker with write access to the cache: a file made to share those 32 bits takes about
2^32 attempts, which is within reach. What stops code from running is the second line of defence,
``torch.load(weights_only=True)``: whatever the file holds, it is read as tensors and primitives only, and
a pickle that names code is refused. The zoo's own weights (``zoo.load_pretrained``) are checked against
the full SHA-256 that the manifest records.
The zoo's modules keep torchvision's names except the classifier (``head``), so the key mapping is the head's,
plus two fixes (``_STATE_FIXES``): GoogLeNet's auxiliary heads are dropped and DenseNet's old key names renamed.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor

from zoo.core.image import ImageClassifier, ImagePreprocessing
from zoo.hub.download import PretrainedWeightsCorrupt, PretrainedWeightsUnavailable, sha256_file

__all__ = [
    "ImageNetWeights",
    "PretrainedWeightsCorrupt",
    "PretrainedWeightsUnavailable",
    "build_pretrained",
    "get_weights",
    "imagenet_weights_for",
    "sha256_file",
]

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
    "googlenet": ("GoogLeNet_Weights", _HEAD_FC),
    "densenet121": ("DenseNet121_Weights", {"classifier.": "head."}),
}


def _drop_aux_heads(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """GoogLeNet's file holds the auxiliary classifiers (aux1, aux2) used only in training: the zoo's model has none."""
    return {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}


# DenseNet's file predates module names without dots: "denselayer1.norm.1.weight" is now "denselayer1.norm1.weight".
_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _rename_old_densenet_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision's own renaming (``densenet._load_state_dict``), applied to the zoo's copy of the file."""
    out = {}
    for key, value in state.items():
        match = _DENSENET_OLD_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


# zoo name -> a fix applied to torchvision's file before the prefix mapping
_STATE_FIXES: dict[str, Callable[[dict[str, Tensor]], dict[str, Tensor]]] = {
    "googlenet": _drop_aux_heads,
    "densenet121": _rename_old_densenet_keys,
}


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

    @property
    def hash_prefix(self) -> str:
        """The leading hex digits of the file's SHA-256, as torchvision writes them in its name."""
        match = torch.hub.HASH_REGEX.search(self.filename)
        if not match or len(match.group(1)) < 8:
            raise PretrainedWeightsCorrupt(f"{self.filename} carries no SHA-256 prefix in its name; refusing to load it unchecked")
        return match.group(1)

    def download(self, progress: bool = True) -> str:
        """Fetch the file into torch.hub's cache (a temporary file, moved into place once its hash matched)."""
        os.makedirs(os.path.dirname(self.cache_path), exist_ok=True)
        try:
            torch.hub.download_url_to_file(self.url, self.cache_path, self.hash_prefix, progress=progress)
        except (URLError, OSError) as e:  # offline, DNS failure, HTTP error
            raise PretrainedWeightsUnavailable(
                f"could not download {self.name} ({self.url}): {getattr(e, 'reason', e)}.\n"
                f"Download that file elsewhere and put it at {self.cache_path}\n"
                f"  (torch.hub's cache: $TORCH_HOME/hub/checkpoints, see torch.hub.get_dir()); it is then used offline."
            ) from None
        except RuntimeError as e:  # torch.hub: "invalid hash value" (the temporary file is removed)
            raise PretrainedWeightsCorrupt(f"the download of {self.url} is corrupt: {e}") from None
        return self.cache_path

    def verify(self, path: str) -> None:
        """Raise ``PretrainedWeightsCorrupt`` unless the SHA-256 of ``path`` starts with the name's prefix."""
        digest = sha256_file(path)
        if not digest.startswith(self.hash_prefix):
            raise PretrainedWeightsCorrupt(
                f"{path} is not torchvision's {self.name}: its SHA-256 starts with {digest[: len(self.hash_prefix)]}, "
                f"its name says {self.hash_prefix}. The file is damaged or was replaced, and is not loaded.\n"
                f"Delete it so that it is downloaded again, or put the original {self.url} there."
            )

    def get_state_dict(self, progress: bool = True) -> dict[str, Tensor]:
        """torchvision's state dict with its keys renamed to the zoo module's; downloads on first use.

        The file's hash is checked on every call, then it is read with ``weights_only=True``.
        """
        path = self.cache_path if os.path.isfile(self.cache_path) else self.download(progress)
        self.verify(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # the hash matched, yet the file holds more than tensors
            raise PretrainedWeightsCorrupt(f"{path} is not a plain weights file; refusing to unpickle it: {e}") from None
        state = _STATE_FIXES.get(self.arch, lambda s: s)(state)
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


# Arguments torchvision's weights need besides the architecture's defaults: GoogLeNet's ported weights read
# inputs rescaled per channel as the paper's model did (torchvision sets transform_input=True for them).
_WITH_WEIGHTS: dict[str, dict[str, Any]] = {"googlenet": {"transform_input": True}}


def build_pretrained(arch: str, builder: Callable[..., ImageClassifier], weights: str, overrides: dict[str, Any]) -> ImageClassifier:
    """``builder(**overrides)`` with torchvision's ``weights`` loaded, then head and first convolution adapted.

    The model is built as trained (1000 classes, 3 channels), loaded, and then ``num_classes=`` replaces
    the head (the ImageNet head's weights are dropped, and the log says so) and ``in_channels=`` adapts
    the first convolution (see ``ImageClassifier.adapt_input_channels``).
    """
    spec = get_weights(arch, weights)
    kwargs = {**_WITH_WEIGHTS.get(arch, {}), **overrides}
    num_classes = kwargs.pop("num_classes", 1000)
    in_channels = kwargs.pop("in_channels", 3)
    model = builder(**{**kwargs, "num_classes": 1000, "in_channels": 3})
    model.load_state_dict(spec.get_state_dict())
    preset = spec.transforms()
    model.record_preprocessing(preset.mean, preset.std, preset.class_names)
    model.hparams.resize_size = preset.resize_size  # torchvision's recipe: shorter side 256, center crop 224
    log.info("%s: loaded %s", arch, spec.name)
    if num_classes != 1000:
        log.info("%s: the 1000-class ImageNet head of %s is dropped; a new %d-class head is initialised", arch, spec.name, num_classes)
        model.reset_classifier(num_classes)
    if in_channels != 3:
        model.adapt_input_channels(in_channels)
    return model
