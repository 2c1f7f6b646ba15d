"""Wide ResNet: parameter counts against the paper, the pre-activation block with dropout between its
convolutions, the stage layout of WRN-d-k, argument checks, and the recipe through the CLI (at a small
depth and width: the recipe's WRN-28-10 is a GPU job; its own fast_dev_run is in tests/test_cli.py, -m slow).

The generic classifier tests (tests/test_models.py) run "wide_resnet", "wrn16_4" and "wrn28_10" narrow.
"""

from pathlib import Path

import pytest
import torch
from torch import nn

import zoo
from zoo.models.vision.wide_resnet import WideBasicBlock, WideResNet

REPO = Path(__file__).resolve().parents[3]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, exact, paper",
    # CIFAR-10 models as in the paper's Table 1 / Table 4 (3 input channels, 10 classes); the exact figures are
    # those of the authors' code and of its common PyTorch port.
    [("wrn28_10", 36_479_194, 36.5e6), ("wrn16_4", 2_748_890, 2.7e6)],
)
def test_parameter_counts_match_the_paper(name, exact, paper):
    with torch.device("meta"):  # the layers' shapes without allocating 36.5 M weights
        model = zoo.create_model(name, in_channels=3, num_classes=10)
    assert count(model) == exact
    assert round(count(model) / 1e5) * 1e5 == pytest.approx(paper)


@pytest.mark.parametrize("depth, widen_factor", [(10, 1), (16, 2), (22, 3)])
def test_stages_have_depth_minus_4_over_6_blocks_of_16k_32k_64k(depth, widen_factor):
    model = WideResNet(depth=depth, widen_factor=widen_factor, in_channels=1, image_size=28)
    n = (depth - 4) // 6
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 6 * n + 1 == depth - 3  # the stem and two per block; d also counts two projections and the head
    for i, width in enumerate([16 * widen_factor, 32 * widen_factor, 64 * widen_factor], start=1):
        stage = getattr(model, f"layer{i}")
        assert len(stage) == n and all(isinstance(b, WideBasicBlock) for b in stage)
        assert all(b.conv2.out_channels == width for b in stage)
        # a 1x1 projection only where the shape changes: the first block of a stage (of stage 1 only if k > 1)
        projections = [b.shortcut is not None for b in stage]
        assert projections == [i > 1 or widen_factor > 1] + [False] * (n - 1)
        assert all(b.shortcut.kernel_size == (1, 1) for b in stage if b.shortcut is not None)
    x = torch.randn(2, 1, 28, 28)
    assert model.forward_features(x).shape == (2, 64 * widen_factor) and model(x).shape == (2, 10)


def test_block_is_bn_relu_conv_dropout_bn_relu_conv_plus_projection():
    torch.manual_seed(0)
    block = WideBasicBlock(8, 16, stride=2, dropout=0.5)
    for bn in (block.bn1, block.bn2):  # non-trivial batch-norm statistics
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    block.eval()
    x = torch.randn(3, 8, 10, 10)
    pre = torch.relu(block.bn1(x))
    expected = block.conv2(torch.relu(block.bn2(block.conv1(pre)))) + block.shortcut(pre)
    with torch.no_grad():
        assert torch.allclose(block(x), expected, atol=1e-5)
    # training: dropout acts on the activations between the two convolutions, and on nothing else
    seen = []
    block.drop.register_forward_hook(lambda m, i, o: seen.append((i[0].shape, (o[i[0] != 0] == 0).float().mean().item())))
    block.train()(x)
    assert len(seen) == 1 and seen[0][0] == (3, 16, 5, 5)  # the first convolution's output (stride 2, 16 channels)
    assert 0.4 < seen[0][1] < 0.6  # half of the non-zero activations dropped


def test_identity_shortcut_adds_the_input_itself():
    block = WideBasicBlock(16, 16).eval()
    nn.init.zeros_(block.conv2.weight)  # the residual branch is 0: the block is the identity
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_variants_are_configuration():
    assert zoo.get_model_class("wrn28_10") is zoo.get_model_class("wide_resnet") is WideResNet
    with torch.device("meta"):
        model = zoo.create_model("wrn28_10")
    assert (model.hparams.depth, model.hparams.widen_factor, model.hparams.block_dropout) == (28, 10, 0.3)
    assert zoo.create_model("wrn16_4", widen_factor=1).hparams.widen_factor == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [({"depth": 12}, "depth must be 6n"), ({"depth": 4}, "depth must be 6n"), ({"widen_factor": 0}, "widen_factor"),
     ({"block_dropout": 1.0}, "block_dropout")],
)  # fmt: skip
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WideResNet(**kwargs)


def test_recipe_runs_at_a_small_size_with_random_erasing(tmp_path, vision_root, monkeypatch):
    """configs/wide_resnet_fashionmnist.yaml through the CLI as WRN-10-1: its data options (random erasing) and
    optimizer reach the objects they configure."""
    from zoo.training.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))
    cli = main(["fit", "--config", str(REPO / "configs" / "wide_resnet_fashionmnist.yaml"), "--trainer.fast_dev_run=true",
                "--model.init_args.depth=10", "--model.init_args.widen_factor=1", "--data.init_args.batch_size=16"])  # fmt: skip
    assert isinstance(cli.model, WideResNet) and cli.model.hparams.block_dropout == 0.3
    assert cli.datamodule.random_erasing == 0.5 and cli.datamodule.random_crop_padding == 4
    assert cli.trainer.state.finished and "test/acc" in cli.trainer.callback_metrics
