"""Feature maps, timm's API, on every image classifier: ``forward_intermediates``, ``feature_info`` and
``create_model(..., features_only=True)`` (zoo.core.features).

Every registered image classifier (cheap builds of the ImageNet networks, zoo.bench.reduced_builds) is checked
against its own classifier path: each map equals the output of the module ``feature_info`` names, captured by
a forward hook during ``model(x)``, and ``forward_head`` of the final features is ``model(x)``. One model per
family also has its shapes written out.
"""

import pytest
import torch

import zoo
from zoo.bench.reduced_builds import REDUCED

IMAGE_MODELS = [n for n in zoo.list_models() if issubclass(zoo.get_model_class(n), zoo.ImageClassifier)]


def build(name: str, **kwargs) -> zoo.ImageClassifier:
    torch.manual_seed(0)
    return zoo.create_model(name, **{**REDUCED.get(name, {}), **kwargs}).eval()


def module_outputs(model: zoo.ImageClassifier, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``model(x)`` and the output of every module ``feature_info`` names, as the classifier computed them."""
    seen = {}
    names = [info["module"] for info in model.feature_info]
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, o.clone())) for n in names]
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, seen


def as_map(model: zoo.ImageClassifier, output: torch.Tensor) -> torch.Tensor:
    """A ViT block's tokens (B, 1 + N, D) as timm reshapes them: (B, D, H/p, W/p), class token dropped."""
    if not isinstance(model, zoo.VisionTransformer):
        return output
    side = model.image_size // model.patch_embed.proj.stride[0]
    return output[:, 1:].transpose(1, 2).reshape(len(output), -1, side, side)


def test_every_image_classifier_is_checked():
    assert {"resnet20", "vgg11_small", "vit_tiny", "densenet121", "googlenet", "wrn16_4", "resnet9_fast", "lenet5"} <= set(IMAGE_MODELS)
    assert "mlp" not in IMAGE_MODELS  # no stages of maps: create_model refuses features_only for it (below)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_the_maps_are_the_classifiers_own_and_the_final_features_give_its_logits(name):
    model = build(name)
    x = torch.randn(2, *model.input_shape)
    logits, outputs = module_outputs(model, x)
    final, maps = model.forward_intermediates(x)
    assert len(maps) == len(model.feature_info) >= 2
    for info, fmap in zip(model.feature_info, maps):
        assert fmap.ndim == 4 and fmap.shape[:2] == (2, info["num_chs"]), (info, fmap.shape)
        torch.testing.assert_close(fmap, as_map(model, outputs[info["module"]]), rtol=0, atol=0)
    torch.testing.assert_close(final, model.forward_features(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.forward_head(final), logits, rtol=1e-5, atol=1e-6)
    reductions = [info["reduction"] for info in model.feature_info]
    assert reductions == sorted(reductions) and reductions[0] >= 1


# One model per family, its maps written out: (channels, side) of each stage for the input side given.
SHAPES = {
    "resnet20": [(16, 32), (16, 32), (32, 16), (64, 8)],  # stem, layer1..3 (CIFAR layout)
    "resnet18": [(8, 16), (8, 8), (16, 4), (32, 2), (64, 1)],  # stem before its max-pool, layer1..4 (32 px, narrow)
    "resnet9_fast": [(16, 28), (32, 7), (64, 3), (128, 1)],  # prep, then layer1..3 after the stem's max-pool
    "wrn16_4": [(16, 16), (16, 16), (32, 8), (64, 4)],  # widen_factor 1 on 16 px; the last after the final BN-ReLU
    "densenet_bc_100": [(24, 32), (216, 32), (300, 16), (342, 8)],  # stem, dense blocks 1, 2, then 3 with norm5
    "googlenet_small": [(48, 32), (120, 32), (208, 16), (256, 8)],  # stem, inception3b, 4e, 5b
    "vgg11_small": [(32, 32), (64, 16), (128, 8), (256, 4), (256, 2)],  # before each max-pool
    "alexnet_small": [(48, 28), (128, 14), (128, 7)],  # before each max-pool
    "lenet5": [(6, 28), (16, 10)],  # C1 and C3 (valid 5x5), before S2 and S4
    "simple_cnn": [(10, 24), (20, 8)],  # the two valid 5x5 convolutions, before their pools
    "vit_tiny": [(96, 8)] * 6,  # the 6 blocks' patch tokens, 32 px / 4 px patches
}


@pytest.mark.parametrize("name", SHAPES)
def test_each_familys_maps_have_their_shapes(name):
    model = build(name)
    maps = model.forward_intermediates(torch.randn(2, *model.input_shape), intermediates_only=True)
    assert [(m.shape[1], m.shape[2]) for m in maps] == SHAPES[name]
    assert all(m.shape[2] == m.shape[3] for m in maps)


def test_indices_norm_output_format_and_stop_early_as_timm():
    model = build("vit_tiny", depth=3)
    x = torch.randn(2, *model.input_shape)
    every = model.forward_intermediates(x, intermediates_only=True)
    last_two = model.forward_intermediates(x, 2, intermediates_only=True)  # an int: the last n
    named = model.forward_intermediates(x, [0, -1], intermediates_only=True)  # negative from the end
    assert [torch.equal(a, b) for a, b in zip(last_two, every[1:])] == [True, True]
    assert torch.equal(named[0], every[0]) and torch.equal(named[1], every[2])
    tokens = model.forward_intermediates(x, [1], output_fmt="NLC", intermediates_only=True)[0]
    assert tokens.shape == (2, 64, 96) and torch.equal(tokens, every[1].flatten(2).transpose(1, 2))
    normed = model.forward_intermediates(x, [2], norm=True, intermediates_only=True)[0]  # the final LayerNorm on the map
    torch.testing.assert_close(normed, model.norm(every[2].flatten(2).transpose(1, 2)).transpose(1, 2).reshape(2, 96, 8, 8))
    calls = []
    model.blocks[2].register_forward_hook(lambda m, i, o: calls.append(1))
    model.forward_intermediates(x, [0], stop_early=True, intermediates_only=True)
    assert calls == []  # the blocks after the last map asked for do not run


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"indices": [4]}, "stage index 4 is out of range: this model has 4 stages"),
        ({"indices": [-5]}, "stage index -5 is out of range"),
        ({"indices": 0}, "indices=0 asks for the last 0 stages"),
        ({"indices": [1, 1]}, "name a stage twice"),
        ({"indices": []}, "indices is empty"),
        ({"indices": "layer1"}, "indices must be None, an int"),
        ({"output_fmt": "NHWC"}, "output_fmt must be one of"),
        ({"stop_early": True}, "pass intermediates_only=True"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    model = build("resnet20")
    with pytest.raises(ValueError, match=message):
        model.forward_intermediates(torch.randn(1, 3, 32, 32), **kwargs)


def test_the_input_is_checked_at_the_door():
    with pytest.raises(ValueError, match=r"expects input of shape \(B, C=3, H=32, W=32\)"):
        build("resnet20").forward_intermediates(torch.randn(1, 1, 28, 28))


def test_features_only_gives_the_chosen_maps_with_their_feature_info():
    torch.manual_seed(0)
    backbone = zoo.create_model("resnet20", features_only=True, out_indices=(1, 2, -1)).eval()
    model = backbone.model
    x = torch.randn(2, 3, 32, 32)
    maps = backbone(x)
    expected = model.forward_intermediates(x, [1, 2, 3], intermediates_only=True)
    assert [m.shape for m in maps] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert all(torch.equal(a, b) for a, b in zip(maps, expected))
    info = backbone.feature_info
    assert info.channels() == [16, 32, 64] and info.reduction() == [1, 2, 4]
    assert info.module_name() == ["layer1", "layer2", "layer3"] and info.channels(-1) == 64 and info.out_indices == [1, 2, 3]
    assert not any(n.startswith("model.head.") for n, _ in backbone.named_parameters())  # the head takes no part


def test_features_only_takes_the_shipped_weights():
    classifier = zoo.create_model("resnet20", pretrained="fashionmnist")
    backbone = zoo.create_model("resnet20", pretrained="fashionmnist", features_only=True).eval()
    x = torch.randn(2, 1, 28, 28)
    assert len(backbone(x)) == 4 and torch.equal(backbone(x)[-1], classifier.forward_intermediates(x, [3], intermediates_only=True)[0])


def test_features_only_of_a_vit_gives_maps():
    backbone = zoo.create_model("vit_tiny", features_only=True, out_indices=2)
    assert [m.shape for m in backbone(torch.randn(1, 3, 32, 32))] == [(1, 96, 8, 8)] * 2
    assert backbone.feature_info.module_name() == ["blocks.4", "blocks.5"] and backbone.feature_info.reduction() == [4, 4]


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("mlp", {"features_only": True}, "a MLP has no stages of feature maps"),
        ("lstm", {"features_only": True}, "has no stages of feature maps"),
        ("resnet20", {"out_indices": [1]}, "pass features_only=True"),
        ("resnet20", {"features_only": True, "out_indices": [0, 4]}, "stage index 4 is out of range: this model has 4 stages"),
        ("resnet18", {"features_only": True, "out_indices": 6, **REDUCED["resnet18"]}, "asks for the last 6 stages; this model has 5"),
        ("vit_tiny", {"features_only": True, "depth": 0}, "has no feature stages"),
    ],
)
def test_features_only_mistakes_are_clear_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **kwargs)
