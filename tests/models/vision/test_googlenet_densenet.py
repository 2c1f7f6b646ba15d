"""GoogLeNet and DenseNet: torchvision's parameter counts and key names, its ImageNet weights offline (GoogLeNet's
auxiliary heads and input transform, DenseNet's old key names), the blocks, and the 28/32 px variants.

The standard tests (shapes, fit, checkpoint round trip, input checks) run in test_models.py (``googlenet``
and ``densenet121`` on its narrow ``OVERRIDES`` builds); sizes and adapters shared with the other ImageNet
models in test_vision_models.py. Full 224 px forwards are under ``-m slow``.
"""

import io
import re

import pytest
import torch
import torchvision

import zoo
from zoo.models.vision.densenet import DenseBlock, Transition
from zoo.models.vision.googlenet import Inception
from zoo.hub.imagenet import _ARCHS, remap_keys


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torchvision_model(name: str) -> torch.nn.Module:
    """torchvision's model as its pretrained builder makes it (GoogLeNet: aux heads, transform_input), random
    weights, and batch-norm statistics of a random batch, so that every layer passes on a signal (with
    arbitrary statistics GoogLeNet's logits barely depend on the image and a comparison would prove little)."""
    torch.manual_seed(0)
    kwargs = {"aux_logits": True, "transform_input": True, "init_weights": True} if name == "googlenet" else {}
    model = torchvision.models.get_model(name, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0  # running statistics := this batch's
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 64, 64))
    return model.eval()


def old_densenet_keys(state: dict) -> dict:
    """The key names of torchvision's published densenet121 file (2017): "denselayer1.norm.1.weight", no batch counters."""
    return {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items() if "num_batches_tracked" not in k}


# --------------------------------------------------------------------------------------------------
# Sizes and names against torchvision
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,count", [("googlenet", 6_624_904), ("densenet121", 7_978_856), ("densenet_bc_100", 769_162), ("googlenet_small", 348_770)]
)
def test_parameter_counts(name, count):
    with torch.device("meta"):
        assert n_params(zoo.create_model(name)) == count


def test_googlenet_has_torchvisions_inference_model_keys_without_aux_heads():
    with torch.device("meta"):
        ours = zoo.create_model("googlenet")
        theirs = torchvision.models.googlenet(aux_logits=False, init_weights=True)
    assert n_params(ours) == n_params(theirs) == 6_624_904
    mapped = remap_keys(theirs.state_dict(), _ARCHS["googlenet"][1])
    assert {k: v.shape for k, v in mapped.items()} == {k: v.shape for k, v in ours.state_dict().items()}
    assert not any(k.startswith("aux") for k in ours.state_dict())


# --------------------------------------------------------------------------------------------------
# ImageNet weights, offline: files shaped as torchvision's published ones
# --------------------------------------------------------------------------------------------------
def publish(torch_hub, name: str, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    torch_hub.publish(name, buffer.getvalue())


def test_googlenet_weights_drop_the_aux_heads_and_transform_the_input_as_torchvision(torch_hub):
    reference = torchvision_model("googlenet")
    state = reference.state_dict()
    assert any(k.startswith("aux1.") for k in state)  # as in googlenet-1378be20.pth
    publish(torch_hub, "googlenet", state)
    model = zoo.create_model("googlenet", weights="IMAGENET1K_V1", image_size=64).eval()
    assert model.hparams.transform_input and model.class_names[0] == "tench"
    x = torch.randn(2, 3, 64, 64)  # the layers read 64 px at a fraction of 224's cost (224: the slow test)
    with torch.no_grad():
        logits = model(x)
        assert not torch.allclose(logits[0], logits[1], atol=1e-3)  # the logits depend on the image
        assert torch.allclose(logits, reference(x), atol=1e-5)
        model.transform_input = False  # the transform matters: without it the logits differ
        assert not torch.allclose(model(x), logits, atol=1e-3)
    assert not zoo.create_model("googlenet", image_size=64).hparams.transform_input  # untrained: raw input


def test_densenet121_weights_with_the_old_key_names_load(torch_hub):
    reference = torchvision_model("densenet121")
    state = old_densenet_keys(reference.state_dict())
    assert "features.denseblock1.denselayer1.norm.1.weight" in state and "features.denseblock1.denselayer1.norm1.weight" not in state
    publish(torch_hub, "densenet121", state)
    model = zoo.create_model("densenet121", weights="IMAGENET1K_V1", image_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        assert not torch.allclose(logits[0], logits[1], atol=1e-3) and torch.allclose(logits, reference(x), atol=1e-5)
    assert torch.equal(model.features.denseblock4.denselayer16.norm2.running_var, reference.features.denseblock4.denselayer16.norm2.running_var)


@pytest.mark.parametrize("name,stem_conv", [("googlenet", "conv1.conv"), ("densenet121", "features.conv0")])
def test_pretrained_adapters_new_head_and_grey_input(name, stem_conv, torch_hub):
    reference = torchvision_model(name)
    state = reference.state_dict()
    publish(torch_hub, name, old_densenet_keys(state) if name == "densenet121" else state)
    model = zoo.create_model(name, weights="IMAGENET1K_V1", num_classes=10, in_channels=1, image_size=64).eval()
    conv = model.get_submodule(stem_conv)
    assert model.head.out_features == 10 and model.class_names is None
    assert conv.weight.shape[1] == 1 and torch.allclose(conv.weight, reference.get_submodule(stem_conv).weight.sum(1, keepdim=True))
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "densenet121"])
def test_full_size_pretrained_logits_equal_torchvisions(name, torch_hub):
    reference = torchvision_model(name)
    state = reference.state_dict()
    publish(torch_hub, name, old_densenet_keys(state) if name == "densenet121" else state)
    model = zoo.create_model(name, weights="IMAGENET1K_V1").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (2, 1000) and torch.allclose(logits, reference(x), atol=1e-5)
        assert model.forward_features(x).shape == (2, model.num_features)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------
def test_inception_block_concatenates_four_branches_at_full_resolution():
    block = Inception(192, 64, 96, 128, 16, 32, 32).eval()  # inception3a
    out = block(torch.randn(2, 192, 28, 28))
    assert out.shape == (2, 64 + 128 + 32 + 32, 28, 28) and block.out_channels == 256
    assert block.branch3[1].conv.kernel_size == (3, 3)  # torchvision's "5x5" branch is a 3x3 (its weights need it)
    x = torch.randn(1, 192, 8, 8)
    with torch.no_grad():  # the channel groups are the branches in order
        assert torch.equal(block(x)[:, 64:192], block.branch2(x)) and torch.equal(block(x)[:, 224:], block.branch4(x))


def test_dense_block_keeps_its_input_and_adds_growth_rate_channels_per_layer():
    block = DenseBlock(num_layers=3, in_channels=5, growth_rate=4, bn_size=4, drop_rate=0.0).eval()
    x = torch.randn(2, 5, 6, 6)
    with torch.no_grad():
        out = block(x)
        assert out.shape == (2, 5 + 3 * 4, 6, 6) and torch.equal(out[:, :5], x)
        assert torch.equal(out[:, 5:9], block.denselayer1(x))  # the first layer reads the input alone
        assert torch.allclose(out[:, 9:13], block.denselayer2(out[:, :9].contiguous()), atol=1e-6)  # the second: input + first output
    assert block.denselayer3.conv1.in_channels == 5 + 2 * 4 and block.denselayer3.conv1.out_channels == 16


def test_transition_compresses_and_halves():
    assert Transition(20, 10)(torch.randn(2, 20, 7, 7)).shape == (2, 10, 3, 3)


# --------------------------------------------------------------------------------------------------
# The 28/32 px variants
# --------------------------------------------------------------------------------------------------
def test_densenet_bc_100_is_three_blocks_of_16_bottleneck_layers_with_compression():
    model = zoo.create_model("densenet_bc_100", in_channels=1, image_size=28)
    f = model.features
    assert [len(f.denseblock1), len(f.denseblock2), len(f.denseblock3)] == [16, 16, 16]
    assert f.conv0.kernel_size == (3, 3) and f.conv0.out_channels == 24  # 2k
    assert (f.transition1.conv.in_channels, f.transition1.conv.out_channels) == (24 + 16 * 12, 108)
    assert (f.transition2.conv.in_channels, f.transition2.conv.out_channels) == (108 + 192, 150)
    assert model.num_features == 150 + 192 and f.denseblock1.denselayer1.conv1.out_channels == 48  # 4k bottleneck
    depth = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) + 1  # + the linear head
    assert depth == 100


@pytest.mark.parametrize("name", ["googlenet_small", "densenet_bc_100"])
def test_small_variants_pool_28_px_to_7(name):
    model = zoo.create_model(name, in_channels=1, image_size=28).eval()
    sizes = []
    last = model.inception5b if name == "googlenet_small" else model.features.norm5
    first = model.inception3a if name == "googlenet_small" else model.features.denseblock1
    for module in (first, last):
        module.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sizes == [28, 7]


def test_bad_arguments_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="stem must be"):
        zoo.GoogLeNet(stem="tiny")
    with pytest.raises(ValueError, match="width must be > 0"):
        zoo.GoogLeNet(width=0.0)
    with pytest.raises(ValueError, match="needs image_size >= 15"):
        zoo.create_model("googlenet", image_size=14)
    with pytest.raises(ValueError, match="needs image_size >= 4"):
        zoo.create_model("googlenet_small", image_size=3)
    with torch.no_grad():  # 4 px is enough: 4 -> 2 -> 1 through the two max-pools
        assert zoo.create_model("googlenet_small", width=0.05, image_size=4).eval()(torch.randn(1, 3, 4, 4)).shape == (1, 10)
    with pytest.raises(ValueError, match="compression must be in"):
        zoo.DenseNet(compression=0.0)
    with pytest.raises(ValueError, match="block_config needs"):
        zoo.DenseNet(block_config=[])
    with pytest.raises(ValueError, match="too small for 3 blocks"):
        zoo.DenseNet(image_size=3)
    with pytest.raises(ValueError, match="expects input of shape"):
        zoo.create_model("densenet_bc_100", in_channels=1, image_size=28)(torch.randn(1, 3, 28, 28))
