"""GoogLeNet (Szegedy et al., 2014, "Going Deeper with Convolutions"): Inception v1, ImageNet and small-image layouts.

Module names follow torchvision's ``models/googlenet.py`` (``conv1`` ... ``inception5b``, ``branch1`` ...
``branch4``) except the classifier, which is ``head`` (timm's API), so torchvision's ImageNet weights map
one to one. The auxiliary classifiers of the paper are left out: this is torchvision's inference model
(``aux_logits=False``, 6,624,904 parameters); their keys in torchvision's file are dropped on loading.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier, adapt_channel_stats
from zoo.core.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from zoo.core.registry import register_model

__all__ = ["BasicConv2d", "GoogLeNet", "Inception", "INCEPTION_CONFIG"]


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm (eps 1e-3, as the weights ported from the paper's model) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four parallel branches concatenated along channels, all keeping the resolution:

    1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 3x3 (the paper's "5x5" branch: torchvision's layout, and the file
    ported from the paper's model, use a 3x3 kernel there, kept so those weights load); 3x3 max-pool -> 1x1.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]  # (B, c_i, H, W) each
        return torch.cat(branches, 1)  # (B, out_channels, H, W)


# The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj of every Inception module.
INCEPTION_CONFIG: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
_MAXPOOL_AFTER = {"inception3b": "maxpool3", "inception4e": "maxpool4"}


class GoogLeNet(ImageClassifier):
    """Inception v1: a stem, nine Inception modules in three stages split by max-pools, global average pool, linear head.

    ``stem="imagenet"``: 7x7/2 convolution, max-pool, 1x1 and 3x3 convolutions, max-pool (224 px -> 28 px), then
    max-pools after inception3b and inception4e (28 -> 14 -> 7), as torchvision's ``googlenet``.
    ``stem="cifar"``: one 3x3 convolution at full resolution (no pooling), so a 28 or 32 px image keeps its
    size through inception3a/3b and the two max-pools bring it to 14 and 7 (or 16 and 8).

    Args:
        stem: "imagenet" (7x7/2 conv, two max-pools) or "cifar" (3x3 conv, full resolution).
        width: multiplier of every convolution's channels (1.0: the paper's widths; each rounded, at least 1).
        transform_input: the input is ImageNet-normalized and is turned into the (x - 0.5) / 0.5 scale the
            weights ported from the paper's model read, per channel, as torchvision's pretrained googlenet does.
        **kwargs: ``ImageClassifier``'s arguments: ``dropout`` before the linear head (0.2 in torchvision's
            ImageNet model), ``in_channels``, ``image_size``, ``freeze_backbone``, ...
    """

    stem_conv = "conv1.conv"

    def __init__(self, *, stem: str = "cifar", width: float = 1.0, transform_input: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        min_size = 15 if stem == "imagenet" else 4  # what the max-pools need (torchvision's min_size: 15)
        if self.image_size < min_size:
            raise ValueError(f"GoogLeNet with stem={stem!r} needs image_size >= {min_size}, got {self.image_size}")
        self.transform_input = transform_input

        def ch(c: int) -> int:
            return max(1, round(c * width))

        if stem == "imagenet":
            self.conv1 = BasicConv2d(self.in_channels, ch(64), 7, stride=2, padding=3)  # (B, 64, H/2, W/2)
            self.maxpool1: nn.Module = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (B, 64, H/4, W/4)
            self.conv2: nn.Module = BasicConv2d(ch(64), ch(64), 1)
            self.conv3: nn.Module = BasicConv2d(ch(64), ch(192), 3, padding=1)  # (B, 192, H/4, W/4)
            self.maxpool2: nn.Module = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (B, 192, H/8, W/8)
        else:
            self.conv1 = BasicConv2d(self.in_channels, ch(192), 3, padding=1)  # (B, 192, H, W)
            self.maxpool1, self.conv2, self.conv3, self.maxpool2 = nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity()
        channels = ch(192)
        for name, config in INCEPTION_CONFIG.items():
            block = Inception(channels, *(ch(c) for c in config))
            setattr(self, name, block)
            channels = block.out_channels
            if name in _MAXPOOL_AFTER:  # 3x3/2 after 3b, 2x2/2 after 4e, as torchvision's
                size = 3 if name == "inception3b" else 2
                setattr(self, _MAXPOOL_AFTER[name], nn.MaxPool2d(size, stride=2, ceil_mode=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 1024, 1, 1)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(channels, self.num_outputs)

        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        """ImageNet-normalized (x - mean) / std -> (x - 0.5) / 0.5, channel by channel (torchvision's arithmetic)."""
        mean, std = adapt_channel_stats(list(IMAGENET_MEAN), list(IMAGENET_STD), x.shape[1])
        channels = [x[:, c : c + 1] * (s / 0.5) + (m - 0.5) / 0.5 for c, (m, s) in enumerate(zip(mean, std))]
        return torch.cat(channels, 1)  # (B, C, H, W)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_features), the globally pooled inception5b output."""
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))  # (B, 192, H', W')
        for name in INCEPTION_CONFIG:
            x = getattr(self, name)(x)
            if name in _MAXPOOL_AFTER:
                x = getattr(self, _MAXPOOL_AFTER[name])(x)  # (B, C, H'/2, W'/2)
        return self.forward_neck(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, 1024, H', W'), inception5b's output -> (B, 1024): global average pool, dropout."""
        return self.drop(self.avgpool(x).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The last map at each resolution: the stem (before its last max-pool), inception3b, 4e and 5b (before the max-pools)."""
        imagenet = isinstance(self.maxpool1, nn.MaxPool2d)

        def stem(x: Tensor) -> Tensor:
            x = self._transform_input(x) if self.transform_input else x
            return self.conv3(self.conv2(self.maxpool1(self.conv1(x))))  # (B, 192, H/4, W/4) or (B, 192, H, W)

        groups = {"maxpool2": ["inception3a", "inception3b"], "maxpool3": ["inception4a", "inception4b", "inception4c", "inception4d", "inception4e"],
                  "maxpool4": ["inception5a", "inception5b"]}  # fmt: skip
        stride = 4 if imagenet else 1
        stem_channels = self.inception3a.branch1.conv.in_channels  # 192 at width 1
        stages = [FeatureStage("conv3" if imagenet else "conv1", stem_channels, stride, ("conv1", "conv2", "conv3"), stem)]
        for pool, names in groups.items():
            stride *= 2 if (imagenet or pool != "maxpool2") else 1
            run = nn.Sequential(getattr(self, pool), *(getattr(self, n) for n in names))  # not registered: the layers stay where they are
            stages.append(FeatureStage(names[-1], getattr(self, names[-1]).out_channels, stride, tuple(names), run))
        return stages


# -- variants -------------------------------------------------------------------------------------------
_IMAGENET = {"stem": "imagenet", "in_channels": 3, "image_size": 224, "num_classes": 1000, "dropout": 0.2}


@register_model("googlenet")
def googlenet(**kwargs) -> GoogLeNet:
    """GoogLeNet for ImageNet (6.6 M parameters, no auxiliary heads); ``create_model("googlenet", weights="IMAGENET1K_V1")``
    loads torchvision's weights and, as torchvision does for them, ``transform_input=True``."""
    defaults = {**_IMAGENET, "transform_input": False}
    return GoogLeNet(**{**defaults, **kwargs})


@register_model("googlenet_small")
def googlenet_small(**kwargs) -> GoogLeNet:
    """GoogLeNet for 28 and 32 px images: a 3x3 stem at full resolution, a quarter of the paper's widths (0.4 M parameters)."""
    return GoogLeNet(**{"stem": "cifar", "width": 0.25, "image_size": 32, "dropout": 0.2, **kwargs})
