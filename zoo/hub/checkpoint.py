"""The one loader of training checkpoints: ``zoo.load_checkpoint(path)``.

    >>> model = zoo.load_checkpoint("lightning_logs/version_0/checkpoints/best.ckpt")  # doctest: +SKIP
    >>> model = zoo.load_checkpoint("best.ckpt", model="lenet5")   # a checkpoint that names no class

* The file is read with ``torch.load(weights_only=True)``: tensors and primitives only, never pickled code.
* The model class is ``model=`` (a registry name, a class name such as "LeNet5", or a zoo class), else
  the class the checkpoint records (``_class_path``, written by the CLI, or ``zoo_class``). A recorded
  name is looked up only among the zoo's own model classes; no module named by a string inside the file
  is ever imported, and an unknown name is a ``ValueError`` listing the known classes.
* No other value read from the file names code either: an environment id is accepted only when gymnasium
  has it registered already (``zoo.models.rl.envs.check_env_id``), and ``train.py --ckpt_path`` checks the recorded
  class before Lightning's CLI reads it (``zoo.training.cli.checkpoint_hparams``). A refused value is a ``ValueError`` naming the file.
* The model is rebuilt from the checkpoint's hyperparameters (with ``pretrained=None``: a fine-tuned
  model's start is not read again, and need not exist any more), its weights are loaded strictly, and
  it is returned in eval mode.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

import zoo.models  # noqa: F401  (defines every family's classes, which known_model_classes lists)
from zoo._legacy_modules import LEGACY_MODULES
from zoo.core.base import ZooModule
from zoo.core.registry import get_model_class, list_models

__all__ = ["build_from_file", "known_model_classes", "load_checkpoint", "resolve_model_class"]


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def known_model_classes() -> dict[str, type[ZooModule]]:
    """The zoo's own model classes, by class name, by ``zoo.<Name>``, by full ``module.Name`` path and by the
    path of the flat layout before the move (``zoo.resnet.ResNet``, ``zoo._legacy_modules``), which old checkpoints record."""
    old_paths: dict[str, list[str]] = {}
    for old, new in LEGACY_MODULES.items():
        old_paths.setdefault(new, []).append(old)
    known: dict[str, type[ZooModule]] = {}
    for cls in [ZooModule, *_subclasses(ZooModule)]:
        if not (cls.__module__ == "zoo" or cls.__module__.startswith("zoo.")):
            continue  # a class defined outside the zoo is never chosen by a string
        modules = [cls.__module__, *old_paths.get(cls.__module__, [])]
        for key in (cls.__name__, f"zoo.{cls.__name__}", *(f"{m}.{cls.__qualname__}" for m in modules)):
            known.setdefault(key, cls)
    # A class that moved to a file of its own stays importable from its old module (``gan.DCGAN``): the paths
    # through that module, new and old, name it too.
    for module_name in {*LEGACY_MODULES.values(), *(c.__module__ for c in known.values())}:
        module = sys.modules.get(module_name)
        for attr in getattr(module, "__all__", ()):
            cls = getattr(module, attr, None)
            if isinstance(cls, type) and issubclass(cls, ZooModule) and cls.__module__ != module_name:
                for m in (module_name, *old_paths.get(module_name, [])):
                    known.setdefault(f"{m}.{attr}", cls)
    return known


def resolve_model_class(name: str | type) -> type[ZooModule]:
    """A zoo class from a registry name ("lenet5"), a class name ("LeNet5", "zoo.LeNet5",
    "zoo.lenet.LeNet5") or the class itself. Never imports anything named by ``name``."""
    if isinstance(name, type):
        if not issubclass(name, ZooModule):
            raise ValueError(f"{name.__qualname__} is not a zoo model (a subclass of zoo.ZooModule)")
        return name
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected a model class name, got {name!r}")
    if name in list_models():
        return get_model_class(name)
    known = known_model_classes()
    if name in known:
        return known[name]
    names = sorted(k for k in known if "." not in k)
    raise ValueError(
        f"{name!r} is not one of the zoo's model classes, so it is not loaded (checkpoints name their class, "
        f"and only the zoo's own classes are accepted). Known classes: {', '.join(names)}; "
        f"registry names: {', '.join(list_models())}. Pass model= with the right one."
    )


def build_from_file(cls: type[ZooModule], kwargs: dict[str, Any], source: str | os.PathLike) -> ZooModule:
    """``cls(**kwargs)`` with arguments read from the file ``source``; a refused argument (say, an environment id
    that would import a module, see ``zoo.models.rl.envs.check_env_id``) is a ``ValueError`` naming the file and the value."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{source}: its hyperparameters do not build a {cls.__name__}: {e}") from e


def _recorded_class(checkpoint: dict[str, Any]) -> str | None:
    hparams = checkpoint.get("hyper_parameters") or {}
    recorded = hparams.get("_class_path") or checkpoint.get("zoo_class")
    return str(recorded) if recorded else None


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: str | type | None = None,
    map_location: str | torch.device | None = "cpu",
) -> ZooModule:
    """The zoo model saved in a Lightning checkpoint (``.ckpt``), in eval mode.

    Args:
        path: a ``.ckpt`` written by ``train.py`` / ``lightning.Trainer``.
        model: the model's class, its class name or its registry name; default: the class the checkpoint records.
        map_location: where the tensors go (``torch.load``'s ``map_location``); the model is moved there too.

    Raises:
        ValueError: the checkpoint names no class and ``model`` is not given, or names a class that is
            not one of the zoo's (nothing is imported for it).
    """
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
    if model is None:
        model = _recorded_class(checkpoint)
        if model is None:
            raise ValueError(f"{path} does not record its model class: pass it, e.g. load_checkpoint(path, model='lenet5')")
    try:
        cls = resolve_model_class(model)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    # "_class_path", "_instantiator": the CLI's bookkeeping, not constructor arguments.
    kwargs = {k: v for k, v in hparams.items() if not k.startswith("_")}
    # A fine-tuned model records where it started; its own weights are in this file, so the source is not read.
    kwargs["pretrained"] = None
    instance = build_from_file(cls, kwargs, path)
    instance.on_load_checkpoint(checkpoint)
    instance.load_state_dict(checkpoint["state_dict"], strict=True)
    if isinstance(map_location, (str, torch.device)):
        instance.to(map_location)
    return instance.eval()
