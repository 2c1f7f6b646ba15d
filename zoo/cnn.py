"""SimpleCNN: the small two-convolution network of the notes' Fashion-MNIST example."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.image import ImageClassifier
from zoo.registry import register_model

__all__ = ["SimpleCNN"]


@register_model("simple_cnn")
class SimpleCNN(ImageClassifier):
    """conv 10@5x5 -> max-pool -> ReLU -> conv 20@5x5 -> dropout -> max-pool -> ReLU -> fc 50 -> dropout -> classes.

    Works for any square image of side >= 12; 28x28 gives 320 features before the fc layer, 32x32 gives 500.

    Args:
        in_channels: image channels.
        image_size: side of the square input.
        dropout: dropout probability, applied channel-wise after the second conv and element-wise after fc 50.
        **kwargs: ``ImageClassifier``'s other arguments (normalization, class names, ...) and ``ClassifierModule``'s.
    """

    stem_conv = "features.0"

    def __init__(self, *, in_channels: int = 1, image_size: int = 28, dropout: float = 0.5, **kwargs) -> None:
        if image_size < 12:
            raise ValueError(f"SimpleCNN needs images of side >= 12, got image_size={image_size}")
        super().__init__(in_channels=in_channels, image_size=image_size, dropout=dropout, **kwargs)
        side = ((image_size - 4) // 2 - 4) // 2  # two 5x5 valid convs, each followed by a 2x2 pool
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 10, 5),  # (B, 10, S-4, S-4)
            nn.MaxPool2d(2),
            nn.ReLU(),  # (B, 10, (S-4)/2, (S-4)/2)
            nn.Conv2d(10, 20, 5),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
            nn.ReLU(),  # (B, 20, side, side)
            nn.Flatten(),  # (B, 20 * side * side)
            nn.Linear(20 * side * side, 50),
            nn.ReLU(),
            nn.Dropout(dropout),  # (B, 50)
        )
        self.head = nn.Linear(50, self.num_outputs)  # (B, num_classes)
        self._finish_init()

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 50)."""
        return self.features(x)
