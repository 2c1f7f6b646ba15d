"""Multi-layer perceptrons: the notes' 2-layer net and the deeper "DNN" with dropout, as one class."""

from __future__ import annotations

import math

from torch import Tensor, nn

from zoo.core.base import ClassifierModule
from zoo.core.layers import make_activation
from zoo.core.preprocessing import ImageInputModule
from zoo.core.registry import register_model

__all__ = ["MLP"]


@register_model("mlp")
class MLP(ImageInputModule, ClassifierModule):
    """Fully connected classifier: [Linear -> activation -> dropout] x len(hidden_sizes) -> Linear head.

    Any input whose sample has ``in_features`` elements is flattened first, so (B, 1, 28, 28) images and
    (B, 784) vectors both work. ``binary=True`` gives one logit with BCE, the notes' blobs classifier.
    Trained on images, it records their shape (``image_shape``) and normalization, so ``transforms()``
    and ``zoo.predict`` turn a raw image into the flat vector it reads.

    Args:
        in_features: elements per input sample (linked from the datamodule's ``input_shape`` by the CLI).
        hidden_sizes: width of each hidden layer; one entry is the 2-layer net, several make a deep "DNN".
        activation: "relu", "gelu", "tanh", "sigmoid", "leaky_relu" or "silu".
        dropout: dropout probability after each hidden layer.
        image_shape: (C, H, W) of the images flattened into the input, or None for tabular data
            (recorded from an image datamodule's ``input_shape`` when fit starts).
        **kwargs: ``ImageInputModule``'s ``mean``, ``std``, ``class_names``, then ``ClassifierModule``'s arguments.
    """

    def __init__(
        self,
        *,
        in_features: int = 784,
        hidden_sizes: list[int] = [128],  # noqa: B006 (read only)
        activation: str = "relu",
        dropout: float = 0.0,
        image_shape: list[int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._check_image_shape(image_shape, in_features)
        self.hparams.image_shape = None if image_shape is None else [int(d) for d in image_shape]
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

    @staticmethod
    def _check_image_shape(image_shape: list[int] | None, in_features: int) -> None:
        if image_shape is not None and (len(image_shape) != 3 or math.prod(image_shape) != in_features):
            raise ValueError(f"image_shape must be (C, H, W) with C*H*W = in_features = {in_features}, got {image_shape}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images this MLP reads flattened; a ValueError for a model of tabular data."""
        shape = self.hparams.get("image_shape")
        if shape is None:
            raise ValueError(
                f"this MLP reads {self.in_features} features, not images (image_shape=None), so it has no image "
                "transforms: feed it (B, in_features) float tensors, or build it with image_shape=[C, H, W]"
            )
        return tuple(shape)

    def on_fit_start(self) -> None:
        """Record the image shape of an image datamodule (whose samples it flattens), then its normalization."""
        shape = getattr(getattr(self.trainer, "datamodule", None), "input_shape", None)
        if self.hparams.get("image_shape") is None and shape is not None and len(shape) == 3:
            self._check_image_shape(list(shape), self.in_features)
            self.hparams.image_shape = [int(d) for d in shape]
        super().on_fit_start()

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
