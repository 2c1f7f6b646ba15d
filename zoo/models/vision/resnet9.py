"""ResNet-9 (Page, 2018, "How to train your ResNet"): the DAWNBench network that trains CIFAR-10 to 94% fastest.

Eight convolutions and a linear head, each convolution followed by batch norm and ReLU:

    prep    conv w0                                     (B, w0, H, W)
    layer1  conv w1, max-pool 2, residual(2 x conv w1)  (B, w1, H/2, W/2)
    layer2  conv w2, max-pool 2                         (B, w2, H/4, W/4)
    layer3  conv w3, max-pool 2, residual(2 x conv w3)  (B, w3, H/8, W/8)
    global max-pool, linear, logits x ``logit_scale``   (B, num_classes)

``resnet9`` is Page's network (widths 64-128-256-512, logits scaled by 0.125). ``resnet9_fast`` is the same
layout a quarter as wide with a 2x2 max-pool right after ``prep`` (``stem_pool``), so every later layer runs
on a quarter of the pixels: about 3.8 M multiply-adds per 28 px image against 17 M without the pool and
ResNet-20's 31 M (torch.utils.flop_counter). It is the network of the fast Fashion-MNIST recipes (configs/resnet9_fast_fashionmnist_*.yaml).
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier
from zoo.core.registry import register_model

__all__ = ["ConvBNReLU", "Residual", "ResNet9"]


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (no bias: the batch norm's shift replaces it), batch norm, ReLU; size kept."""

    def __init__(self, in_planes: int, planes: int) -> None:
        super().__init__(nn.Conv2d(in_planes, planes, 3, padding=1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """x + conv(conv(x)): two ConvBNReLU of the same width around an identity shortcut."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(planes, planes)
        self.conv2 = ConvBNReLU(planes, planes)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))  # (B, planes, H, W)


class ResNet9(ImageClassifier):
    """ResNet-9: prep, three layers (the first and last with a residual pair), global max-pool, linear head.

    Args:
        widths: channels of prep, layer1, layer2 and layer3 (Page: 64, 128, 256, 512).
        stem_pool: a 2x2 max-pool after prep, so layer1 onwards run at half the resolution (4x fewer
            multiply-adds; the 28 px recipes' choice). The input side must be at least 16 px with it, 8 without.
        logit_scale: the head's logits are multiplied by this (Page: 0.125, which keeps the early softmax soft
            under the large learning rates these recipes use).
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "prep.0"

    def __init__(
        self,
        *,
        widths: list[int] = [64, 128, 256, 512],  # noqa: B006  (never mutated; a list so the CLI shows it as one)
        stem_pool: bool = False,
        logit_scale: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths needs 4 positive channel counts (prep, layer1, layer2, layer3), got {widths}")
        if logit_scale <= 0:
            raise ValueError(f"logit_scale must be > 0, got {logit_scale}")
        smallest = 16 if stem_pool else 8  # three (four) halvings must leave at least one pixel
        if self.image_size < smallest:
            raise ValueError(f"ResNet9 needs image_size >= {smallest} (stem_pool={stem_pool}), got {self.image_size}")
        w0, w1, w2, w3 = widths
        self.logit_scale = logit_scale
        self.prep = ConvBNReLU(self.in_channels, w0)  # (B, w0, H, W)
        self.stem_pool = nn.MaxPool2d(2) if stem_pool else nn.Identity()  # (B, w0, H/2, W/2) with it
        self.layer1 = nn.Sequential(ConvBNReLU(w0, w1), nn.MaxPool2d(2), Residual(w1))  # (B, w1, H/2, W/2)
        self.layer2 = nn.Sequential(ConvBNReLU(w1, w2), nn.MaxPool2d(2))  # (B, w2, H/4, W/4)
        self.layer3 = nn.Sequential(ConvBNReLU(w2, w3), nn.MaxPool2d(2), Residual(w3))  # (B, w3, H/8, W/8)
        self.pool = nn.AdaptiveMaxPool2d(1)  # (B, w3, 1, 1)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(w3, self.num_outputs)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, w3), the globally max-pooled last layer."""
        x = self.stem_pool(self.prep(x))
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, w3, H/8, W/8), or H/16 with stem_pool
        return self.forward_neck(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, w3, H', W') -> (B, w3): global max-pool, dropout."""
        return self.drop(self.pool(x).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """prep (before the stem pool), layer1, layer2, layer3."""
        s = 2 if isinstance(self.stem_pool, nn.MaxPool2d) else 1
        w = [self.prep[0].out_channels, self.layer1[0][0].out_channels, self.layer2[0][0].out_channels, self.layer3[0][0].out_channels]
        return [
            FeatureStage("prep", w[0], 1, ("prep",), self.prep),
            FeatureStage("layer1", w[1], 2 * s, ("layer1",), lambda x: self.layer1(self.stem_pool(x))),
            FeatureStage("layer2", w[2], 4 * s, ("layer2",), self.layer2),
            FeatureStage("layer3", w[3], 8 * s, ("layer3",), self.layer3),
        ]

    def forward_head(self, features: Tensor) -> Tensor:
        """(B, w3) -> (B, num_outputs) logits, scaled by ``logit_scale``."""
        return self.head(features) * self.logit_scale


# -- variants -------------------------------------------------------------------------------------------
@register_model("resnet9")
def resnet9(**kwargs) -> ResNet9:
    """Page's ResNet-9 for 32 px images (6.6 M parameters with 3 input channels)."""
    return ResNet9(**{"widths": [64, 128, 256, 512], "logit_scale": 0.125, "image_size": 32, **kwargs})


@register_model("resnet9_fast")
def resnet9_fast(**kwargs) -> ResNet9:
    """ResNet-9 a quarter as wide (16-32-64-128) with a max-pool after prep: the fast CPU recipes' network."""
    return ResNet9(**{"widths": [16, 32, 64, 128], "stem_pool": True, "image_size": 28, "in_channels": 1, **kwargs})
