"""Whole ``train.py fit`` processes, timed from start to exit, and the figures read back from their logs."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from zoo.bench.settings import REPO

__all__ = ["FitRun", "last_metric", "run_fit"]


@dataclass
class FitRun:
    """One finished ``train.py fit`` process.

    Args:
        seconds: wall clock from launching the process to its exit (start-up, data, training, test).
        root: its ``--trainer.default_root_dir``.
        returncode: its exit status.
        output: the last lines of its stdout and stderr.
    """

    seconds: float
    root: Path
    returncode: int
    output: str

    def metrics_csv(self) -> Path | None:
        """The CSV logger's file of this run (the newest version), or None."""
        found = sorted(self.root.glob("lightning_logs/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def checkpoint(self, name: str = "last.ckpt") -> Path | None:
        found = sorted(self.root.rglob(name), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None


def last_metric(path: Path | None, key: str) -> float | None:
    """The last value logged under ``key`` in a Lightning ``metrics.csv`` (None when never logged)."""
    if path is None or not path.is_file():
        return None
    value = None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(key) not in (None, ""):
                value = float(row[key])
    return value


def run_fit(config: str, root: Path, args: list[str], *, timeout: float | None = None) -> FitRun:
    """``python train.py fit --config config --trainer.default_root_dir root *args`` in the repository; a
    non-zero exit raises RuntimeError with the end of its output."""
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(REPO / "train.py"), "fit", "--config", str(REPO / config),
               f"--trainer.default_root_dir={root}", *args]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr)[-4000:]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{output}")
    return FitRun(seconds=seconds, root=root, returncode=proc.returncode, output=output)
