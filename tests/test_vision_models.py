"""AlexNet, VGG, ResNet and ViT: sizes against the papers and torchvision, ImageNet weights offline, fine-tuning adapters.

The standard tests (shapes, fit, checkpoint round trip, input checks) run in test_models.py, on narrow
builds of the ImageNet networks (its ``OVERRIDES``); here each family runs once at full size.
"""

import io
import logging

import pytest
import torch
import torchvision
from PIL import Image

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


@pytest.mark.parametrize("name,count", [("resnet20", 272_474), ("resnet32", 466_906), ("resnet56", 855_770)])
def test_cifar_resnets_have_three_stages_of_16_32_64(name, count):
    model = zoo.create_model(name)
    assert n_params(model) == count  # with 1x1 projection shortcuts (option B of the paper)
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels, model.layer3[0].conv1.out_channels] == [16, 32, 64]
    assert len(model.layer1) == (int(name[6:]) - 2) // 6
    assert model.layer1[0].downsample is None and model.layer2[0].downsample[0].kernel_size == (1, 1)


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


def test_vit_parts():
    model = zoo.create_model("vit_tiny", in_channels=1, image_size=28)
    assert model.pos_embed.shape == (1, 7 * 7 + 1, 96)  # 49 patches + the class token
    assert model.patch_embed(torch.randn(2, 1, 28, 28)).shape == (2, 49, 96)
    assert len(model.blocks) == 6 and model.num_features == 96
    with pytest.raises(ValueError, match="patch_size .* must divide image_size"):
        zoo.create_model("vit_tiny", image_size=30)
    with pytest.raises(ValueError, match="heads .* must divide dim"):
        zoo.VisionTransformer(dim=100, heads=3)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="depth must be one of"):
        zoo.VGG(depth=12)
    with pytest.raises(ValueError, match="block must be one of"):
        zoo.ResNet(block="dense")
    with pytest.raises(ValueError, match="at least 63 px"):
        zoo.create_model("alexnet", image_size=32)
    with pytest.raises(ValueError, match="expects input of shape \\(B, C=3, H=224, W=224\\)"):
        zoo.create_model("resnet18")(torch.randn(1, 3, 32, 32))


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


def test_freeze_backbone_trains_only_the_head():
    model = zoo.create_model("resnet20", freeze_backbone=True, num_classes=10)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    model.reset_classifier(4)  # a new head trains, the backbone stays frozen
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    opt = model.configure_optimizers()
    assert sum(len(g["params"]) for g in opt.param_groups) == 2
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    model.train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 4, (4,))
    model.compute_loss(model(x), y).backward()
    opt.step()
    # weights and batch-norm running statistics of the backbone are untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.head.training and not model.bn1.training


def test_simple_cnn_widths_are_arguments():
    """channels= and hidden_size= widen SimpleCNN; the defaults keep the 10-20-50 network of the notes."""
    small, wide = zoo.create_model("simple_cnn"), zoo.create_model("simple_cnn", channels=[32, 64], hidden_size=128)
    assert sum(p.numel() for p in small.parameters()) == (1 * 10 * 25 + 10) + (10 * 20 * 25 + 20) + (320 * 50 + 50) + (50 * 10 + 10)
    assert sum(p.numel() for p in wide.parameters()) == (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (64 * 16 * 128 + 128) + (128 * 10 + 10)
    assert wide(torch.zeros(2, 1, 28, 28)).shape == (2, 10) and wide.num_features == 128
    with pytest.raises(ValueError, match="two positive conv widths"):
        zoo.create_model("simple_cnn", channels=[32])
