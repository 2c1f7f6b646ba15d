"""torch.hub entry points: one per registered zoo model, ``pretrained=`` a shipped entry.

    >>> torch.hub.list("<owner>/<repo>")                                               # doctest: +SKIP
    >>> model = torch.hub.load("<owner>/<repo>", "resnet20", pretrained="fashionmnist")  # doctest: +SKIP
    >>> model = torch.hub.load("/path/to/clone", "lenet5", source="local", num_classes=10)  # doctest: +SKIP

Each entry point is ``zoo.create_model(name, pretrained=pretrained, **kwargs)``; ``zoo.list_pretrained()``
lists the shipped weights. ``zoo`` is imported from the repository this file lives in, and the weights files
are read from its ``checkpoints/`` (else the download cache, else downloaded: ``zoo.hub.manifest``).
"""

import sys as _sys
from pathlib import Path as _Path

dependencies = ["torch", "torchvision", "lightning", "safetensors"]

_ROOT = str(_Path(__file__).resolve().parent)
if _ROOT not in _sys.path:  # torch.hub puts the repository first on sys.path; a plain import of this file may not
    _sys.path.insert(0, _ROOT)

import zoo as _zoo  # noqa: E402

if not _Path(_zoo.__file__).resolve().is_relative_to(_ROOT):
    import warnings as _warnings

    _warnings.warn(f"hubconf.py in {_ROOT} uses the zoo already imported from {_zoo.__file__}", stacklevel=2)


def _entry_point(name: str):
    cls = _zoo.get_model_class(name)

    def entry_point(pretrained=None, **kwargs):
        return _zoo.create_model(name, pretrained=pretrained, **kwargs)

    entry_point.__name__ = entry_point.__qualname__ = name
    entry_point.__doc__ = (
        f"zoo.{cls.__name__} as registered under {name!r}: ``zoo.create_model({name!r}, pretrained=pretrained, **kwargs)``.\n\n"
        f"Args:\n"
        f"    pretrained: shipped weights, a dataset (\"fashionmnist\" means \"{name}.fashionmnist\") or an entry name;\n"
        f"        None builds the model untrained. Entries: ``zoo.list_pretrained({name + '.*'!r})``.\n"
        f"    **kwargs: the model's arguments (see ``help(zoo.{cls.__name__})``); with pretrained weights,\n"
        f"        num_classes= replaces the head and in_channels= adapts the first convolution.\n"
    )
    return entry_point


for _name in _zoo.list_models():
    globals()[_name] = _entry_point(_name)
del _name
