"""Wide residual networks (Zagoruyko & Komodakis, 2016, "Wide Residual Networks"): WRN-d-k for 28/32 px images.

A 3x3 stem of 16 channels, then three stages of (d - 4) / 6 pre-activation basic blocks of 16k, 32k and 64k
channels (the second and third halve the resolution), a final BN-ReLU, global average pooling and a linear
head. Each block is BN-ReLU-conv3x3, dropout, BN-ReLU-conv3x3 (the paper's B(3, 3) with dropout between the
convolutions); where the shape changes the shortcut is a 1x1 convolution of the pre-activated input, as in
the authors' code. WRN-28-10 has 36.5 M parameters and WRN-16-4 2.7 M (CIFAR-10, Table 1 of the paper).
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier
from zoo.core.layers import init_conv_net
from zoo.core.registry import register_model

__all__ = ["WideBasicBlock", "WideResNet"]


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3(stride), dropout, BN-ReLU-conv3x3, plus the (projected) input."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        # 1x1 projection where the width or the resolution changes; identity otherwise.
        self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False) if stride != 1 or in_planes != planes else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))  # (B, in, H, W)
        identity = x if self.shortcut is None else self.shortcut(pre)  # (B, planes, H/s, W/s)
        out = self.conv1(pre)  # (B, planes, H/s, W/s)
        out = self.conv2(self.drop(self.relu(self.bn2(out))))
        return out + identity


class WideResNet(ImageClassifier):
    """WRN-d-k: three stages of (d - 4) / 6 wide pre-activation blocks, widths 16k, 32k, 64k; see the module docstring.

    Args:
        depth: d, the number of convolution layers plus the head: 6n + 4 (10, 16, 22, 28, 40, ...).
        widen_factor: k, the width multiplier of the three stages (1 is a pre-activation ResNet).
        block_dropout: dropout between the two convolutions of every block (the paper uses 0.3).
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "conv1"

    def __init__(self, *, depth: int = 16, widen_factor: int = 4, block_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
        if not 0.0 <= block_dropout < 1.0:
            raise ValueError(f"block_dropout must be in [0, 1), got {block_dropout}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(self.in_channels, 16, 3, padding=1, bias=False)  # (B, 16, H, W)
        in_planes = 16
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            blocks = [WideBasicBlock(in_planes if j == 0 else width, width, stride if j == 0 else 1, block_dropout) for j in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))  # (B, width, H_i, W_i)
            in_planes = width
        self.bn = nn.BatchNorm2d(widths[-1])  # the last block ends on a convolution: one more BN-ReLU before pooling
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 64k, 1, 1)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(widths[-1], self.num_outputs)

        init_conv_net(self, zero_linear_bias=True)  # the authors' initialisation

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 64k), the globally pooled last stage."""
        x = self.conv1(x)  # (B, 16, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 64k, H/4, W/4)
        x = self.relu(self.bn(x))
        return self.forward_neck(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, 64k, H', W') -> (B, 64k): global average pool, dropout."""
        return self.drop(self.avgpool(x).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The stem convolution, layer1, layer2, then layer3 with the final BN-ReLU (its blocks end on a convolution)."""
        return [
            FeatureStage("conv1", self.conv1.out_channels, 1, ("conv1",), self.conv1),
            FeatureStage("layer1", self.layer1[-1].conv2.out_channels, 1, ("layer1",), self.layer1),
            FeatureStage("layer2", self.layer2[-1].conv2.out_channels, 2, ("layer2",), self.layer2),
            FeatureStage("relu", self.bn.num_features, 4, ("layer3", "bn"), lambda x: self.relu(self.bn(self.layer3(x)))),
        ]


register_model("wide_resnet")(WideResNet)


# -- variants -------------------------------------------------------------------------------------------
@register_model("wrn16_4")
def wrn16_4(**kwargs) -> WideResNet:
    """WRN-16-4 (2.7 M parameters): two blocks per stage, widths 64, 128, 256."""
    return WideResNet(**{"depth": 16, "widen_factor": 4, **kwargs})


@register_model("wrn28_10")
def wrn28_10(**kwargs) -> WideResNet:
    """WRN-28-10 (36.5 M parameters): four blocks per stage, widths 160, 320, 640, dropout 0.3 between convolutions."""
    return WideResNet(**{"depth": 28, "widen_factor": 10, "block_dropout": 0.3, **kwargs})
