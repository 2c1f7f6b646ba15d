"""ResNet: the CIFAR-style depths of the paper (6n + 2 layers, 16-32-64 channels), argument and input checks,
a frozen backbone. Parameter counts and full-size forwards of ResNet-18/50: test_imagenet_and_small_variants.py."""

import pytest
import torch

import zoo


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,count", [("resnet20", 272_474), ("resnet32", 466_906), ("resnet56", 855_770)])
def test_cifar_resnets_have_three_stages_of_16_32_64(name, count):
    model = zoo.create_model(name)
    assert n_params(model) == count  # with 1x1 projection shortcuts (option B of the paper)
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels, model.layer3[0].conv1.out_channels] == [16, 32, 64]
    assert len(model.layer1) == (int(name[6:]) - 2) // 6
    assert model.layer1[0].downsample is None and model.layer2[0].downsample[0].kernel_size == (1, 1)


def test_bad_block_and_input_size_are_clear_errors():
    with pytest.raises(ValueError, match="block must be one of"):
        zoo.ResNet(block="dense")
    with pytest.raises(ValueError, match="expects input of shape \\(B, C=3, H=224, W=224\\)"):
        zoo.create_model("resnet18")(torch.randn(1, 3, 32, 32))


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
