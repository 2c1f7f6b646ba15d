"""Configuration mistakes fail before training starts, with one ``error:`` message that lists the valid choices.

In-process (``zoo.cli.main(args=[...])``, about a second each) except where ``sys.argv`` is the point.
"""

from __future__ import annotations

import re
import sys

import lightning as L
import pytest
import torch

import zoo
from datamodules import DigitsDataModule
from zoo.core.base import IncompatibleDataError
from zoo.training.cli import main
from zoo.training.cli_errors import ConfigError, choices

DIGITS = ["--data", "DigitsDataModule", "--data.image_size=32", "--trainer.fast_dev_run=true", "--trainer.logger=false"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py"])  # main(args=...) parses args only


def _exit_message(capsys, args: list[str]) -> str:
    """Run ``train.py fit <args>`` in-process; it must exit with status 2 before training: return stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args=["fit", *args])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


# -- unknown names -------------------------------------------------------------------------------------
def test_unknown_model_lists_the_zoo_models(capsys):
    err = _exit_message(capsys, ["--model", "LeNet", *DIGITS])
    assert err.startswith("error: unknown model 'LeNet' (--model). Choose one of: ")
    for name in ["AlexNet", "LeNet5", "MLP", "ResNet", "VGG", "VisionTransformer", "DQN"]:
        assert f" {name}," in err or f" {name};" in err, name
    assert "ClassifierModule" not in err and "ImageClassifier" not in err  # bases are not choices
    assert "Did you mean LeNet5?" in err
    assert "Subtypes" not in err and "usage:" not in err  # no jsonargparse report, no usage wall
    assert len(err.splitlines()) == 2


def test_unknown_datamodule_lists_the_datamodules(capsys):
    err = _exit_message(capsys, ["--model", "LeNet5", "--data", "DigitsDatamodule", "--trainer.fast_dev_run=true"])
    assert "unknown datamodule 'DigitsDatamodule' (--data)" in err
    assert "FashionMNISTDataModule" in err and "ImageFolderDataModule" in err
    assert not re.search(r"\b(ImageDataModule|TextDataModule|ZooDataModule)\b", err)  # bases are not choices
    assert "Did you mean DigitsDataModule?" in err


def test_a_create_model_name_points_to_its_class(capsys):
    err = _exit_message(capsys, ["--model", "resnet20", *DIGITS])
    assert "'resnet20' is a zoo.create_model() name" in err and "--model ResNet" in err


def test_unknown_class_path_in_a_recipe(capsys, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  class_path: zoo.LeNett5\ndata:\n  class_path: DigitsDataModule\n")
    err = _exit_message(capsys, ["--config", str(recipe)])
    assert "unknown model 'zoo.LeNett5'" in err and "Did you mean LeNet5?" in err


def test_choices_are_the_concrete_classes():
    assert choices("model") == sorted(
        name for name in zoo.__all__ if isinstance(getattr(zoo, name), type) and issubclass(getattr(zoo, name), zoo.ZooModule)
        and name not in {"ZooModule", "SupervisedModule", "ClassifierModule", "RegressorModule", "ImageClassifier", "ImageInputMixin"}
    )  # fmt: skip


# -- invalid values --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "LeNet5", "--model.lr=-0.01"], "LeNet5: lr must be > 0, got -0.01"),
        (["--model", "LeNet5", "--optimizer", "Adam", "--optimizer.lr=-1"], "--optimizer.lr must be > 0, got -1"),
        (["--model", "LeNet5", "--data.batch_size=0"], "DigitsDataModule: batch_size must be >= 1, got 0"),
        (["--model", "VGG"], "VGG needs images of at least"),
        (["--model", "VisionTransformer", "--model.patch_size=5"], "patch_size (5) must divide image_size (32)"),
        (["--model", "LeNet5", "--model.num_classes=5"], "LeNet5 num_classes=5 (from --model.num_classes) disagrees with DigitsDataModule"),
    ],
    ids=["negative-lr", "negative-optimizer-lr", "batch-size-0", "vgg-too-small", "vit-patch", "num-classes"],
)
def test_invalid_values_fail_before_training(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = ["--data.image_size=8"] if args[1] == "VGG" else []
    with pytest.raises(ConfigError) as error:
        main(args=["fit", *args, *DIGITS, *data])
    assert message in str(error.value)
    assert "Does not validate" not in str(error.value) and "Given value" not in str(error.value)
    assert not (tmp_path / "lightning_logs").exists()  # nothing ran


def test_the_command_line_prints_one_error_line_and_exits_1(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", "fit", "--model", "LeNet5", "--model.lr=-1", *DIGITS])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == "error: LeNet5: lr must be > 0, got -1.0"  # sys.exit prints it, status 1


def test_a_checkpoint_with_other_classes_is_refused_before_loading(tmp_path, monkeypatch):
    """``fit --ckpt_path`` of a 5-class checkpoint on 10-class data: refused up front, not as a size
    mismatch while the weights load (the message says to fine-tune with pretrained= instead)."""
    monkeypatch.chdir(tmp_path)
    model = zoo.LeNet5(num_classes=5, image_size=32)
    hparams = {"_class_path": "zoo.LeNet5", **model.hparams}  # as the CLI saves them
    torch.save({"hyper_parameters": hparams, "state_dict": model.state_dict()}, tmp_path / "five.ckpt")
    with pytest.raises(ConfigError, match=r"num_classes=5 \(from the checkpoint .*five.ckpt\) disagrees.*--model.pretrained"):
        main(args=["fit", "--model", "LeNet5", *DIGITS, "--ckpt_path", str(tmp_path / "five.ckpt")])


# -- the model and the datamodule, from Python ------------------------------------------------------------
def _trainer(tmp_path) -> L.Trainer:
    return L.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: zoo.LeNet5(num_classes=5, image_size=32), "LeNet5 was built for 5 classes but DigitsDataModule has 10: build it with num_classes=10"),
        (lambda: zoo.LeNet5(image_size=28), "DigitsDataModule serves images of shape (1, 32, 32), which LeNet5 cannot read"),
        (lambda: zoo.create_model("resnet20", in_channels=3), "which ResNet cannot read: ResNet expects input of shape (B, C=3, H=32, W=32)"),
        (lambda: zoo.create_model("mlp", in_features=64), "which MLP cannot read"),
    ],
    ids=["classes", "image-size", "channels", "mlp-features"],
)
def test_fit_refuses_a_datamodule_the_model_cannot_read(model, message, tmp_path):
    trainer = _trainer(tmp_path)
    with pytest.raises(IncompatibleDataError) as error:
        trainer.fit(model(), DigitsDataModule(image_size=32))
    assert message in str(error.value)
    assert trainer.global_step == 0  # refused before the first step


def test_models_built_for_the_data_pass_the_check():
    """The check lets through what fits: a model built for the data, an MLP whose in_features match the
    flattened images, a fine-tuning start with a fresh head of the data's size."""
    data = DigitsDataModule(image_size=32)
    for model in [
        zoo.LeNet5(image_size=32),
        zoo.create_model("mlp", in_features=32 * 32),
        zoo.ResNet(in_channels=1, num_classes=10),
    ]:
        model.check_datamodule(data)


def test_a_users_subclass_keeps_its_parent_among_the_choices():
    from zoo.training.cli_errors import choices

    class MyLeNet(zoo.LeNet5):  # a class of the user's (here, the test's), extending a zoo model
        pass

    names = choices("model")
    assert "LeNet5" in names and "MyLeNet" not in names
    assert "ClassifierModule" not in names  # still no bases
