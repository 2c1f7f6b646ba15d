"""An explicit registry of model builders: names in, configured LightningModules out.

Models register themselves here (``@register_model("resnet20")``), so it lives with the bases; building a
registered model with weights is ``zoo.hub.create_model``.

A builder is a model class or a function returning one; variants (``dnn``, later ``resnet20``) are
functions that fill in the class's arguments. Registering a name twice is an error, never a silent
override.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["get_builder", "get_model_class", "list_models", "register_model", "registered_name"]

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


def get_builder(name: str) -> Callable[..., Any]:
    """The builder registered as ``name``: ``get_builder("resnet20")(num_classes=5)`` builds an untrained model
    (what ``zoo.create_model`` does without weights; models that hold another model, SimCLR, use this)."""
    return _entry(name)[0]


def get_model_class(name: str) -> type:
    """The class that ``create_model(name)`` returns, e.g. for ``zoo.load_checkpoint(path, model=...)``."""
    return _entry(name)[1]


def registered_name(cls: type) -> str | None:
    """The registry name whose builder is ``cls`` itself, else the first name that builds a ``cls``; None if none does."""
    names = [n for n, (builder, built) in sorted(_REGISTRY.items()) if built is cls]
    exact = [n for n in names if _REGISTRY[n][0] is cls]
    return (exact or names or [None])[0]
