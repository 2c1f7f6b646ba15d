"""DenseNet-BC (Huang et al., 2016, "Densely Connected Convolutional Networks"): ImageNet and small-image layouts.

Module names follow torchvision's ``models/densenet.py`` (``features.conv0``, ``features.denseblockN.denselayerM``,
``features.transitionN``, ``features.norm5``) except the classifier, which is ``head`` (timm's API), so
torchvision's ImageNet weights map one to one (their file's older ``norm.1`` / ``conv.1`` key names are
renamed by ``zoo.imagenet`` on loading, as torchvision does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier
from zoo.core.layers import init_conv_net
from zoo.core.registry import register_model

__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "Transition"]


class DenseLayer(nn.Module):
    """Bottleneck layer: BN-ReLU-1x1 conv to ``bn_size * growth_rate`` channels, BN-ReLU-3x3 conv to ``growth_rate``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))  # (B, bn_size k, H, W)
        out = self.conv2(self.relu2(self.norm2(out)))  # (B, k, H, W)
        return F.dropout(out, p=self.drop_rate, training=self.training) if self.drop_rate > 0 else out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each reads the concatenation of the block's input and every earlier layer's output."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate))
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))  # (B, k, H, W) from (B, C_in + i k, H, W)
        return torch.cat(features, 1)  # (B, C_in + L k, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv compressing the channels, then a 2x2 average pool halving the resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(ImageClassifier):
    """DenseNet-BC: a stem, dense blocks joined by compressing transitions, BN, ReLU, global average pool, linear head.

    ``stem="imagenet"``: 7x7/2 convolution, BN, ReLU and 3x3/2 max-pool (torchvision's densenet121).
    ``stem="cifar"``: one 3x3 convolution at full resolution (the paper's CIFAR/SVHN networks), so 28 px
    images go 28 -> 14 -> 7 through three blocks.

    Args:
        stem: "imagenet" (7x7/2 conv, BN, ReLU, max-pool) or "cifar" (3x3 conv).
        growth_rate: channels each dense layer adds (k in the paper).
        block_config: dense layers per block, e.g. [6, 12, 24, 16] (DenseNet-121) or [16, 16, 16] (BC-100).
        num_init_features: channels of the stem's convolution (2k in the paper's BC networks).
        bn_size: the bottleneck's width as a multiple of growth_rate (4 in the paper).
        compression: fraction of channels a transition keeps (0.5 in DenseNet-BC).
        drop_rate: dropout after each dense layer's 3x3 convolution.
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "features.conv0"

    def __init__(
        self,
        *,
        stem: str = "cifar",
        growth_rate: int = 12,
        block_config: list[int] = [16, 16, 16],  # noqa: B006  (never mutated; a list so the CLI shows it as one)
        num_init_features: int = 24,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if not block_config or min(block_config) < 1:
            raise ValueError(f"block_config needs >= 1 block of >= 1 layer, got {block_config}")
        if min(growth_rate, num_init_features, bn_size) < 1:
            raise ValueError(f"growth_rate, num_init_features and bn_size must be >= 1, got {growth_rate}, {num_init_features}, {bn_size}")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        size = self.image_size
        if stem == "imagenet":
            size = ((size - 1) // 2 + 1 - 1) // 2 + 1  # the 7x7/2 convolution, then the 3x3/2 max-pool
        if size >> (len(block_config) - 1) < 1:
            raise ValueError(f"image_size={self.image_size} is too small for {len(block_config)} blocks with stem={stem!r}")

        if stem == "imagenet":
            stem_layers = {
                "conv0": nn.Conv2d(self.in_channels, num_init_features, 7, stride=2, padding=3, bias=False),  # (B, C0, H/2, W/2)
                "norm0": nn.BatchNorm2d(num_init_features),
                "relu0": nn.ReLU(inplace=True),
                "pool0": nn.MaxPool2d(3, stride=2, padding=1),  # (B, C0, H/4, W/4)
            }
        else:
            stem_layers = {"conv0": nn.Conv2d(self.in_channels, num_init_features, 3, padding=1, bias=False)}  # (B, C0, H, W)
        self.features = nn.Sequential()
        for name, module in stem_layers.items():
            self.features.add_module(name, module)
        channels = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i}", block)
            channels = block.out_channels
            if i != len(block_config):
                out = int(channels * compression)
                self.features.add_module(f"transition{i}", Transition(channels, out))  # (B, out, H/2, W/2)
                channels = out
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, C, 1, 1)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(channels, self.num_outputs)

        init_conv_net(self, fan="fan_in", zero_linear_bias=True)  # torchvision's initialisation

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_features), the globally pooled, ReLU'd norm5 output."""
        return self.forward_neck(self.features(x))  # from (B, C, H', W')

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, C, H', W'), norm5's output -> (B, C): ReLU, global average pool, dropout."""
        return self.drop(self.avgpool(F.relu(x)).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The stem (before the ImageNet stem's max-pool), each dense block (before its transition), norm5 last."""
        f = self.features
        imagenet = hasattr(f, "pool0")
        blocks = sum(name.startswith("denseblock") for name, _ in f.named_children())
        stages = [self._stage(["conv0", "norm0", "relu0"] if imagenet else ["conv0"], f.conv0.out_channels, 2 if imagenet else 1)]
        stride = 4 if imagenet else 1
        for i in range(1, blocks + 1):
            before = [f"transition{i - 1}"] if i > 1 else (["pool0"] if imagenet else [])
            stride *= 2 if i > 1 else 1  # the transition's 2x2 average pool
            if i < blocks:
                stages.append(self._stage([*before, f"denseblock{i}"], getattr(f, f"denseblock{i}").out_channels, stride))
            else:
                stages.append(self._stage([*before, f"denseblock{i}", "norm5"], f.norm5.num_features, stride))
        return stages

    def _stage(self, names: list[str], channels: int, stride: int) -> FeatureStage:
        """The layers ``features.<names>`` in order, as one stage whose map is the last one's output."""
        run = nn.Sequential(*(getattr(self.features, n) for n in names))  # not registered: the layers stay where they are
        return FeatureStage(f"features.{names[-1]}", channels, stride, tuple(f"features.{n}" for n in names), run)


# -- variants -------------------------------------------------------------------------------------------
_IMAGENET = {"stem": "imagenet", "in_channels": 3, "image_size": 224, "num_classes": 1000}


@register_model("densenet121")
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 for ImageNet (k=32, blocks 6-12-24-16, 8.0 M parameters); ``create_model("densenet121", weights="IMAGENET1K_V1")``
    loads torchvision's weights."""
    config = {**_IMAGENET, "growth_rate": 32, "block_config": [6, 12, 24, 16], "num_init_features": 64}
    return DenseNet(**{**config, **kwargs})


@register_model("densenet_bc_100")
def densenet_bc_100(**kwargs) -> DenseNet:
    """DenseNet-BC with L=100, k=12 for 28 and 32 px images: three blocks of 16 bottleneck layers (0.8 M parameters)."""
    config = {"stem": "cifar", "growth_rate": 12, "block_config": [16, 16, 16], "num_init_features": 24, "image_size": 32}
    return DenseNet(**{**config, **kwargs})
