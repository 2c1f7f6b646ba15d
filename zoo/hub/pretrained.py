"""The zoo's shipped weights: one safetensors file per entry of the manifest, loaded with its config.

    >>> zoo.list_pretrained("resnet*")                                              # doctest: +SKIP
    ['resnet20.fashionmnist', 'resnet32.fashionmnist']
    >>> zoo.list_pretrained(cached=True)                # the entries whose file is here already  # doctest: +SKIP
    >>> model = zoo.load_pretrained("resnet20.fashionmnist")   # downloaded on first use   # doctest: +SKIP
    >>> model = zoo.create_model("resnet20", pretrained="fashionmnist", num_classes=5, in_channels=3)  # doctest: +SKIP

An entry ``<arch>.<dataset>`` is two files: ``<name>.json`` (the zoo class and its constructor arguments:
preprocessing, class names, tokenizers), which ships in the package beside the manifest, and
``<name>.safetensors`` (the state dict), which is found on this machine or downloaded into a cache
(``zoo.hub.manifest`` says where, in which order). The manifest records the SHA-256 of both; loading checks
both hashes before reading either, builds the class found among the zoo's own (``zoo.resolve_model_class``;
nothing named in a file is imported) and reads the tensors with ``safetensors`` (no pickle). A
``.safetensors`` path with its ``.json`` beside it loads the same way, without a manifest to check it against.

torchvision's ImageNet weights (``create_model("resnet18", weights="DEFAULT")``) live in ``zoo.hub.imagenet``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from zoo.core.base import ZooModule
from zoo.core.registry import list_models
from zoo.hub.checkpoint import build_from_file, load_checkpoint, resolve_model_class
from zoo.hub.download import PretrainedWeightsCorrupt, PretrainedWeightsUnavailable, sha256_file
from zoo.hub.manifest import (
    FORMAT,
    _entries,
    _unknown,
    config_file,
    is_cached,
    is_pretrained_name,
    list_pretrained,
    pretrained_entry,
    read_manifest,
    weights_dir,
    weights_file,
)

__all__ = [
    "PretrainedWeightsCorrupt",
    "PretrainedWeightsUnavailable",
    "UnknownWeightsSource",
    "is_cached",
    "is_pretrained_name",
    "list_pretrained",
    "load_pretrained",
    "load_trained",
    "pretrained_entry",
    "read_manifest",
    "save_pretrained",
    "sha256_file",
    "weights_dir",
]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")
# Arguments that change a loaded model after its weights are in, instead of before it is built.
_ADAPTERS = ("num_classes", "in_channels")


def _read_config(path: Path) -> dict[str, Any]:
    config = json.loads(path.read_text(encoding="utf-8"))
    valid = isinstance(config, dict) and config.get("format") == FORMAT
    if not valid or not isinstance(config.get("hparams"), dict) or not isinstance(config.get("zoo_class"), str):
        raise ValueError(f"{path} is not a format-{FORMAT} zoo weights config ({{'format': 1, 'zoo_class': ..., 'hparams': {{...}}}})")
    return config


def _build_and_load(config: dict[str, Any], config_path: Path, weights: Path, overrides: dict[str, Any], map_location: Any) -> ZooModule:
    """Build the config's class (overrides replacing its hparams, except the adapters), load, then adapt."""
    import safetensors.torch

    if "pretrained" in overrides:
        raise ValueError("pretrained= is not an override of a model that is being loaded from pretrained weights")
    label = config.get("name") or weights.name
    try:
        cls = resolve_model_class(config["zoo_class"])
    except ValueError as e:
        raise ValueError(f"{config_path}: {e}") from None
    adapt = {k: overrides.pop(k) for k in _ADAPTERS if k in overrides}
    hparams = {k: v for k, v in config["hparams"].items() if not k.startswith("_") and k != "pretrained"}
    model = build_from_file(cls, {**hparams, **overrides}, config_path)
    # Training progress (ZooModule.training_state: a DQN's replay buffer, counters) is not shipped; it starts afresh.
    missing, unexpected = safetensors.torch.load_model(model, weights, strict=False, device="cpu")  # on the CPU; moved below
    missing = [k for k in missing if not _is_training_state(model, k)]
    if missing or unexpected:
        raise ValueError(f"{weights} does not match {cls.__name__}: missing keys {missing[:6]}, unexpected keys {unexpected[:6]}")
    log.info("%s: loaded %s", cls.__name__, label)
    num_classes = adapt.get("num_classes")
    if num_classes is not None and num_classes != hparams.get("num_classes"):
        if not hasattr(model, "reset_classifier"):
            raise ValueError(f"{cls.__name__} has no classifier head to replace: num_classes={num_classes} cannot adapt {label}")
        old = hparams.get("num_classes")
        log.info("%s: the %s-class head of %s is replaced by a new %d-class head", cls.__name__, old, label, num_classes)
        model.reset_classifier(num_classes)
    in_channels = adapt.get("in_channels")
    if in_channels is not None and in_channels != hparams.get("in_channels"):
        if not hasattr(model, "adapt_input_channels"):
            raise ValueError(f"{cls.__name__} cannot adapt its input channels: in_channels={in_channels} does not fit {label}")
        model.adapt_input_channels(in_channels)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def load_pretrained(name_or_path: str | os.PathLike, *, map_location: str | torch.device = "cpu", **overrides: Any) -> ZooModule:
    """A shipped entry (``"resnet20.fashionmnist"``), or a ``.safetensors`` file with its ``.json`` beside it, in eval mode.

    An entry's weights file is downloaded on first use (``zoo.hub.manifest``: $ZOO_WEIGHTS_DIR, the repository's
    checkpoints/ and the cache are looked at first).

    Args:
        name_or_path: an entry name from ``list_pretrained()``, or a path to a ``.safetensors`` file.
        map_location: device the weights are loaded to and the model is moved to.
        **overrides: ``num_classes=`` (a new head) and ``in_channels=`` (the first convolution adapted) change
            the model after loading, as with ImageNet weights; any other argument replaces the recorded
            one before the model is built (e.g. ``freeze_backbone=True``, ``lr=1e-4``).

    Raises:
        KeyError: an unknown entry name (the message lists the entries).
        PretrainedWeightsUnavailable: the weights file is not on this machine and cannot be downloaded (the
            message names the URL and the folder to put the file in).
        PretrainedWeightsCorrupt: a file does not match the SHA-256 the manifest records; nothing was read (a
            download or a cached file that differs is deleted).
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and is_pretrained_name(name_or_path):
        entry = pretrained_entry(name_or_path)
        config_path = config_file(entry)  # both hashes checked before either file is parsed
        weights = weights_file(entry)
        config = _read_config(config_path)
        if config.get("zoo_class") != entry.get("zoo_class", config.get("zoo_class")):
            raise PretrainedWeightsCorrupt(f"{config_path} names {config.get('zoo_class')}, the manifest {entry['zoo_class']}")
    elif path.suffix == ".safetensors":
        weights, config_path = path, path.with_suffix(".json")
        for p in (weights, config_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} does not exist (a .safetensors file loads with its .json config beside it)")
        config = _read_config(config_path)
    elif path.is_file():
        raise ValueError(f"{path} is not a .safetensors file; training checkpoints (.ckpt) load with zoo.load_checkpoint")
    else:
        raise _unknown(str(name_or_path), _entries())
    return _build_and_load(config, config_path, weights, dict(overrides), map_location)


class UnknownWeightsSource(FileNotFoundError, KeyError):
    """A ``pretrained=`` / checkpoint argument that is neither an existing file nor a shipped entry's name.

    A ``FileNotFoundError`` (for a path) and a ``KeyError`` (for a name), so callers catch it either way."""

    def __str__(self) -> str:  # a KeyError would print its message quoted
        return str(self.args[0]) if self.args else ""


def load_trained(source: Any, *, model: str | type | None = None, map_location: str | torch.device = "cpu") -> Any:
    """The one resolver of "entry name or path": a model from a ``.ckpt`` path, a ``.safetensors`` path or a
    shipped entry name; a model passes through.

    Everything that takes weights by name or path goes through it: fine-tuning's ``pretrained=``
    (``zoo.hub.finetune``), ``zoo.predict``, ``zoo.generate``, ``zoo.translate``, ``zoo.play``, the GAN
    judge, feature evaluation and the tools. An existing file is a file (a ``.safetensors`` file with its
    ``.json`` beside it, anything else a training checkpoint read weights-only); else a manifest name is an entry.

    Args:
        source: a model, a checkpoint path, a ``.safetensors`` path or an entry name.
        model: the class (or its name) of a ``.ckpt`` that does not record it; for an entry, the class it must hold.
        map_location: device the weights are loaded to.

    Raises:
        UnknownWeightsSource: ``source`` is neither (the message lists the entries).
    """
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = Path(source)
    if path.is_file() and path.suffix != ".safetensors":
        return load_checkpoint(path, model=model, map_location=map_location)
    if path.is_file() or is_pretrained_name(source):
        loaded = load_pretrained(source, map_location=map_location)
        if model is not None and not isinstance(loaded, resolve_model_class(model)):
            raise ValueError(f"{source} holds a {type(loaded).__name__}, not a {resolve_model_class(model).__name__}")
        return loaded
    entries = _entries()
    close = difflib.get_close_matches(os.fspath(source), entries, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownWeightsSource(
        f"{source} is neither a checkpoint file nor a pretrained entry; entries: {', '.join(sorted(entries)) or 'none'}.{hint}"
    )


# -- saving -----------------------------------------------------------------------------------------------
def _primitive(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_primitive(v, key) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _primitive(v, key) for k, v in value.items()}
    raise ValueError(f"hyperparameter {key!r} is a {type(value).__name__}; shipped configs hold primitives only")


def clean_hparams(model: ZooModule) -> dict[str, Any]:
    """The model's constructor arguments as JSON primitives: ``_``-keys, ``pretrained`` and ``compile`` (how the
    weights were trained, not what they are) dropped."""
    return {k: _primitive(v, k) for k, v in dict(model.hparams).items() if not k.startswith("_") and k not in ("pretrained", "compile")}


def _is_training_state(model: ZooModule, key: str) -> bool:
    """Whether state-dict ``key`` is training progress (``ZooModule.training_state``: names, or prefixes ending in ".")."""
    return any(key == n or (n.endswith(".") and key.startswith(n)) for n in getattr(model, "training_state", ()))


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would follow the file into place
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_pretrained(model: ZooModule, directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write ``<name>.safetensors`` and ``<name>.json`` into ``directory``, each atomically (temp file, then rename).

    Args:
        model: a zoo model; its class must be one of the zoo's and its hparams rebuild it.
        directory: where to write (created if absent).
        name: ``<arch>.<dataset>``, arch a registry name (``"resnet20.fashionmnist"``).

    Returns:
        (weights path, config path).
    """
    import safetensors.torch

    if not _NAME.fullmatch(name):
        raise ValueError(f"an entry name is '<arch>.<dataset>' in lower-case letters, digits and '_', got {name!r}")
    arch = name.split(".")[0]
    if arch not in list_models():
        raise ValueError(f"{name!r}: {arch!r} is not a registered model; registry names: {', '.join(list_models())}")
    cls = type(model)
    if resolve_model_class(cls.__name__) is not cls:
        raise ValueError(f"{cls.__qualname__} is not a zoo model class that the loader can find by its name")
    hparams = clean_hparams(model)
    rebuilt = {k: tuple(v.shape) for k, v in cls(**hparams).state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if rebuilt != actual:
        diff = sorted(set(rebuilt.items()) ^ set(actual.items()))[:6]
        raise ValueError(f"{cls.__name__}(**hparams) does not rebuild this model's state dict (differs at {diff}); not saved")
    config = {"format": FORMAT, "name": name, "arch": arch, "zoo_class": cls.__name__, "hparams": hparams}
    text = json.dumps(config, indent=2, allow_nan=False) + "\n"

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, config_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    # Weights only: training progress (a replay buffer, counters) resumes runs from .ckpt files and is not shipped.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not _is_training_state(model, k)}
    _write_atomic(weights, lambda tmp: safetensors.torch.save_file(state, tmp, metadata={"zoo_name": name}))
    _write_atomic(config_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    log.info("%s: wrote %s and %s", name, weights, config_path)
    return weights, config_path
