"""The CLI links each datamodule attribute into the model argument that takes it, and only into one the model takes.

Checkpoints written by ``train.py fit`` record exactly the model's own arguments: the data's shape, its
normalization and its class names where the model takes them, nothing it does not take.
"""

import inspect

import pytest
import torch

import zoo
from zoo.training.cli import DATA_LINKS, main

FAST = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--test_after_fit=false"]


def model_arguments(cls: type) -> set[str]:
    """Every keyword argument of the constructors in ``cls``'s MRO (the ones ``**kwargs`` passes on)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, zoo.ZooModule):
            params = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in params if p.kind == p.KEYWORD_ONLY}
    return names


def fit(tmp_path, model: str, data: str, *args: str):
    cli = main(["fit", "--model", model, "--data", data, *FAST, f"--trainer.default_root_dir={tmp_path}", *args])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    return cli, torch.load(ckpt, weights_only=True)["hyper_parameters"], ckpt


def own(hparams: dict) -> set[str]:
    return {k for k in hparams if not k.startswith("_")}  # without Lightning's _class_path / _instantiator


def test_image_classifier_gets_shape_normalization_and_class_names_and_nothing_else(tmp_path, vision_root):
    cli, hparams, ckpt = fit(
        tmp_path, "SimpleCNN", "FashionMNISTDataModule", f"--data.data_dir={vision_root.root}", "--data.batch_size=16"
    )
    dm = cli.datamodule
    assert own(hparams) == model_arguments(zoo.SimpleCNN)  # no in_features, image_shape, vocab_size, ...
    assert "in_features" not in hparams and "input_size" not in hparams
    assert (hparams["in_channels"], hparams["image_size"], hparams["num_classes"]) == (1, 28, 10)
    assert hparams["mean"] == pytest.approx(dm.normalization["mean"]) and hparams["std"] == pytest.approx(dm.normalization["std"])
    assert hparams["class_names"] == dm.class_names and len(hparams["class_names"]) == 10

    loaded = zoo.SimpleCNN.load_from_checkpoint(ckpt, weights_only=True)
    assert loaded.class_names == dm.class_names
    assert loaded.transforms().mean == pytest.approx(dm.normalization["mean"])
    assert type(zoo.load_checkpoint(ckpt)) is zoo.SimpleCNN


def test_mlp_on_images_gets_in_features_and_image_shape(tmp_path, vision_root):
    _, hparams, ckpt = fit(tmp_path, "MLP", "FashionMNISTDataModule", f"--data.data_dir={vision_root.root}", "--data.batch_size=16")
    assert own(hparams) == model_arguments(zoo.MLP)
    assert hparams["in_features"] == 784 and hparams["image_shape"] == [1, 28, 28]
    assert hparams["mean"] is not None and hparams["class_names"] is not None
    assert "in_channels" not in hparams and "image_size" not in hparams
    assert type(zoo.load_checkpoint(ckpt)) is zoo.MLP


def test_regressor_gets_no_image_or_class_arguments(tmp_path):
    _, hparams, ckpt = fit(tmp_path, "LinearRegression", "LinearRegressionDataModule", "--data.n_samples=200")
    assert own(hparams) == model_arguments(zoo.LinearRegression)
    assert hparams["in_features"] == 3
    assert not {"class_names", "mean", "std", "num_classes", "image_shape"} & set(hparams)
    loaded = zoo.LinearRegression.load_from_checkpoint(ckpt, weights_only=True)
    assert loaded.linear.in_features == 3


def test_every_link_targets_an_argument_some_model_takes():
    """A renamed model argument must not leave a link that silently never applies."""
    classes = {zoo.get_model_class(name) for name in zoo.list_models()}
    taken = set().union(*(model_arguments(cls) for cls in classes))
    assert not set(DATA_LINKS) - taken
