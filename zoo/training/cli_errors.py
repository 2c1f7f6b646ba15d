"""How ``train.py`` reports configuration mistakes: one ``error: <message>`` line listing the valid choices.

jsonargparse answers an unknown ``--model`` / ``--data`` name with its whole usage and a nested "Union
subtypes" report, and a constructor's ``ValueError`` (a negative ``lr``, ``batch_size=0``, an image
size a model cannot take) with a traceback. Here:

* ``ZooArgumentParser.error`` names the unknown class and lists the zoo's model or datamodule classes
  (with the closest match), without the usage wall;
* ``constructor_error`` digs the constructor's own message out of jsonargparse's wrapping, as a
  ``ConfigError`` naming the class;
* ``check_linked_arguments`` refuses a ``--model.num_classes`` (``in_channels``, ``image_size``) that the
  datamodule's value would silently override, e.g. a 5-class checkpoint fitted on 10-class data.
"""

from __future__ import annotations

import difflib
import re
import sys
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from datamodules.base import ZooDataModule
from zoo.core.base import ZooModule
from zoo.core.registry import get_model_class, list_models

__all__ = ["ConfigError", "ZooArgumentParser", "check_linked_arguments", "choices", "constructor_error"]

#: What ``--model`` and ``--data`` choose from.
_BASES: dict[str, tuple[type, str]] = {"model": (ZooModule, "zoo"), "data": (ZooDataModule, "datamodules")}
#: Model arguments that the CLI takes from the datamodule and that must agree with it.
CHECKED_LINKS = ("num_classes", "in_channels", "image_size")


class ConfigError(ValueError):
    """A configuration the run cannot start with; the message says what is wrong and what is valid."""


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def choices(key: str) -> list[str]:
    """The class names ``--model`` (key "model") or ``--data`` (key "data") accepts: the zoo's concrete
    classes, i.e. those of its own packages that no other class extends (bases such as ``ClassifierModule``
    are left out)."""
    base, package = _BASES[key]
    own = {c for c in _subclasses(base) if c.__module__.split(".")[0] == package and not c.__name__.startswith("_")}
    # A base is a class another of the zoo's own extends; a user's subclass (say, in a test) leaves it a choice.
    return sorted(c.__name__ for c in own if not any(sub in own for sub in c.__subclasses__()))


def _resolves(value: str, key: str) -> bool:
    """Whether ``value`` (a class name or dotted class path) names a class that ``--<key>`` accepts."""
    base, _ = _BASES[key]
    if "." not in value:
        return value in choices(key)
    module, _, name = value.rpartition(".")
    # Looked up among the modules already imported, never imported here: the value comes from a parse error,
    # which can quote a config or a checkpoint, and a string read from a file never chooses code to run.
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and issubclass(cls, base)


def _given_class(message: str) -> str | None:
    """The class name or path jsonargparse reports as "Given value" (a string, or a dict's class_path)."""
    given = re.search(r"Given value: (.+?)\s*$", message)
    if given is None:
        return None
    value = given.group(1)
    if re.fullmatch(r"[A-Za-z_][\w.]*", value):
        return value
    path = re.search(r"class_path['\"]?\s*[:=]\s*['\"]([\w.]+)['\"]", value)
    return path.group(1) if path else None


def unknown_class_message(key: str, value: str) -> str:
    """``unknown model 'X'``, the valid names, the closest one, and a hint for a ``create_model`` name."""
    names = choices(key)
    what = "model" if key == "model" else "datamodule"
    short = value.rpartition(".")[2]
    message = f"unknown {what} {value!r} (--{key}). Choose one of: {', '.join(names)}"
    message += f"; or a class path such as {_BASES[key][1]}.{names[0]}."
    close = difflib.get_close_matches(short, names, n=1, cutoff=0.6) or [n for n in names if n.lower() == short.lower()]
    if key == "model":

        if short in list_models():
            cls = get_model_class(short).__name__
            return message + (
                f"\n{short!r} is a zoo.create_model() name: on the command line give its class, --model {cls}, "
                "with the variant's arguments (the recipes in configs/ show them)."
            )
    if close:
        message += f" Did you mean {close[0]}?"
    return message


def explain(message: str) -> str:
    """jsonargparse's error ``message``, with an unknown ``--model`` / ``--data`` name explained."""
    key = re.match(r'\s*Parser key "(?:\w+\.)?(model|data)"', message)
    value = _given_class(message) if key else None
    if key and value and not _resolves(value, key.group(1)):
        return unknown_class_message(key.group(1), value)
    return message


class ZooArgumentParser(LightningArgumentParser):
    """Lightning's parser whose errors are one ``error:`` line (plus a tip), unknown class names explained."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        message = explain(message)
        if not self.exit_on_error:  # jsonargparse raises instead of exiting (e.g. parsing checkpoint hparams)
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"error: {message}\ntip: `{prog} --help` lists every option\n")
        sys.exit(2)


def constructor_error(error: Exception) -> ConfigError:
    """A ``ConfigError`` with the message a model's or datamodule's constructor raised, named after the class.

    jsonargparse wraps that error in a "Does not validate against any of the Union subtypes" report whose
    first cause chain ends at the constructor's own exception.
    """
    wrapped = str(error)
    cause = error
    while isinstance(cause.__cause__, (ValueError, TypeError)):
        cause = cause.__cause__
    path = re.search(r"class_path['\"]?\s*[:=]\s*['\"]([\w.]+)['\"]", wrapped)
    name = path.group(1).rpartition(".")[2] if path else None
    message = str(cause)
    return ConfigError(f"{name}: {message}" if name and not message.startswith(name) else message)


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor defaults jsonargparse gives ``cls`` (following ``**kwargs`` into the base classes)."""
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "init_args")
    return dict(vars(parser.get_defaults().get("init_args") or {}))


def check_linked_arguments(config: Any, model: Any, datamodule: Any, ckpt_path: str | None = None) -> None:
    """Refuse a model argument set against the datamodule: the CLI links ``num_classes``, ``in_channels`` and
    ``image_size`` from the data, so a different value given on the command line, in a recipe, or taken from
    a ``--ckpt_path`` checkpoint's hyperparameters would otherwise be overridden without a word.

    Args:
        config: the parsed configuration of the subcommand (``model.init_args`` before the links applied).
        model: the instantiated model (with the linked values).
        datamodule: the instantiated datamodule.
        ckpt_path: the ``--ckpt_path`` of the run, named in the message when set.
    """
    init_args = config.get("model", {}).get("init_args") if hasattr(config, "get") else None
    if init_args is None or datamodule is None:
        return
    defaults = None
    for argument in CHECKED_LINKS:
        given = init_args.get(argument)
        actual = getattr(model, "hparams", {}).get(argument)
        if given is None or actual is None or given == actual:
            continue
        defaults = _defaults(type(model)) if defaults is None else defaults
        if defaults.get(argument) == given and not ckpt_path:
            continue  # the class default, replaced by the datamodule's value as intended
        source = f"the checkpoint {ckpt_path}" if ckpt_path else f"--model.{argument}"
        raise ConfigError(
            f"{type(model).__name__} {argument}={given} (from {source}) disagrees with {type(datamodule).__name__}, "
            f"whose data gives {argument}={actual}. The CLI sets {argument} from the datamodule: leave "
            f"--model.{argument} out, or pick data that matches"
            + (" (to fine-tune the checkpoint on this data, pass it as --model.pretrained instead: it gets a fresh head)." if ckpt_path else ".")
        )
