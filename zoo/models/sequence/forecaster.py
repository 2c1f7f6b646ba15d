"""An LSTM forecaster: the last ``window`` steps of a series in, its next ``horizon`` values out."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from zoo.core.base import RegressorModule
from zoo.core.layers import make_rnn
from zoo.core.registry import register_model
from zoo.viz.figures import figure_to_image, save_or_log_image, should_draw
from zoo.viz.plots import forecast_figure

__all__ = ["LSTMForecaster"]


@register_model("lstm_forecaster")
class LSTMForecaster(RegressorModule):
    """A stacked (optionally bidirectional) LSTM reading a window; a linear layer maps its final state to the horizon.

    Trained with MSE on scaled values; MAE and RMSE are logged on the scaled values (``val/mae``) and, via
    ``target_std``, in the series' own units (``val/mae_units``, ppm for CO2).

    Args:
        input_size: features per step (columns of the series), linked from the datamodule's ``num_series``.
        window: input steps per sample (the datamodule's window).
        horizon: future values predicted per window.
        hidden_size: LSTM hidden state width.
        num_layers: stacked LSTM layers.
        dropout: dropout between stacked layers and before the output layer.
        bidirectional: read the window both ways; the output layer sees the last forward and first backward states.
        target: column of the input that is forecast (linked from the datamodule).
        residual: predict the change from the window's last ``target`` value rather than the value itself,
            so a trending series (CO2) is extrapolated past the range seen in training.
        relative_input: feed the LSTM the window minus its last step (every column), so it reads the window's
            shape, not its level: a trending series's later windows then look like the ones seen in training.
        target_std: standard deviation used to scale the target (linked from the datamodule), for the ``*_units`` metrics.
    """

    def __init__(
        self,
        *,
        input_size: int = 1,
        window: int = 30,
        horizon: int = 1,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        target: int = 0,
        residual: bool = True,
        relative_input: bool = False,
        target_std: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if min(input_size, window, horizon, hidden_size, num_layers) < 1:
            raise ValueError("input_size, window, horizon, hidden_size and num_layers must all be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0 <= target < input_size:
            raise ValueError(f"target must index one of the {input_size} input columns, got {target}")
        self.window = window
        self.horizon = horizon
        self.target = target
        self.residual = residual
        self.relative_input = relative_input
        self.target_std = target_std
        self.lstm = make_rnn("lstm", input_size, hidden_size, num_layers, dropout, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size * (2 if bidirectional else 1), horizon)
        for stage in ("train", "val", "test"):
            units = MetricCollection({"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)})
            setattr(self, f"{stage}_unit_metrics", units.clone(prefix=f"{stage}/", postfix="_units"))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.window, self.lstm.input_size)

    @property
    def num_outputs(self) -> int:
        return self.horizon

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, input_size) -> (B, horizon) scaled forecasts."""
        self.check_input(x)
        last = x[:, -1, self.target, None]  # (B, 1) the last observed target value
        if self.relative_input:
            x = x - x[:, -1:, :]  # (B, T, F): every window ends at 0
        _, (h_n, _) = self.lstm(x)  # h_n: (layers * directions, B, H)
        state = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.lstm.bidirectional else h_n[-1]
        forecast = self.out(self.dropout(state))  # (B, horizon)
        if self.residual:
            forecast = forecast + last  # change from the last observed value
        return forecast

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        output = self(x)
        loss = self.compute_loss(output, y)
        metrics = self._metrics(stage)
        metrics.update(output.detach(), y)
        units = getattr(self, f"{stage}_unit_metrics")
        units.update(output.detach() * self.target_std, y * self.target_std)
        if stage == "test":
            self._record_test_output(x, output, y)
        self._log_loss(stage, loss, len(x))
        return loss

    def _epoch_metrics(self, stage: str) -> list[tuple[MetricCollection, bool]]:
        return [*super()._epoch_metrics(stage), (getattr(self, f"{stage}_unit_metrics"), False)]

    # -- figure: forecast vs truth over the test span (zoo.plots, zoo.figures) -----------------------------
    def on_test_epoch_start(self) -> None:

        self._test_forecasts: list[tuple[Tensor, Tensor]] | None = [] if should_draw(self) else None

    def _record_test_output(self, x: Tensor, output: Tensor, target: Tensor) -> None:
        if getattr(self, "_test_forecasts", None) is not None:
            self._test_forecasts.append((output.detach().float().cpu(), target.detach().float().cpu()))

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        kept, self._test_forecasts = getattr(self, "_test_forecasts", None), None
        if not kept:
            return

        output, target = torch.cat([o for o, _ in kept]), torch.cat([t for _, t in kept])  # (N, horizon) each, in time order
        to_units = getattr(getattr(self.trainer, "datamodule", None), "to_units", None)
        units = "series units" if to_units else "scaled value"
        if to_units is None:
            to_units = lambda scaled: scaled  # noqa: E731
        truth = to_units(target[:, 0]).numpy()  # (N,): the value one step after each window
        forecasts = {"1 step ahead": to_units(output[:, 0]).numpy()}
        if self.horizon > 1:  # the forecast made horizon steps earlier for the same time step
            shift = self.horizon - 1
            ahead = torch.full((len(output),), float("nan"))
            ahead[shift:] = to_units(output[: len(output) - shift, -1])
            forecasts[f"{self.horizon} steps ahead"] = ahead.numpy()
        save_or_log_image(self, "test/forecast", figure_to_image(forecast_figure(truth, forecasts, units=units)))
