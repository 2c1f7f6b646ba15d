"""Linear regression: one affine layer trained with MSE, by default with plain SGD as in the notes."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.base import RegressorModule
from zoo.core.registry import register_model

__all__ = ["LinearRegression"]


@register_model("linear_regression")
class LinearRegression(RegressorModule):
    """y = x W^T + b, fitted by minimising the mean squared error.

    On ``LinearRegressionDataModule`` (y = 3*x1 + x2 - 2*x3 + noise) the learned ``weight`` recovers the
    coefficients; see ``configs/linear_regression_synthetic.yaml``.

    Args:
        in_features: number of input features (linked from the datamodule's ``input_shape`` by the CLI).
        out_features: number of targets.
        optimizer: "sgd" (default here, as in the notes), "adam" or "adamw".
        lr: learning rate.
        momentum: SGD momentum (0 is plain gradient descent).
        **kwargs: ``RegressorModule``'s arguments; ``weight_decay`` is the L2 penalty on the weights, not the bias
            (ridge regression).
    """

    def __init__(
        self,
        *,
        in_features: int = 3,
        out_features: int = 1,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(optimizer=optimizer, lr=lr, momentum=momentum, **kwargs)
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        self.linear = nn.Linear(in_features, out_features)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.linear.in_features,)

    @property
    def num_outputs(self) -> int:
        return self.linear.out_features

    @property
    def weight(self) -> Tensor:
        """Learned coefficients, (out_features, in_features)."""
        return self.linear.weight

    @property
    def bias(self) -> Tensor:
        """Learned intercepts, (out_features,)."""
        return self.linear.bias

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_features) -> (B, out_features)."""
        self.check_input(x)
        return self.linear(x)
