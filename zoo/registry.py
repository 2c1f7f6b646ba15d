"""An explicit registry of model builders: names in, configured LightningModules out.

A builder is a model class or a function returning one; variants (``dnn``, later ``resnet20``) are
functions that fill in the class's arguments. Registering a name twice is an error, never a silent
override.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
import typing
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["create_model", "get_model_class", "list_models", "register_model"]

_T = TypeVar("_T", bound=Callable[..., Any])

# name -> (builder, class it returns)
_REGISTRY: dict[str, tuple[Callable[..., Any], type]] = {}


def register_model(name: str) -> Callable[[_T], _T]:
    """Decorator registering a model class, or a builder function annotated with the class it returns.

    Example:
        >>> @register_model("lenet5")          # doctest: +SKIP
        ... class LeNet5(ClassifierModule): ...
        >>> @register_model("dnn")             # doctest: +SKIP
        ... def dnn(**kwargs) -> MLP:
        ...     return MLP(**{"hidden_sizes": [256, 128, 64], "dropout": 0.2, **kwargs})
    """
    if not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise ValueError(f"model names are lower-case letters, digits and '_', got {name!r}")

    def decorator(builder: _T) -> _T:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered ({_REGISTRY[name][0].__qualname__})")
        if inspect.isclass(builder):
            cls = builder
        else:
            cls = typing.get_type_hints(builder).get("return")
            if not inspect.isclass(cls):
                raise TypeError(f"builder {builder.__qualname__} for {name!r} needs a return annotation naming its class")
        _REGISTRY[name] = (builder, cls)
        return builder

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern`` (``"resnet*"``)."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _entry(name: str) -> tuple[Callable[..., Any], type]:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known models: {', '.join(list_models())}") from None


def create_model(name: str, pretrained: str | os.PathLike | None = None, **overrides: Any):
    """Build the registered model ``name``; ``overrides`` replace its default arguments.

    Args:
        name: a registry name, see ``list_models()``.
        pretrained: shipped weights (``zoo.list_pretrained()``): a dataset (``"fashionmnist"`` means the
            entry ``f"{name}.fashionmnist"``) or a full entry name. The model is built as it was trained and
            loaded; then ``num_classes=`` different from the entry's replaces the head (the log says so) and
            ``in_channels=`` adapts the first convolution. Other overrides replace the entry's arguments
            before building (``freeze_backbone=True``, ``lr=1e-4``). Returned in eval mode, like any loaded model.
            A path to a file (``.ckpt``, ``.safetensors``) instead goes to the model's own ``pretrained=``
            argument: the model is built from ``overrides`` and the file's weights are copied in (``zoo.finetune``).
        **overrides: the model's constructor arguments (``weights=`` for torchvision's ImageNet weights).

    Example:
        >>> model = create_model("lenet5", num_classes=10, in_channels=3, image_size=32)  # doctest: +SKIP
        >>> model = create_model("resnet20", pretrained="fashionmnist", num_classes=5)    # doctest: +SKIP
    """
    builder, cls = _entry(name)
    if pretrained is None:
        return builder(**overrides)
    if isinstance(pretrained, os.PathLike) or (isinstance(pretrained, str) and os.path.isfile(pretrained)):
        return builder(pretrained=os.fspath(pretrained), **overrides)
    from zoo.pretrained import list_pretrained, load_pretrained, pretrained_entry

    if overrides.get("weights") is not None:
        raise ValueError("pretrained= (the zoo's shipped weights) and weights= (torchvision's ImageNet weights) exclude each other")
    overrides.pop("weights", None)
    choices = ", ".join(list_pretrained(f"{name}.*")) or "none"
    if not isinstance(pretrained, str) or not pretrained:
        raise ValueError(f"pretrained= names a dataset or a shipped entry; {name} has: {choices}")
    entry_name = pretrained if "." in pretrained else f"{name}.{pretrained}"
    if entry_name not in list_pretrained():
        raise ValueError(f"no pretrained weights {entry_name!r} for {name}; {name} has: {choices}")
    arch = pretrained_entry(entry_name).get("arch", entry_name.split(".")[0])
    if arch != name:
        raise ValueError(f"{entry_name!r} holds weights of {arch}, not {name}; {name} has: {choices}")
    model = load_pretrained(entry_name, **overrides)
    if not isinstance(model, cls):
        raise ValueError(f"{entry_name!r} holds a {type(model).__name__}, but {name} is a {cls.__name__}")
    return model


def get_model_class(name: str) -> type:
    """The class that ``create_model(name)`` returns, e.g. for ``zoo.load_checkpoint(path, model=...)``."""
    return _entry(name)[1]
