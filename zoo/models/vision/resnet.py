"""ResNet (He et al., 2015, "Deep Residual Learning for Image Recognition"): ImageNet and CIFAR layouts.

Module names follow torchvision's ``models/resnet.py`` (``conv1``, ``bn1``, ``layer1`` ... ``downsample``),
except the classifier, which is ``head`` (timm's API), so torchvision's ImageNet weights map one to one.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier
from zoo.core.layers import init_conv_net
from zoo.core.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


def conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut; ResNet-18/34 and the CIFAR nets."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, planes, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's "ResNet v1.5"), 1x1 expand by 4; ResNet-50."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, 4 planes, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(ImageClassifier):
    """Residual network: a stem, stages of residual blocks built by ``_make_layer``, global average pool, linear head.

    ``stem="imagenet"``: 7x7/2 convolution and 3x3/2 max-pool, four stages (ResNet-18/34/50).
    ``stem="cifar"``: one 3x3 convolution, no pooling, three stages of 16, 32 and 64 channels (ResNet-20/32/56).
    The first block of a stage halves the resolution (except stage 1); when the shape changes the shortcut
    is a 1x1 projection with batch norm. Global average pooling makes any ``image_size`` work.

    Args:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1 with 4x expansion).
        layers: blocks per stage, e.g. [2, 2, 2, 2] (ResNet-18) or [3, 3, 3] (ResNet-20).
        widths: channels of each stage's blocks (before the bottleneck's expansion), one per stage.
        stem: "imagenet" (7x7/2 conv + max-pool) or "cifar" (3x3 conv).
        zero_init_residual: start each block's last batch-norm scale at 0, so blocks start as identities.
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "conv1"

    def __init__(
        self,
        *,
        block: str = "basic",
        layers: list[int] = [3, 3, 3],  # noqa: B006  (never mutated; a list so the CLI shows it as one)
        widths: list[int] = [16, 32, 64],  # noqa: B006
        stem: str = "cifar",
        zero_init_residual: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {tuple(_BLOCKS)}, got {block!r}")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers and widths need one entry per stage, got {layers} and {widths}")
        if min(layers) < 1 or min(widths) < 1:
            raise ValueError(f"every stage needs >= 1 block (layers) of >= 1 channel (widths), got layers={layers}, widths={widths}")
        block_cls = _BLOCKS[block]
        self.in_planes = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(self.in_channels, widths[0], 7, stride=2, padding=3, bias=False)  # (B, w0, H/2, W/2)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)  # (B, w0, H/4, W/4)
        else:
            self.conv1 = nn.Conv2d(self.in_channels, widths[0], 3, padding=1, bias=False)  # (B, w0, H, W)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        for i, (n, width) in enumerate(zip(layers, widths), start=1):
            setattr(self, f"layer{i}", self._make_layer(block_cls, width, n, stride=1 if i == 1 else 2))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, C, 1, 1)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(widths[-1] * block_cls.expansion, self.num_outputs)

        init_conv_net(self)  # torchvision's initialisation
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:  # shape changes: 1x1 projection shortcut
            downsample = nn.Sequential(conv1x1(self.in_planes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_features), the globally pooled last stage."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)  # (B, w_i, H_i, W_i)
        return self.forward_neck(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, C_last, H', W') -> (B, C_last): global average pool, dropout."""
        return self.drop(self.avgpool(x).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The stem (before the max-pool, as timm's ResNet), then each stage of residual blocks."""
        imagenet = isinstance(self.maxpool, nn.MaxPool2d)
        stride = 2 if imagenet else 1
        stages = [FeatureStage("relu", self.conv1.out_channels, stride, ("conv1", "bn1"), lambda x: self.relu(self.bn1(self.conv1(x))))]
        for i in range(1, self.num_stages + 1):
            layer = getattr(self, f"layer{i}")
            stride *= 2 if (i > 1 or imagenet) else 1  # the max-pool, then the first block of stages 2, 3, ...
            last = layer[-1]
            channels = (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features
            run = (lambda x, layer=layer: layer(self.maxpool(x))) if i == 1 else layer
            stages.append(FeatureStage(f"layer{i}", channels, stride, (f"layer{i}",), run))
        return stages


# -- variants -------------------------------------------------------------------------------------------
_IMAGENET = {"stem": "imagenet", "widths": [64, 128, 256, 512], "in_channels": 3, "image_size": 224, "num_classes": 1000}


@register_model("resnet18")
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 for ImageNet (11.7 M parameters); ``create_model(name, weights="IMAGENET1K_V1")`` loads torchvision's weights."""
    return ResNet(**{**{**_IMAGENET, "block": "basic", "layers": [2, 2, 2, 2]}, **kwargs})


@register_model("resnet34")
def resnet34(**kwargs) -> ResNet:
    """ResNet-34 for ImageNet (21.8 M parameters); ``create_model(name, weights="IMAGENET1K_V1")`` loads torchvision's weights."""
    return ResNet(**{**{**_IMAGENET, "block": "basic", "layers": [3, 4, 6, 3]}, **kwargs})


@register_model("resnet50")
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 for ImageNet (25.6 M parameters); ``create_model("resnet50", weights="IMAGENET1K_V1")`` or ``"IMAGENET1K_V2"``."""
    return ResNet(**{**{**_IMAGENET, "block": "bottleneck", "layers": [3, 4, 6, 3]}, **kwargs})


def _cifar_resnet(depth: int, kwargs: dict) -> ResNet:
    n = (depth - 2) // 6  # 6n + 2 layers: three stages of n two-conv blocks, plus the stem and the head
    defaults = {"block": "basic", "layers": [n, n, n], "widths": [16, 32, 64], "stem": "cifar", "image_size": 32}
    return ResNet(**{**defaults, **kwargs})


@register_model("resnet20")
def resnet20(**kwargs) -> ResNet:
    """CIFAR-style ResNet-20 (three stages of 3 blocks; 16, 32, 64 channels)."""
    return _cifar_resnet(20, kwargs)


@register_model("resnet32")
def resnet32(**kwargs) -> ResNet:
    """CIFAR-style ResNet-32 (three stages of 5 blocks)."""
    return _cifar_resnet(32, kwargs)


@register_model("resnet56")
def resnet56(**kwargs) -> ResNet:
    """CIFAR-style ResNet-56 (three stages of 9 blocks)."""
    return _cifar_resnet(56, kwargs)
