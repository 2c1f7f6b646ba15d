"""The quiet CPU ``Trainer`` the tests build: no logger, progress bar or model summary.

With ``root`` the run's files (checkpoints, figures) go under it; without, no checkpoint is written.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L


def quiet_trainer(root: Path | None = None, **kwargs) -> L.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    defaults.update(default_root_dir=root) if root is not None else defaults.update(enable_checkpointing=False)
    return L.Trainer(**{**defaults, **kwargs})
