"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012, "ImageNet Classification with Deep Convolutional Neural Networks").

``AlexNet`` is torchvision's single-GPU version for 224 px ImageNet images (module names as torchvision's,
except the last layer, ``head``); ``AlexNetSmall`` keeps its shape (five convolutions with ReLU and
max-pools, three fully connected layers with dropout) for 28 and 32 px images.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage, sequential_stages
from zoo.core.image import ImageClassifier
from zoo.core.registry import register_model

__all__ = ["AlexNet", "AlexNetSmall"]


class AlexNet(ImageClassifier):
    """AlexNet for ImageNet: 11x11/4, 5x5 and three 3x3 convolutions, three max-pools, 6x6 pooled features, three FC layers.

    Args:
        classifier_width: width of the two hidden fully connected layers (4096 in the paper).
        **kwargs: ``ImageClassifier``'s arguments: ``image_size`` 224 (at least 63, for the three max-pools),
            ``dropout`` before the two hidden fully connected layers (0.5 in the paper), ...
    """

    stem_conv = "features.0"

    def __init__(self, *, classifier_width: int = 4096, **kwargs) -> None:
        kwargs = {"in_channels": 3, "image_size": 224, "num_classes": 1000, "dropout": 0.5, **kwargs}
        super().__init__(**kwargs)
        if self.image_size < 63:
            raise ValueError(f"AlexNet needs images of at least 63 px, got image_size={self.image_size}; use alexnet_small")
        if classifier_width < 1:
            raise ValueError(f"classifier_width must be >= 1, got {classifier_width}")
        self.features = nn.Sequential(
            nn.Conv2d(self.in_channels, 64, 11, stride=4, padding=2),  # (B, 64, 55, 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),  # (B, 64, 27, 27)
            nn.Conv2d(64, 192, 5, padding=2),  # (B, 192, 27, 27)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),  # (B, 192, 13, 13)
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),  # (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),  # (B, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)  # (B, 256, 6, 6) at any input size
        self.classifier = nn.Sequential(
            nn.Dropout(self.dropout),
            nn.Linear(256 * 6 * 6, classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Linear(classifier_width, classifier_width),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(classifier_width, self.num_outputs)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, classifier_width)."""
        return self.classifier(self.avgpool(self.features(x)).flatten(1))

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, 256, 13, 13), before the last max-pool -> (B, classifier_width)."""
        return self.classifier(self.avgpool(self.features[12:](x)).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The maps before the three max-pools: (B, 64, 55, 55), (B, 192, 27, 27), (B, 256, 13, 13) at 224 px."""
        return sequential_stages(self.features, "features", [2, 5, 12], [64, 192, 256], [4, 8, 16])


class AlexNetSmall(ImageClassifier):
    """AlexNet's shape for 28 and 32 px images: five 3x3 convolutions with ReLU, three 2x2 max-pools, three FC layers.

    Args:
        channels: output channels of the five convolutions.
        hidden_size: width of the two hidden fully connected layers.
        **kwargs: ``ImageClassifier``'s arguments: ``image_size`` 28 or 32 (any size from 8 px works),
            ``dropout`` before the two hidden fully connected layers, ...
    """

    stem_conv = "features.0"

    def __init__(
        self,
        *,
        channels: list[int] = [48, 128, 192, 192, 128],  # noqa: B006
        hidden_size: int = 512,
        **kwargs,
    ) -> None:
        kwargs = {"in_channels": 1, "image_size": 28, "dropout": 0.5, **kwargs}
        super().__init__(**kwargs)
        if len(channels) != 5 or min(channels) < 1:
            raise ValueError(f"channels needs 5 entries >= 1 (one per convolution), got {channels}")
        if hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        if self.image_size < 8:
            raise ValueError(f"AlexNetSmall needs images of at least 8 px, got image_size={self.image_size}")
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            nn.Conv2d(self.in_channels, c1, 3, padding=1),  # (B, c1, S, S)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, c1, S/2, S/2)
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, c2, S/4, S/4)
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, c5, S/8, S/8): 3x3 for 28 px, 4x4 for 32 px
        )
        side = self.image_size // 8
        self.classifier = nn.Sequential(
            nn.Dropout(self.dropout),
            nn.Linear(c5 * side * side, hidden_size),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden_size, self.num_outputs)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, hidden_size)."""
        return self.classifier(self.features(x).flatten(1))

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, c5, S/4, S/4), before the last max-pool -> (B, hidden_size)."""
        return self.classifier(self.features[12:](x).flatten(1))

    def feature_stages(self) -> list[FeatureStage]:
        """The maps before the three max-pools: (B, c1, S, S), (B, c2, S/2, S/2), (B, c5, S/4, S/4)."""
        channels = [self.features[i].out_channels for i in (0, 3, 10)]
        return sequential_stages(self.features, "features", [2, 5, 12], channels, [1, 2, 4])


@register_model("alexnet")
def alexnet(**kwargs) -> AlexNet:
    """AlexNet for ImageNet (61.1 M parameters); ``create_model(name, weights="IMAGENET1K_V1")`` loads torchvision's weights."""
    return AlexNet(**kwargs)


@register_model("alexnet_small")
def alexnet_small(**kwargs) -> AlexNetSmall:
    """AlexNet's shape for 28 and 32 px images."""
    return AlexNetSmall(**kwargs)
