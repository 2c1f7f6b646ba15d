"""Multi-layer perceptrons: the notes' 2-layer net and the deeper "DNN" with dropout, as one class."""

from __future__ import annotations

import math

from torch import Tensor, nn

from zoo.base import ClassifierModule
from zoo.layers import make_activation
from zoo.registry import register_model

__all__ = ["MLP"]


@register_model("mlp")
class MLP(ClassifierModule):
    """Fully connected classifier: [Linear -> activation -> dropout] x len(hidden_sizes) -> Linear head.

    Any input whose sample has ``in_features`` elements is flattened first, so (B, 1, 28, 28) images and
    (B, 784) vectors both work. ``binary=True`` gives one logit with BCE, the notes' blobs classifier.

    Args:
        in_features: elements per input sample (linked from the datamodule's ``input_shape`` by the CLI).
        hidden_sizes: width of each hidden layer; one entry is the 2-layer net, several make a deep "DNN".
        activation: "relu", "gelu", "tanh", "sigmoid", "leaky_relu" or "silu".
        dropout: dropout probability after each hidden layer.
        num_classes: number of classes; with ``binary`` it must be 2.
        binary: one logit and binary cross-entropy instead of ``num_classes`` logits.
        label_smoothing: cross-entropy label smoothing (multi-class only).
        optimizer: "sgd", "adam" or "adamw".
        lr: learning rate.
        weight_decay: weight decay on the weight matrices.
        momentum: SGD momentum.
        scheduler: "none", "cosine", "onecycle" or "plateau"; see ``zoo.ZooModule``.
    """

    def __init__(
        self,
        *,
        in_features: int = 784,
        hidden_sizes: list[int] = [128],  # noqa: B006 (read only)
        activation: str = "relu",
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if in_features < 1 or not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(f"need in_features >= 1 and at least one hidden size >= 1, got {in_features}, {hidden_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features = in_features
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.num_outputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    def check_input(self, x: Tensor) -> Tensor:
        # Any sample shape is accepted as long as it flattens to in_features.
        if isinstance(x, Tensor) and x.ndim >= 2 and x.is_floating_point() and math.prod(x.shape[1:]) == self.in_features:
            return x
        return super().check_input(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, ...) with in_features elements per sample -> (B, hidden_sizes[-1])."""
        return self.features(x)


@register_model("dnn")
def dnn(**kwargs) -> MLP:
    """The deeper "DNN": three hidden layers (256, 128, 64) with ReLU and dropout 0.2."""
    return MLP(**{"hidden_sizes": [256, 128, 64], "dropout": 0.2, **kwargs})
