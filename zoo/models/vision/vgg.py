"""VGG (Simonyan and Zisserman, 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition").

One class for every configuration: depth 11, 13, 16 or 19, with or without batch norm, at ImageNet
size (7x7 pooled features, two 4096-wide layers) or for 28 and 32 px images (1x1 features, 512 wide).
Module names follow torchvision's (``features.<i>``, ``classifier.<i>``) except the last layer, ``head``.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage, sequential_stages
from zoo.core.image import ImageClassifier
from zoo.core.layers import init_conv_net
from zoo.core.registry import register_model

__all__ = ["VGG", "VGG_CONFIGS"]

# Convolution widths of the five stages per depth, as multiples of ``width``; "M" is a 2x2 max-pool.
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}


class VGG(ImageClassifier):
    """VGG: stacks of 3x3 convolutions (+ batch norm) and ReLU, five max-pools, three fully connected layers.

    The max-pools round up (``ceil_mode``), so 28 px images go 28 -> 14 -> 7 -> 4 -> 2 -> 1 and 224 px
    ones 224 -> ... -> 7 as usual; an adaptive average pool then brings the map to ``pool_size``.

    Args:
        depth: number of weight layers, 11, 13, 16 or 19.
        batch_norm: batch norm after every convolution (torchvision's ``vgg16_bn``).
        width: channels of the first stage; the stages have width x (1, 2, 4, 8, 8) (64 in the paper).
        pool_size: side of the pooled feature map the classifier reads (7 for ImageNet, 1 for small images).
        classifier_width: width of the two hidden fully connected layers (4096 in the paper).
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "features.0"

    def __init__(
        self,
        *,
        depth: int = 16,
        batch_norm: bool = False,
        width: int = 64,
        pool_size: int = 7,
        classifier_width: int = 4096,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if depth not in VGG_CONFIGS:
            raise ValueError(f"depth must be one of {tuple(VGG_CONFIGS)}, got {depth}")
        if self.image_size < 17:
            raise ValueError(f"VGG needs images of at least 17 px for its five max-pools, got image_size={self.image_size}")
        if min(width, pool_size, classifier_width) < 1:
            raise ValueError(f"width, pool_size and classifier_width must be >= 1, got {width}, {pool_size}, {classifier_width}")
        layers: list[nn.Module] = []
        channels = self.in_channels
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))  # (B, C, ceil(H/2), ceil(W/2))
                continue
            out = width * int(v)
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)  # (B, 8 width, H/32, W/32)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)  # (B, 8 width, pool, pool)
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool_size * pool_size, classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Linear(classifier_width, classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
        )
        self.head = nn.Linear(classifier_width, self.num_outputs)

        init_conv_net(self)  # torchvision's, but linear layers keep PyTorch's default (they learn faster)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, classifier_width), the last hidden fully connected layer."""
        x = self.avgpool(self.features(x)).flatten(1)  # (B, 8 width * pool^2)
        return self.classifier(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, 8 width, H/16, W/16), before the last max-pool -> (B, classifier_width)."""
        return self.classifier(self.avgpool(self.features[-1](x)).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The map before each of the five max-pools (as timm's VGG): strides 1, 2, 4, 8, 16."""
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        channels = [[m for m in self.features[:i] if isinstance(m, nn.Conv2d)][-1].out_channels for i in pools]
        return sequential_stages(self.features, "features", pools, channels, [2**k for k in range(len(pools))])


# -- variants -------------------------------------------------------------------------------------------
_IMAGENET = {"in_channels": 3, "image_size": 224, "num_classes": 1000, "dropout": 0.5}


def _imagenet_vgg(depth: int, batch_norm: bool, kwargs: dict) -> VGG:
    return VGG(**{**_IMAGENET, "depth": depth, "batch_norm": batch_norm, **kwargs})


@register_model("vgg11")
def vgg11(**kwargs) -> VGG:
    """VGG-11 (configuration A) for ImageNet; ``create_model(name, weights="IMAGENET1K_V1")`` loads torchvision's weights."""
    return _imagenet_vgg(11, False, kwargs)


@register_model("vgg11_bn")
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with batch norm for ImageNet."""
    return _imagenet_vgg(11, True, kwargs)


@register_model("vgg13")
def vgg13(**kwargs) -> VGG:
    """VGG-13 (configuration B) for ImageNet."""
    return _imagenet_vgg(13, False, kwargs)


@register_model("vgg13_bn")
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 with batch norm for ImageNet."""
    return _imagenet_vgg(13, True, kwargs)


@register_model("vgg16")
def vgg16(**kwargs) -> VGG:
    """VGG-16 (configuration D, 138.4 M parameters) for ImageNet."""
    return _imagenet_vgg(16, False, kwargs)


@register_model("vgg16_bn")
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with batch norm for ImageNet."""
    return _imagenet_vgg(16, True, kwargs)


@register_model("vgg19")
def vgg19(**kwargs) -> VGG:
    """VGG-19 (configuration E) for ImageNet."""
    return _imagenet_vgg(19, False, kwargs)


@register_model("vgg19_bn")
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 with batch norm for ImageNet."""
    return _imagenet_vgg(19, True, kwargs)


# Small images: half the paper's width, batch norm, 1x1 features and a 512-wide classifier.
_SMALL = {"batch_norm": True, "width": 32, "pool_size": 1, "classifier_width": 512, "image_size": 32, "dropout": 0.3}


@register_model("vgg11_small")
def vgg11_small(**kwargs) -> VGG:
    """VGG-11 for 28 and 32 px images (batch norm, half width)."""
    return VGG(**{**_SMALL, "depth": 11, **kwargs})


@register_model("vgg13_small")
def vgg13_small(**kwargs) -> VGG:
    """VGG-13 for 28 and 32 px images (batch norm, half width)."""
    return VGG(**{**_SMALL, "depth": 13, **kwargs})


@register_model("vgg16_small")
def vgg16_small(**kwargs) -> VGG:
    """VGG-16 for 28 and 32 px images (batch norm, half width)."""
    return VGG(**{**_SMALL, "depth": 16, **kwargs})
