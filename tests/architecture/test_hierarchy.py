"""What a model inherits can be read in one place: few zoo ancestors, no mixin that is a LightningModule,
and no model whose constructor loads weights (builders apply them: zoo.hub)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import lightning as L
import pytest

import zoo

REPO = Path(__file__).resolve().parents[2]
MODEL_CLASSES = sorted({zoo.get_model_class(name) for name in zoo.list_models()}, key=lambda c: c.__name__)
MAX_ZOO_ANCESTORS = 3


def zoo_ancestors(cls: type) -> list[str]:
    return [k.__qualname__ for k in cls.__mro__[1:] if k.__module__.startswith("zoo.")]


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_at_most_three_zoo_ancestors(cls):
    assert len(zoo_ancestors(cls)) <= MAX_ZOO_ANCESTORS, zoo_ancestors(cls)


def test_image_classifiers_hold_their_image_input():
    """The image classifiers read their normalization and class names through an ImageInput they hold
    (composition), not through a base: ResNet's zoo ancestors are ImageClassifier, ClassifierModule, ZooModule."""
    assert zoo_ancestors(zoo.ResNet) == ["ImageClassifier", "ClassifierModule", "ZooModule"]
    model = zoo.create_model("resnet20", mean=[0.5], std=[0.25], class_names=[str(i) for i in range(10)], in_channels=1)
    assert isinstance(model.image_input, zoo.core.preprocessing.ImageInput)
    assert model.hparams.mean == [0.5] and model.transforms().std == [0.25] and model.class_names[3] == "3"


def test_no_mixin_is_a_lightning_module():
    """A class named a mixin is not a LightningModule; ImageInputModule, one, keeps its old name as an alias only."""
    classes = {c for cls in MODEL_CLASSES for c in cls.__mro__} | {getattr(zoo, n) for n in zoo.__all__ if isinstance(getattr(zoo, n), type)}
    assert not [c.__qualname__ for c in classes if "mixin" in c.__name__.lower() and issubclass(c, L.LightningModule)]
    assert zoo.ImageInputMixin is zoo.core.preprocessing.ImageInputModule  # the public name stays


def test_no_model_file_calls_a_loader():
    """zoo.models and zoo.core import nothing of zoo.hub (lint-imports checks it too), and no __init__ loads."""
    loaders = {"load_checkpoint", "load_pretrained", "load_trained", "apply_pretrained", "init_from_pretrained", "_finish_init"}
    for path in sorted((REPO / "zoo" / "models").rglob("*.py")) + sorted((REPO / "zoo" / "core").rglob("*.py")):
        tree = ast.parse(path.read_text())
        called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "") for n in ast.walk(tree) if isinstance(n, ast.Call)}
        imported = {m for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for m in [n.module or ""]}
        assert not called & loaders, (path.name, called & loaders)
        assert not [m for m in imported if m.startswith("zoo.hub")], path.name


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_signature_is_the_constructors(cls):
    """The metaclass that runs _after_init keeps inspect.signature(cls) the constructor's (LightningCLI's --help reads it)."""
    assert list(inspect.signature(cls).parameters) == list(inspect.signature(cls.__init__).parameters)[1:]
