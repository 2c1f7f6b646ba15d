import pytest
import torch

import zoo
from zoo import registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, so test registrations do not leak."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_list_models_names_every_model_and_filters_by_pattern():
    assert {"linear_regression", "mlp", "dnn", "lenet5", "simple_cnn"} <= set(zoo.list_models())
    assert zoo.list_models() == sorted(zoo.list_models())
    assert zoo.list_models("le*") == ["lenet5"]
    assert zoo.list_models("linear_*") == ["linear_regression"]
    assert zoo.list_models("nothing*") == []


def test_create_model_applies_overrides():
    model = zoo.create_model("lenet5", num_classes=3, in_channels=3, image_size=32)
    assert isinstance(model, zoo.LeNet5)
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 3)


def test_variant_is_configuration_of_its_class():
    assert zoo.get_model_class("dnn") is zoo.MLP
    model = zoo.create_model("dnn", dropout=0.1)
    assert model.hparams.hidden_sizes == [256, 128, 64]
    assert model.hparams.dropout == 0.1


def test_get_model_class():
    assert zoo.get_model_class("simple_cnn") is zoo.SimpleCNN
    assert zoo.get_model_class("linear_regression") is zoo.LinearRegression


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="Did you mean 'lenet5'"):
        zoo.create_model("lenet")
    with pytest.raises(KeyError, match="unknown model"):
        zoo.get_model_class("resnet9000")


def test_duplicate_name_raises(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("lenet5")(zoo.LeNet5)


def test_register_builder_function(scratch_registry):
    @zoo.register_model("tiny_mlp")
    def tiny_mlp(**kwargs) -> zoo.MLP:
        return zoo.MLP(**{"hidden_sizes": [4], **kwargs})

    assert "tiny_mlp" in zoo.list_models()
    assert zoo.get_model_class("tiny_mlp") is zoo.MLP
    assert zoo.create_model("tiny_mlp", in_features=2, num_classes=2).hparams.hidden_sizes == [4]


def test_builder_without_return_annotation_is_refused(scratch_registry):
    with pytest.raises(TypeError, match="return annotation"):
        zoo.register_model("no_annotation")(lambda **kw: zoo.MLP(**kw))
    assert "no_annotation" not in zoo.list_models()


@pytest.mark.parametrize("name", ["LeNet", "le-net", "", "with space"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ValueError, match="lower-case"):
        zoo.register_model(name)
