"""LeNet-5 (LeCun et al., 1998, "Gradient-based learning applied to document recognition")."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.features import FeatureStage, sequential_stages
from zoo.core.image import ImageClassifier
from zoo.core.layers import make_activation
from zoo.core.registry import register_model

__all__ = ["LeNet5"]


@register_model("lenet5")
class LeNet5(ImageClassifier):
    """LeNet-5's layout: C1 conv 6@5x5, S2 pool, C3 conv 16@5x5, S4 pool, C5 120, F6 84, linear output.

    The network reads 32x32 images; 28x28 inputs (MNIST, Fashion-MNIST) get 2 pixels of zero padding
    in C1, which is how the paper's 28x28 digits were centred in a 32x32 field. Unlike the paper,
    the nonlinearity is a plain ``torch.tanh`` by default (not the scaled 1.7159 tanh(2x/3)), S2 and S4
    are parameter-free average (or max) pooling (not trainable subsampling with a coefficient and bias),
    C3 connects to all six S2 maps (not the paper's partial table), and the output is a linear layer
    trained with cross-entropy (not RBF units). "relu" and "max" give the common modern variant.

    Args:
        in_channels: image channels, 1 (grey) or 3 (colour).
        image_size: side of the square input, 28 or 32.
        activation: nonlinearity after every layer but the output: "tanh", "relu", "gelu", "sigmoid", ...
        pooling: subsampling in S2 and S4: "avg" or "max", both without parameters.
        **kwargs: ``ImageClassifier``'s arguments (``dropout`` after F6, before the output layer; 0 by
            default, as in the paper), its normalization and class names, and ``ClassifierModule``'s.
    """

    stem_conv = "features.0"

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        activation: str = "tanh",
        pooling: str = "avg",
        **kwargs,
    ) -> None:
        if image_size not in (28, 32):
            raise ValueError(
                f"LeNet5 reads 28x28 or 32x32 images, got image_size={image_size}; "
                "resize the data (e.g. DigitsDataModule(image_size=32))"
            )
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        super().__init__(in_channels=in_channels, image_size=image_size, **kwargs)
        pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=(32 - image_size) // 2),  # C1: (B, 6, 28, 28)
            make_activation(activation),
            pool(2),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # C3: (B, 16, 10, 10)
            make_activation(activation),
            pool(2),  # S4: (B, 16, 5, 5)
            nn.Flatten(),  # (B, 400)
            nn.Linear(16 * 5 * 5, 120),  # C5: (B, 120)
            make_activation(activation),
            nn.Linear(120, 84),  # F6: (B, 84)
            make_activation(activation),
            nn.Dropout(self.dropout),
        )
        self.head = nn.Linear(84, self.num_outputs)  # output: (B, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 84), the F6 activations."""
        return self.features(x)

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, 16, 10, 10), C3's activations -> (B, 84): S4, C5, F6."""
        return self.features[5:](x)

    def feature_stages(self) -> list[FeatureStage]:
        """C1's activations (B, 6, 28, 28) and C3's (B, 16, 10, 10), the maps before S2 and S4."""
        return sequential_stages(self.features, "features", [2, 5], [6, 16], [1, 2])
