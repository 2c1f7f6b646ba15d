"""Time series as sliding windows: the last ``window`` steps in, the next ``horizon`` values out.

The default series is the weekly Mauna Loa CO2 record (ppm, March 1958 - December 2001) that
statsmodels ships (``statsmodels.datasets.co2``), so no download is needed; its missing weeks are
filled by linear interpolation. ``csv_path`` reads a user's own series instead.

Splits are chronological (train, then validation, then test: no window of the future leaks into
training), and the scaling (mean and standard deviation per column) is fitted on the training part only.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from datamodules.base import CorruptDataError, DataNotFoundError, InMemoryDataset, ZooDataModule

__all__ = ["TimeSeriesDataModule", "load_co2", "make_windows", "read_csv_series"]


def load_co2() -> np.ndarray:
    """The weekly Mauna Loa CO2 series in ppm, (2284, 1) float64, its 59 missing weeks interpolated."""
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data
    return frame["co2"].interpolate(method="linear", limit_direction="both").to_numpy(dtype=np.float64)[:, None]


def make_windows(series: Tensor, window: int, horizon: int, target: int) -> tuple[Tensor, Tensor]:
    """(N, F) series -> inputs (M, window, F) and targets (M, horizon) of column ``target``, M = N - window - horizon + 1."""
    n = series.shape[0] - window - horizon + 1
    if n < 1:
        raise ValueError(f"a series of {series.shape[0]} steps is too short for window={window} + horizon={horizon}")
    idx = torch.arange(n)[:, None]
    x = series[idx + torch.arange(window)]  # (M, window, F)
    y = series[idx + window + torch.arange(horizon), target]  # (M, horizon)
    return x, y


class TimeSeriesDataModule(ZooDataModule):
    """Sliding windows over a (multivariate) series, split in time, scaled with training statistics.

    Batches are ``(x, y)``: x (B, window, num_series) scaled inputs, y (B, horizon) scaled future values
    of the ``target`` column. ``target_mean`` / ``target_std`` turn scaled values back into the
    series' units: ``value = scaled * target_std + target_mean``.

    Args:
        csv_path: a CSV file with a header row; None uses the embedded CO2 series.
        columns: CSV columns to read (all numeric ones when empty); the first is the target unless ``target`` says otherwise.
        target: index, within the columns read, of the column to forecast.
        window: input steps per sample.
        horizon: future steps to predict.
        scale: standardise every column with the mean and std of the training part.
        batch_size: windows per batch.
        val_fraction: share of the series (in time, after the training part) for validation.
        test_fraction: share of the series at its end for testing.
        seed: unused (the split is chronological); kept for the shared interface.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    num_classes = None

    def __init__(
        self,
        *,
        csv_path: str | None = None,
        columns: list[str] | None = None,
        target: int = 0,
        window: int = 30,
        horizon: int = 1,
        scale: bool = True,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        **kwargs,
    ) -> None:
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, test_fraction=test_fraction, **kwargs)
        if window < 1 or horizon < 1:
            raise ValueError(f"window and horizon must be >= 1, got {window}, {horizon}")
        self.csv_path = csv_path
        self.columns = list(columns or [])
        self.target = target
        self.window = window
        self.horizon = horizon
        self.scale = scale
        self._series: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    # -- the raw series -------------------------------------------------------------------------------
    def read_series(self) -> np.ndarray:
        """(N, num_series) float64, oldest first."""
        if self.csv_path is None:
            return load_co2()
        path = Path(self.csv_path).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"time-series CSV {path} not found; pass csv_path= a CSV file with a header row")
        return read_csv_series(path, self.columns)

    @property
    def series(self) -> np.ndarray:
        if self._series is None:
            self._series = self.read_series()
            if not 0 <= self.target < self._series.shape[1]:
                raise ValueError(f"target={self.target} but the series has {self._series.shape[1]} column(s)")
            self._fit_scaling()
        return self._series

    @property
    def num_series(self) -> int:
        """Features per step (columns of the series), linked into the model's ``input_size``."""
        return self.series.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.window, self.num_series)

    def _split_points(self, n: int) -> tuple[int, int]:
        n_test = math.floor(n * self.test_fraction)
        n_val = math.floor(n * self.val_fraction)
        return n - n_val - n_test, n - n_test

    def _fit_scaling(self) -> None:
        train_end, _ = self._split_points(len(self._series))
        train = self._series[:train_end]
        self.mean = train.mean(0) if self.scale else np.zeros(train.shape[1])
        self.std = train.std(0) if self.scale else np.ones(train.shape[1])
        self.std[self.std == 0] = 1.0

    @property
    def target_mean(self) -> float:
        self.series
        return float(self.mean[self.target])

    @property
    def target_std(self) -> float:
        """Scale of the target column: errors in scaled units times this are errors in the series' units."""
        self.series
        return float(self.std[self.target])

    # -- splits ---------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        scaled = torch.from_numpy((self.series - self.mean) / self.std).float()  # (N, F)
        train_end, val_end = self._split_points(len(scaled))
        # Each split's windows start where its own targets start: inputs may look back into the split before.
        parts = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, len(scaled))}
        sets = {}
        for name, (start, end) in parts.items():
            lo = max(0, start - self.window) if name != "train" else 0
            if end - lo < self.window + self.horizon:
                x, y = torch.zeros(0, self.window, scaled.shape[1]), torch.zeros(0, self.horizon)
            else:
                x, y = make_windows(scaled[lo:end], self.window, self.horizon, self.target)
            sets[name] = InMemoryDataset(x, y)
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]

    def naive_forecast(self, x: Tensor) -> Tensor:
        """The last-value baseline: (B, window, F) -> (B, horizon), every step = the last observed target."""
        return x[:, -1, self.target, None].expand(-1, self.horizon)

    def to_units(self, scaled: Tensor) -> Tensor:
        """Scaled target values -> the series' own units (ppm for CO2)."""
        return scaled * self.target_std + self.target_mean


def read_csv_series(path: Path, columns: list[str]) -> np.ndarray:
    """(N, len(columns)) float64 from a CSV with a header row; empty cells are filled by linear interpolation.

    ``columns`` empty: every column whose first value is a number. ``CorruptDataError`` names the file, and
    the line where there is one, for a missing column (listing the columns the file has), a short row or a
    value that is not a number.
    """
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as e:
        raise CorruptDataError(f"{path} is not a readable CSV file: {e}") from None
    if not rows:
        raise CorruptDataError(f"{path} has no data rows (header: {header})")
    names = list(columns) or [c for c in header if _is_number(rows[0][c])]
    if not names:
        raise CorruptDataError(f"{path} has no numeric column in its first row; its columns are {header}. Pick them with columns=")
    missing = [c for c in names if c not in header]
    if missing:
        raise CorruptDataError(f"{path} has no column {', '.join(map(repr, missing))}; its columns are {header}")
    values = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        line = i + 2  # the header is line 1 (a quoted value spanning lines would shift this)
        for j, name in enumerate(names):
            cell = row[name]
            if cell is None:
                raise CorruptDataError(f"{path}, line {line}: {len(header) - list(row.values()).count(None)} of {len(header)} columns; no value for {name!r}")
            try:
                values[i, j] = float(cell) if cell.strip() else math.nan
            except ValueError:
                raise CorruptDataError(f"{path}, line {line}, column {name!r}: {cell!r} is not a number") from None
    for j, name in enumerate(names):  # fill gaps by linear interpolation, as for CO2
        col, ok = values[:, j], ~np.isnan(values[:, j])
        if not ok.any():
            raise CorruptDataError(f"{path}: column {name!r} has no values")
        if not ok.all():
            col[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), col[ok])
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
