"""torchvision's ImageNet weights for the zoo's AlexNet, VGG and ResNet (zoo.hub.imagenet, create_model(weights=)):
offline in a private torch.hub cache, identical logits, metadata without download, and the fine-tuning adapters."""

import io
import logging

import pytest
import torch
import torchvision
from PIL import Image

import zoo


# --------------------------------------------------------------------------------------------------
# ImageNet weights, offline: torchvision's file format in a private torch.hub cache
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def hub_cache(torch_hub):
    """A private, empty torch.hub cache (conftest's ``torch_hub``); any download attempt fails as if offline."""
    return torch_hub


def cache_torchvision_weights(name: str, hub_cache, weights: str = "IMAGENET1K_V1") -> torch.nn.Module:
    """torchvision's model with random weights, saved where torch.hub looks for the published file."""
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name).eval()
    if name.startswith("resnet") or "bn" in name:  # non-trivial batch-norm statistics, so they must map too
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    hub_cache.publish(name, buffer.getvalue(), weights)  # named with its true hash, as torchvision's files are
    return reference


@pytest.mark.parametrize("name,size", [("alexnet", 224), ("vgg11_bn", 64), ("resnet18", 224), ("resnet50", 224)])
def test_imagenet_weights_load_into_the_zoo_module_with_identical_logits(name, size, hub_cache):
    reference = cache_torchvision_weights(name, hub_cache)
    model = zoo.create_model(name, weights="IMAGENET1K_V1", image_size=size).eval()
    x = torch.randn(2, 3, size, size)  # VGG's adaptive pooling reads 64 px too, at a fraction of the cost
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_weights_bring_class_names_and_preprocessing_without_download(hub_cache):
    spec = zoo.get_weights("vgg16", "IMAGENET1K_V1")
    assert spec.name == "VGG16_Weights.IMAGENET1K_V1"
    assert len(spec.categories) == 1000 and spec.categories[0] == "tench"
    assert not hub_cache.checkpoints.exists()  # metadata only
    t = spec.transforms()
    assert (t.resize_size, t.crop_size) == (256, 224)
    assert t.mean == list(zoo.core.image.IMAGENET_MEAN) and t.std == list(zoo.core.image.IMAGENET_STD)
    image = Image.fromarray(torch.randint(0, 256, (300, 400, 3), dtype=torch.uint8).numpy())
    ours, theirs = t(image), torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()(image)
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert zoo.get_weights("resnet50", "ResNet50_Weights.IMAGENET1K_V2").name == "ResNet50_Weights.IMAGENET1K_V2"
    with pytest.raises(ValueError, match="has no weights"):
        zoo.get_weights("resnet18", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="no ImageNet weights for 'resnet20'"):
        zoo.get_weights("resnet20")


def test_pretrained_model_carries_its_preprocessing_and_labels(hub_cache):
    cache_torchvision_weights("resnet18", hub_cache)
    model = zoo.create_model("resnet18", weights="DEFAULT")
    assert model.transforms().resize_size == 256 and model.class_names[1] == "goldfish"


def test_offline_without_the_file_says_where_to_put_it(hub_cache):
    with pytest.raises(zoo.PretrainedWeightsUnavailable, match=r"put it at .*hub/checkpoints/vgg16-397923af\.pth"):
        zoo.create_model("vgg16", weights="IMAGENET1K_V1")


# --------------------------------------------------------------------------------------------------
# Fine-tuning adapters
# --------------------------------------------------------------------------------------------------
def test_num_classes_replaces_the_pretrained_head_and_says_so(hub_cache, caplog):
    reference = cache_torchvision_weights("resnet18", hub_cache)
    with caplog.at_level(logging.INFO):
        model = zoo.create_model("resnet18", weights="IMAGENET1K_V1", num_classes=10)
    assert "1000-class ImageNet head" in caplog.text and "dropped" in caplog.text
    assert model.head.out_features == 10 and model.hparams.num_classes == 10
    assert torch.equal(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)  # backbone kept
    assert model.class_names is None  # ImageNet's labels no longer apply


def test_in_channels_one_sums_the_rgb_filters(hub_cache):
    reference = cache_torchvision_weights("resnet18", hub_cache).eval()
    model = zoo.create_model("resnet18", weights="IMAGENET1K_V1", in_channels=1).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7) and model.hparams.in_channels == 1
    assert torch.allclose(model.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    grey = torch.randn(2, 1, 224, 224)
    with torch.no_grad():  # a grey image gives what the RGB model gives for (g, g, g)
        assert torch.allclose(model(grey), reference(grey.expand(-1, 3, -1, -1)), atol=1e-4)
    assert len(model.transforms().mean) == 1


def test_in_channels_n_repeats_and_scales_the_rgb_filters(hub_cache):
    reference = cache_torchvision_weights("alexnet", hub_cache)
    model = zoo.create_model("alexnet", weights="IMAGENET1K_V1", in_channels=5)
    w, rgb = model.features[0].weight, reference.features[0].weight
    assert w.shape == (64, 5, 11, 11)
    assert torch.allclose(w[:, :3], rgb * 3 / 5) and torch.allclose(w[:, 3:], rgb[:, :2] * 3 / 5)
    assert model(torch.randn(1, 5, 224, 224)).shape == (1, 1000)
