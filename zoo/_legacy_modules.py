"""Old module paths of the flat ``zoo/`` layout, kept importable: ``import zoo.resnet`` gives ``zoo.models.vision.resnet``.

Checkpoints record the module of their class (``_class_path: zoo.resnet.ResNet``), recipes name classes by
path (``zoo.attacks.AdversarialTraining``), and user code imports modules. ``LEGACY_MODULES`` is the one
table of those paths; ``LegacyModuleFinder`` (installed by ``zoo/__init__.py``) answers an import of a name
in the table, and only of such a name, with the module it moved to: the same module object, imported on
first use, so ``zoo.resnet.ResNet is zoo.models.vision.resnet.ResNet``.

One old module shares its name with a new package: ``zoo.evaluation`` (the shipped entries' metrics) is now
the package of every evaluation, whose ``__getattr__`` hands out the old module's names from
``zoo.evaluation.shipped_metrics`` (``LEGACY_EVALUATION_NAMES``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["LEGACY_MODULES", "LegacyModuleFinder", "install"]

#: old module path -> the module that holds its code now
LEGACY_MODULES: dict[str, str] = {
    # what every model shares
    "zoo.base": "zoo.core.base",
    "zoo.image": "zoo.core.image",
    "zoo.preprocessing": "zoo.core.preprocessing",
    "zoo.layers": "zoo.core.layers",
    "zoo.tokenizer": "zoo.core.tokenizer",
    "zoo.registry": "zoo.core.registry",
    # the model families
    **{f"zoo.{m}": f"zoo.models.vision.{m}" for m in (
        "mlp", "lenet", "cnn", "alexnet", "vgg", "resnet", "resnet9", "wide_resnet", "densenet", "googlenet", "vit")},
    **{f"zoo.{m}": f"zoo.models.sequence.{m}" for m in ("rnn", "forecaster", "seq2seq", "transformer", "decoding", "bert")},
    "zoo.autoencoder": "zoo.models.generative.autoencoder",
    "zoo.vae": "zoo.models.generative.vae",
    "zoo.gan": "zoo.models.generative.gan",
    "zoo.generative": "zoo.models.generative.base",
    "zoo.simclr": "zoo.models.selfsupervised.simclr",
    "zoo.dqn": "zoo.models.rl.dqn",
    "zoo.replay": "zoo.models.rl.replay",
    "zoo.envs": "zoo.models.rl.envs",
    "zoo.linear": "zoo.models.regression.linear",
    # making and loading models
    "zoo.checkpoint": "zoo.hub.checkpoint",
    "zoo.pretrained": "zoo.hub.pretrained",
    "zoo.imagenet": "zoo.hub.imagenet",
    "zoo.finetune": "zoo.hub.finetune",
    # training
    "zoo.cli": "zoo.training.cli",
    "zoo.cli_errors": "zoo.training.cli_errors",
    "zoo.callbacks": "zoo.training.epoch_progress_bar",
    "zoo.resume": "zoo.training.resume",
    "zoo.guards": "zoo.training.nonfinite_guard",
    "zoo.checkpoint_io": "zoo.training.atomic_checkpoint_io",
    # serving, evaluation, figures
    "zoo.inference": "zoo.serving.predict",
    "zoo.deploy": "zoo.serving.export",
    "zoo.feature_eval": "zoo.evaluation.feature_eval",
    "zoo.gan_metrics": "zoo.evaluation.gan_metrics",
    "zoo.attacks": "zoo.evaluation.attacks",
    "zoo.figures": "zoo.viz.figures",
    "zoo.plots": "zoo.viz.plots",
    "zoo.progress": "zoo.viz.progress",
    "zoo.classifier_figures": "zoo.viz.classifier_figures",
    "zoo.reduced": "zoo.bench.reduced_builds",
}  # fmt: skip


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module it moved to: the very same module object, not a copy."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # importlib stamped the alias's spec on the module; the module keeps its own (reload, pickling, inspect).
        module.__spec__ = self._spec

    def get_code(self, fullname: str):
        """The moved module's code, for ``python -m zoo.feature_eval`` (runpy runs it as ``__main__``)."""
        spec = importlib.util.find_spec(self.target)
        return spec.loader.get_code(self.target)


class LegacyModuleFinder(importlib.abc.MetaPathFinder):
    """A finder that knows the names in ``LEGACY_MODULES`` and nothing else (every other name: None)."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        new = LEGACY_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put one ``LegacyModuleFinder`` first on ``sys.meta_path`` (again: no second one)."""
    if not any(isinstance(f, LegacyModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LegacyModuleFinder())
