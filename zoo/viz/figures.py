"""Figures and tables for whichever logger a run has: TensorBoard, Weights & Biases, or files in the run folder.

Every family logs its pictures through ``save_or_log_image`` and its tables through ``save_or_log_table``:

* TensorBoard (``TensorBoardLogger``): ``add_image`` / ``add_text`` (a markdown table);
* Weights & Biases (``WandbLogger``): ``log_image`` / ``log_table``;
* a logger that takes neither (``CSVLogger``, the CLI's default): a PNG under ``<log_dir>/images/`` and a
  CSV under ``<log_dir>/tables/``, named ``<name>_epoch<NNN>`` (``/`` in the name becomes ``_``);
* no logger (``logger=False``, ``--trainer.logger false``): logging is off, nothing is drawn or written.

Plots are drawn with matplotlib's Agg backend (no display needed) and turned into (3, H, W) uint8 tensors
by ``figure_to_image``. Only the global-zero process draws; the sanity check and the fast_dev_run smoke
test draw nothing (``should_draw``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

__all__ = ["figure_to_image", "run_folder", "save_or_log_image", "save_or_log_table", "should_draw"]


def figure_to_image(fig) -> Tensor:
    """A matplotlib figure as a (3, H, W) uint8 tensor (rendered as PNG, Agg backend); the figure is closed."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    buffer.seek(0)
    array = np.array(Image.open(buffer).convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()  # (3, H, W)


def new_figure(width: float, height: float):
    """A matplotlib figure drawn off-screen (Agg), whatever backend pyplot was set to."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def should_draw(module: L.LightningModule, *, every_rank: bool = False) -> bool:
    """Whether ``module`` should draw its figures now: attached to a trainer that has a logger, on the
    global-zero process (on every process with ``every_rank``, for data gathered across ranks before
    drawing), not in the sanity check or a fast_dev_run smoke test."""
    trainer = module._trainer
    if trainer is None or not trainer.loggers:
        return False
    return (every_rank or trainer.is_global_zero) and not trainer.sanity_checking and not trainer.fast_dev_run


def run_folder(trainer: L.Trainer) -> Path:
    """The run's log folder (``lightning_logs/version_N`` for CSV and TensorBoard), else ``default_root_dir``.

    Worked out here rather than read from ``Trainer.log_dir``, which broadcasts from rank 0: a collective
    that hangs a multi-process run when only rank 0 draws (as figures do).
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if trainer.loggers:
        first = trainer.loggers[0]
        folder = first.log_dir if isinstance(first, (TensorBoardLogger, CSVLogger)) else first.save_dir
        if folder:
            return Path(folder)
    return Path(trainer.default_root_dir)


def _file_name(name: str, epoch: int, suffix: str) -> str:
    return f"{name.replace('/', '_')}_epoch{epoch:03d}{suffix}"


def save_or_log_image(module: L.LightningModule, name: str, image: Tensor) -> Path | None:
    """Log ``image`` ((C, H, W), uint8 or float in [0, 1]) to every logger of the trainer that takes images;
    when none does, save it as ``<log_dir>/images/<name>_epoch<NNN>.png``; without a logger, do nothing.
    Returns the file written, if any."""
    trainer = module.trainer
    if not trainer.loggers:
        return None
    if image.dtype != torch.uint8:
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    image = image.cpu()  # (C, H, W)
    logged = False
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # TensorBoard
            experiment.add_image(name, image, global_step=trainer.global_step)
            logged = True
        elif hasattr(logger, "log_image"):  # Weights & Biases
            logger.log_image(key=name, images=[image.permute(1, 2, 0).numpy()], step=trainer.global_step)
            logged = True
    if logged:
        return None
    from PIL import Image

    folder = run_folder(trainer) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(name, trainer.current_epoch, ".png")
    array = image.permute(1, 2, 0).numpy()  # (H, W, C)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def save_or_log_table(module: L.LightningModule, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path | None:
    """Log a table to every logger that takes one (W&B ``log_table``; TensorBoard ``add_text`` as markdown);
    when none does, save it as ``<log_dir>/tables/<name>_epoch<NNN>.csv``; without a logger, do nothing.
    Returns the file written, if any."""
    trainer = module.trainer
    if not trainer.loggers:
        return None
    columns = [str(c) for c in columns]
    rows = [list(row) for row in rows]
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"every row of table {name!r} needs {len(columns)} values ({columns})")
    logged = False
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_text"):  # TensorBoard
            experiment.add_text(name, _markdown(columns, rows), global_step=trainer.global_step)
            logged = True
        elif hasattr(logger, "log_table"):  # Weights & Biases
            logger.log_table(key=name, columns=columns, data=rows, step=trainer.global_step)
            logged = True
    if logged:
        return None
    folder = run_folder(trainer) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(name, trainer.current_epoch, ".csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return path
