"""The module paths of the flat ``zoo/`` layout (before the packages by role) still import, and what names them
still works: configs' ``class_path``, the console scripts, hubconf, old checkpoints on the CLI, shipped entries.

The alias table is ``zoo._legacy_modules.LEGACY_MODULES``; these tests hold it to the old layout's file list.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo._legacy_modules import LEGACY_MODULES, LegacyModuleFinder
from zoo.hub.checkpoint import resolve_model_class

REPO = Path(__file__).resolve().parents[2]
LEGACY = REPO / "tests" / "fixtures" / "legacy"

#: Every module of zoo/ at commit 207e37c, the flat layout (zoo/bench and zoo/tools were packages then too).
OLD_MODULES = """
alexnet attacks autoencoder base bert callbacks checkpoint checkpoint_io classifier_figures cli cli_errors cnn
decoding densenet deploy dqn envs evaluation feature_eval figures finetune forecaster gan gan_metrics generative
googlenet guards image imagenet inference layers lenet linear mlp plots preprocessing pretrained progress reduced
registry replay resnet resnet9 resume rnn seq2seq simclr tokenizer transformer vae vgg vit wide_resnet
""".split()


@pytest.mark.parametrize("old", OLD_MODULES)
def test_every_old_module_path_imports_as_the_module_it_moved_to(old):
    module = importlib.import_module(f"zoo.{old}")
    if old == "evaluation":  # now the package of every evaluation; it serves the old module's names
        assert module.evaluate is importlib.import_module("zoo.evaluation.shipped_metrics").evaluate
        return
    new = importlib.import_module(LEGACY_MODULES[f"zoo.{old}"])
    assert module is new and sys.modules[f"zoo.{old}"] is new
    assert module.__name__ == LEGACY_MODULES[f"zoo.{old}"] and module.__spec__.name == module.__name__
    assert getattr(zoo, old) is new  # zoo.<old> as an attribute, as ``import zoo`` gave it before


def test_old_names_resolve_to_todays_objects():
    from zoo.resnet import ResNet  # noqa: PLC0415  (the old import, on purpose)
    from zoo.registry import list_models  # noqa: PLC0415

    assert ResNet is zoo.ResNet and list_models is zoo.list_models
    assert importlib.import_module("zoo.attacks").AdversarialTraining is zoo.attacks.AdversarialTraining


def test_an_old_module_path_runs_with_python_m():
    """``python -m zoo.feature_eval`` (the README's command) runs zoo.evaluation.feature_eval."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "zoo.feature_eval", "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Linear-probe and k-NN accuracy" in proc.stdout


def test_the_finder_answers_only_names_in_the_table():
    finder = LegacyModuleFinder()
    assert finder.find_spec("zoo.no_such_module") is None and finder.find_spec("torch") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("zoo.no_such_module")
    assert sum(isinstance(f, LegacyModuleFinder) for f in sys.meta_path) == 1


def test_known_class_lookup_accepts_old_module_paths():
    assert resolve_model_class("zoo.resnet.ResNet") is zoo.ResNet
    assert resolve_model_class("zoo.gan.DCGAN") is zoo.DCGAN
    assert resolve_model_class("zoo.models.vision.resnet.ResNet") is zoo.ResNet
    with pytest.raises(ValueError, match="not one of the zoo's model classes"):
        resolve_model_class("zoo.nowhere.ResNet")


def _class_paths(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["class_path"]] if isinstance(node.get("class_path"), str) else []
        return found + [p for v in node.values() for p in _class_paths(v)]
    if isinstance(node, list):
        return [p for v in node for p in _class_paths(v)]
    return []


CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_recipe_class_path_resolves(config):
    """``class_path: zoo.<Class>``, ``zoo.attacks.AdversarialTraining``, ``datamodules.<Class>``: as jsonargparse reads them."""
    paths = _class_paths(yaml.safe_load(config.read_text()))
    assert paths, f"{config.name} names no class"
    for path in paths:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), path


def test_the_adversarial_recipes_still_name_the_old_module_path():
    names = {p for c in CONFIGS for p in _class_paths(yaml.safe_load(c.read_text()))}
    assert "zoo.attacks.AdversarialTraining" in names


def test_console_scripts_resolve():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"zoo-train", "zoo-predict", "zoo-generate", "zoo-translate", "zoo-export"}
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    assert scripts["zoo-train"] == "zoo.training.cli:main"


def test_hubconf_builds_through_create_model():
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    model = hubconf.lenet5(num_classes=4)
    assert type(model) is zoo.LeNet5 and model.num_classes == 4


@pytest.mark.parametrize("name", zoo.list_pretrained())
def test_every_shipped_entry_loads(name):
    model = zoo.load_pretrained(name)
    assert isinstance(model, zoo.ZooModule) and not model.training


def test_cli_tests_an_old_module_path_checkpoint(tmp_path, monkeypatch):
    """``train.py test --model zoo.resnet.ResNet ... --ckpt_path <checkpoint written by the flat layout>``."""
    from zoo.training.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    hparams = torch.load(LEGACY / "resnet_modpath_cli.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["_class_path"] == "zoo.resnet.ResNet"
    architecture = {k: hparams[k] for k in ("block", "layers", "widths", "stem", "in_channels", "image_size")}
    cli = main(
        ["test", "--config", str(REPO / "configs" / "lenet5_digits.yaml"), "--model", "zoo.resnet.ResNet",
         *(f"--model.init_args.{k}={v}" for k, v in architecture.items()),
         "--ckpt_path", str(LEGACY / "resnet_modpath_cli.ckpt"), "--trainer.logger=false"]
    )  # fmt: skip
    assert type(cli.model) is zoo.ResNet
    expected = zoo.load_checkpoint(LEGACY / "resnet_modpath_cli.ckpt")
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(cli.model.state_dict()[key].cpu(), value, rtol=0, atol=0)
    assert "test/acc" in cli.trainer.callback_metrics  # the test ran, on the checkpoint's weights (compared above)
