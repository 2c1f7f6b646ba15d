"""The ImageNet-size networks and their small variants across families: sizes against the papers and
torchvision, full-size forwards. Each architecture's own checks are in its file (test_resnet.py, test_vgg.py,
test_vit.py, test_alexnet.py, test_cnn.py); torchvision's weights in tests/hub/test_imagenet_weights.py.

The standard tests (shapes, fit, checkpoint round trip, input checks) run in tests/models/test_models.py, on
narrow builds of the ImageNet networks (its ``OVERRIDES``); here each family runs once at full size.
"""


import pytest
import torch
import torchvision

import zoo
from zoo.hub.imagenet import _ARCHS, remap_keys

IMAGENET = ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet18", "resnet34", "resnet50", "googlenet", "densenet121"]
SMALL = ["alexnet_small", "vgg11_small", "vgg13_small", "vgg16_small", "resnet20", "resnet32", "resnet56", "vit_tiny", "vit_small", "googlenet_small", "densenet_bc_100"]


# torchvision's googlenet() builds the auxiliary heads unless told not to; the zoo's is its inference model.
TORCHVISION_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True}}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(builder, *args, **kwargs):
    with torch.device("meta"):  # shapes only: instant, no memory
        return builder(*args, **kwargs)


def test_every_vision_name_is_registered():
    assert set(IMAGENET + SMALL) <= set(zoo.list_models())
    assert set(_ARCHS) == set(IMAGENET)


@pytest.mark.parametrize(
    "name,count",
    [("alexnet", 61_100_840), ("vgg16", 138_357_544), ("resnet18", 11_689_512), ("resnet50", 25_557_032), ("googlenet", 6_624_904), ("densenet121", 7_978_856)],
)
def test_parameter_counts_match_the_published_ones(name, count):
    assert n_params(on_meta(zoo.create_model, name)) == count


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_variants_have_torchvisions_parameters_and_key_names(name):
    ours = on_meta(zoo.create_model, name)
    theirs = on_meta(torchvision.models.get_model, name, **TORCHVISION_KWARGS.get(name, {}))
    assert n_params(ours) == n_params(theirs)
    assert (ours.num_classes, ours.input_shape) == (1000, (3, 224, 224))
    mapped = remap_keys(theirs.state_dict(), _ARCHS[name][1])
    assert {k: v.shape for k, v in mapped.items()} == {k: v.shape for k, v in ours.state_dict().items()}


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_small_models_read_fashion_mnist_and_cifar_sizes(name, channels, size):
    model = zoo.create_model(name, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, size, size)).shape == (2, 10)


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet50"])
def test_full_size_imagenet_forward(name):
    model = zoo.create_model(name).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    assert model.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, model.num_features)
