"""The curves the agent and the forecaster log (through ``zoo.figures``): matplotlib figures, Agg backend.

``return_curve_figure``  DQN: training-episode returns, their moving average and the greedy evaluations.
``forecast_figure``      forecaster: forecasts against the truth over the test span.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zoo.viz.figures import new_figure

__all__ = ["forecast_figure", "return_curve_figure"]


def return_curve_figure(
    train: Sequence[tuple[int, float]], evaluations: Sequence[tuple[int, float]], *, solved_return: float | None = None, window: int = 20
):
    """Episode return against environment steps.

    Args:
        train: (env step at the episode's end, return) of every training episode (epsilon-greedy).
        evaluations: (env step, mean return of the greedy policy) of every validation.
        solved_return: drawn as a dashed line when given.
        window: episodes in the moving average of the training returns.
    """
    fig = new_figure(7, 4)
    ax = fig.add_subplot()
    if train:
        steps, returns = np.array(train, dtype=float).T  # (N,), (N,)
        ax.plot(steps, returns, ".", color="tab:blue", alpha=0.5, markersize=4, label="training episode")
        if len(returns) >= window:
            average = np.convolve(returns, np.ones(window) / window, mode="valid")  # (N - window + 1,)
            ax.plot(steps[window - 1 :], average, color="tab:blue", label=f"moving average ({window} episodes)")
    if evaluations:
        steps, returns = np.array(evaluations, dtype=float).T
        ax.plot(steps, returns, "o-", color="tab:orange", label="greedy evaluation (mean)")
    if solved_return is not None:
        ax.axhline(solved_return, color="gray", linestyle="--", linewidth=1, label=f"solved ({solved_return:g})")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title("Episode return")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def forecast_figure(truth: np.ndarray, forecasts: dict[str, np.ndarray], *, units: str = ""):
    """Forecasts against the truth over a span.

    Args:
        truth: (T,) the observed values.
        forecasts: label -> (T,) forecast of the same time steps (e.g. "1 step ahead").
        units: the y-axis label.
    """
    fig = new_figure(8, 4)
    ax = fig.add_subplot()
    t = np.arange(len(truth))
    ax.plot(t, truth, color="black", linewidth=1.5, label="truth")
    for label, values in forecasts.items():
        ax.plot(t, values, linewidth=1, label=label)
    error = np.abs(np.asarray(next(iter(forecasts.values()))) - truth).mean() if forecasts else float("nan")
    ax.set_xlabel("time step in the test span")
    ax.set_ylabel(units or "value")
    ax.set_title(f"Forecast vs truth (test, mean absolute error {error:.3g})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
