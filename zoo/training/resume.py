"""What a run killed at any moment needs to continue as if it had never stopped.

* ``LastCheckpoint`` keeps ``last.ckpt`` current: at every validation and, with the CLI's
  ``--checkpoint_every_n_steps N``, every N training steps, mid-epoch included, so a kill loses at most N - 1 steps.
* ``RNGStateCallback`` saves the random number generators (torch CPU and CUDA, numpy, Python) in every
  checkpoint and restores them when the resumed run starts training, so dropout, augmentation and an
  agent's exploration draw the same numbers as in an uninterrupted run. The data order is the
  datamodule's (``datamodules/sampler.py``); loop counters, weights and optimizer state are Lightning's.
* ``find_last_checkpoint`` resolves ``--ckpt_path last`` across runs: every run logs to a new
  ``version_N`` folder, where Lightning alone would look for ``last.ckpt`` and find nothing.
"""

from __future__ import annotations

import glob
import os
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

__all__ = ["LastCheckpoint", "RNGStateCallback", "find_last_checkpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Keeps ``last.ckpt`` current: at every validation end (every training epoch end when no validation
    runs), and every ``every_n_steps`` training steps, mid-epoch included.

    Lightning's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only when it also saves a top-k
    checkpoint, so a run whose metric stopped improving would resume from its last best epoch; this one owns
    ``last.ckpt`` and leaves the best-model checkpoint to the monitored ``ModelCheckpoint``.
    A step is one ``training_step`` call (one batch), for automatic and manual optimization alike: a GAN's
    two optimizer steps or a DQN round's many gradient steps count once.

    Args:
        every_n_steps: training steps between two saves (0: at validation / epoch ends only).
        dirpath: folder of ``last.ckpt``; None: the logger's ``version_N/checkpoints`` (as the best-model checkpoint).
    """

    def __init__(self, *, every_n_steps: int = 0, dirpath: str | None = None) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0 (0: at validation ends only), got {every_n_steps}")
        # save_top_k=0, every_n_epochs=0: the base class saves nothing by itself; the hooks below save last.ckpt.
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, every_n_epochs=0, enable_version_counter=False)
        self.every_n_steps = every_n_steps

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_steps=self.every_n_steps)

    def _save_last(self, trainer: L.Trainer, *, again: bool = False) -> None:
        """``again``: also when this step was saved already (a validation ran since: its results count)."""
        if again and not (trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING):
            self._last_global_step_saved = -1
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        steps = trainer.fit_loop.epoch_loop.batch_progress.total.processed  # training steps since the first, resumes included
        if self.every_n_steps and steps % self.every_n_steps == 0:
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._should_save_on_train_epoch_end(trainer):  # no validation at this epoch's end
            self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_save_on_train_epoch_end(trainer):
            # After a step save of the epoch's last batch, too: a resume from there would skip this validation.
            self._save_last(trainer, again=True)


def _rng_states() -> dict[str, Any]:
    """Every generator's state as tensors and primitives, so the checkpoint loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},  # fmt: skip
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class RNGStateCallback(Callback):
    """Saves the global random generators in every checkpoint; a resumed fit restores them as training starts.

    They are restored in ``on_train_start``, after everything a resumed run does before its first step
    (sanity check, building the loaders) and before the first batch is drawn and augmented, so the next
    step sees the numbers the uninterrupted run saw after the checkpoint was written.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return _rng_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict or None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is not None:
            _set_rng_states(self._to_restore)
            self._to_restore = None


def find_last_checkpoint(*folders: str) -> str | None:
    """The newest ``last*.ckpt`` in ``folders`` or in their ``version_*/checkpoints`` sub-folders, or None.

    Temporary files of a save that was interrupted (``.last.ckpt.*.tmp``, see ``zoo.checkpoint_io``) are
    never candidates.
    """
    candidates = []
    for folder in folders:
        for pattern in ("last*.ckpt", os.path.join("version_*", "checkpoints", "last*.ckpt")):
            candidates += glob.glob(os.path.join(glob.escape(folder), pattern))
    candidates = [c for c in candidates if os.path.isfile(c)]
    return max(candidates, key=os.path.getmtime) if candidates else None
