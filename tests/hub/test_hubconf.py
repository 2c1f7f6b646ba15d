"""hubconf.py: one torch.hub entry point per registered model, pretrained= a shipped entry (source="local")."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo.hub.pretrained import save_pretrained, sha256_file

REPO = Path(__file__).resolve().parents[2]


def load_hubconf():
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_entry_point_per_registered_model_with_a_docstring():
    # torch 2.14's torch.hub.list takes GitHub repositories only; this is its rule applied to the local file:
    # the public callables of hubconf.py.
    hubconf = load_hubconf()
    names = sorted(f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_"))
    assert names == zoo.list_models() and "resnet20" in names
    assert hubconf.dependencies == ["torch", "torchvision", "lightning", "safetensors"]
    assert "zoo.ResNet" in hubconf.resnet20.__doc__ and "pretrained" in hubconf.resnet20.__doc__


@pytest.fixture
def resnet20_weights(tmp_path, monkeypatch) -> zoo.ZooModule:
    """A ResNet-20 for 1-channel 28x28 images shipped as "resnet20.fashionmnist" in tmp_path ($ZOO_WEIGHTS_DIR)."""
    torch.manual_seed(0)
    model = zoo.create_model("resnet20", in_channels=1, image_size=28, num_classes=10).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that they must load too
        model(torch.randn(8, 1, 28, 28))
    save_pretrained(model, tmp_path, "resnet20.fashionmnist")
    row = {"name": "resnet20.fashionmnist", "arch": "resnet20", "zoo_class": "ResNet"}
    for key, file in (("", "resnet20.fashionmnist.safetensors"), ("config_", "resnet20.fashionmnist.json")):
        row[f"{key}file"], row[f"{key}sha256"] = file, sha256_file(tmp_path / file)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "description": "test", "weights": [row]}))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    return model


def test_hub_load_local_with_pretrained_weights(resnet20_weights):
    model = torch.hub.load(str(REPO), "resnet20", source="local", pretrained="fashionmnist")
    assert isinstance(model, zoo.ResNet) and not model.training
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), resnet20_weights(x))
    adapted = torch.hub.load(str(REPO), "resnet20", source="local", pretrained="resnet20.fashionmnist", num_classes=5, in_channels=3)
    assert adapted(torch.randn(2, 3, 28, 28)).shape == (2, 5)


def test_hub_load_local_without_weights_builds_the_model(resnet20_weights):
    model = torch.hub.load(str(REPO), "lenet5", source="local", num_classes=3)
    assert isinstance(model, zoo.LeNet5) and model.num_classes == 3
    with pytest.raises(ValueError, match="lenet5 has: none"):
        torch.hub.load(str(REPO), "lenet5", source="local", pretrained="fashionmnist")
