"""LeNet-5 (LeCun et al., 1998, "Gradient-based learning applied to document recognition")."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.base import ClassifierModule
from zoo.layers import make_activation
from zoo.registry import register_model

__all__ = ["LeNet5"]


@register_model("lenet5")
class LeNet5(ClassifierModule):
    """LeNet-5 as published: C1 conv 6@5x5, S2 pool, C3 conv 16@5x5, S4 pool, C5 120, F6 84, output.

    The network reads 32x32 images; 28x28 inputs (MNIST, Fashion-MNIST) get 2 pixels of zero padding
    in C1, which is how the paper's 28x28 digits were centred in a 32x32 field. The paper's scaled
    tanh and trainable subsampling are the default "tanh" and "avg"; "relu" and "max" give the common
    modern variant.

    Args:
        in_channels: image channels, 1 (grey) or 3 (colour).
        image_size: side of the square input, 28 or 32.
        activation: nonlinearity after every layer but the output: "tanh", "relu", "gelu", "sigmoid", ...
        pooling: subsampling in S2 and S4: "avg" or "max".
        num_classes: number of classes.
        binary: one logit and binary cross-entropy (num_classes=2).
        label_smoothing: cross-entropy label smoothing.
        optimizer: "sgd", "adam" or "adamw".
        lr: learning rate.
        weight_decay: weight decay on the weight matrices and kernels.
        momentum: SGD momentum.
        scheduler: "none", "cosine", "onecycle" or "plateau"; see ``zoo.ZooModule``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        activation: str = "tanh",
        pooling: str = "avg",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if image_size not in (28, 32):
            raise ValueError(
                f"LeNet5 reads 28x28 or 32x32 images, got image_size={image_size}; "
                "resize the data (e.g. DigitsDataModule(image_size=32))"
            )
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        self.in_channels = in_channels
        self.image_size = image_size
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
        )
        self.head = nn.Linear(84, self.num_outputs)  # output: (B, num_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 84), the F6 activations."""
        return self.features(x)
