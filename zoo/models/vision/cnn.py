"""SimpleCNN: the small two-convolution network of the notes' Fashion-MNIST example."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage, sequential_stages
from zoo.core.image import ImageClassifier
from zoo.core.registry import register_model

__all__ = ["SimpleCNN"]


@register_model("simple_cnn")
class SimpleCNN(ImageClassifier):
    """conv 10@5x5 -> max-pool -> ReLU -> conv 20@5x5 -> dropout -> max-pool -> ReLU -> fc 50 -> dropout -> classes.

    Works for any square image of side >= 16 (two 5x5 convolutions, each followed by a 2x2 pool); 28x28
    gives 320 features before the fc layer, 32x32 gives 500.
    ``channels`` and ``hidden_size`` widen it (``[32, 64]``, 128: the 2-conv nets of the Fashion-MNIST benchmark).

    Args:
        in_channels: image channels.
        image_size: side of the square input.
        dropout: dropout probability, applied channel-wise after the second conv and element-wise after the fc layer.
        channels: output channels of the two 5x5 convolutions.
        hidden_size: width of the fully connected layer before the head.
        **kwargs: ``ImageClassifier``'s other arguments (normalization, class names, ...) and ``ClassifierModule``'s.
    """

    stem_conv = "features.0"

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        dropout: float = 0.5,
        channels: list[int] = [10, 20],  # noqa: B006  (a primitive default, never mutated)
        hidden_size: int = 50,
        **kwargs,
    ) -> None:
        if image_size < 16:
            raise ValueError(f"SimpleCNN needs images of side >= 16 (two 5x5 convolutions and two 2x2 pools), got image_size={image_size}")
        if len(channels) != 2 or min(channels) < 1 or hidden_size < 1:
            raise ValueError(f"SimpleCNN takes two positive conv widths and hidden_size >= 1, got channels={channels}, hidden_size={hidden_size}")
        c1, c2 = channels
        super().__init__(in_channels=in_channels, image_size=image_size, dropout=dropout, **kwargs)
        side = ((image_size - 4) // 2 - 4) // 2  # two 5x5 valid convs, each followed by a 2x2 pool
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5),  # (B, c1, S-4, S-4)
            nn.MaxPool2d(2),
            nn.ReLU(),  # (B, c1, (S-4)/2, (S-4)/2)
            nn.Conv2d(c1, c2, 5),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
            nn.ReLU(),  # (B, c2, side, side)
            nn.Flatten(),  # (B, c2 * side * side)
            nn.Linear(c2 * side * side, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),  # (B, hidden_size)
        )
        self.head = nn.Linear(hidden_size, self.num_outputs)  # (B, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, hidden_size)."""
        return self.features(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, c2, (S-4)/2 - 4, ...), the second convolution's output -> (B, hidden_size)."""
        return self.features[5:](x)

    def feature_stages(self) -> list[FeatureStage]:
        """The two convolutions' outputs, before their max-pools: (B, c1, S-4, S-4) and (B, c2, (S-4)/2 - 4, ...)."""
        c1, c2 = self.features[0].out_channels, self.features[3].out_channels
        return sequential_stages(self.features, "features", [1, 5], [c1, c2], [1, 2])
