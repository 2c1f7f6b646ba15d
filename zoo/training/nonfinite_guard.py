"""A NaN or infinite loss never reaches the weights: the run stops naming the step, or the step is skipped.

``NonFiniteLossGuard`` watches every backward pass (``on_before_backward``: the loss) and every optimizer
step (``on_before_optimizer_step``: the gradients of that optimizer's parameters), so it covers automatic
optimization and the models that step their optimizers themselves (GANs, the DQN) alike:

* ``mode="raise"`` (default): ``NonFiniteLossError`` naming the global step, epoch and batch, before the
  optimizer changes any weight; the last checkpoint stays the one before the fault.
* ``mode="skip"``: a warning naming the step; the gradients are dropped (set to None, which torch's
  optimizers skip, momentum and Adam moments included) and normalization statistics that the bad batch
  made non-finite are put back, so training goes on with finite weights.

The CLI adds it to every fit: ``--on_nonfinite_loss raise|skip``.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["NonFiniteLossError", "NonFiniteLossGuard"]

MODES = ("raise", "skip")


class NonFiniteLossError(FloatingPointError):
    """A training loss or gradient was NaN or infinite; the message names the step."""


class NonFiniteLossGuard(Callback):
    """Stops the run (or skips the step) when a loss or a gradient is NaN or infinite.

    Args:
        mode: "raise" stops training with ``NonFiniteLossError`` naming the step; "skip" drops the step with a
            warning and keeps going.
    """

    def __init__(self, mode: str = "raise") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.skipped_steps = 0
        self._bad_loss: float | None = None  # the non-finite loss of the backward pass awaiting its optimizer step
        self._batch_idx = 0
        self._norm_stats: dict[str, Tensor] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))

    def _where(self, trainer: L.Trainer) -> str:
        return f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {self._batch_idx})"

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx
        self._bad_loss = None
        if self.mode == "skip":  # normalization statistics change in the forward pass, before any hook
            self._norm_stats = {
                name: buffer.detach().clone()
                for module_name, module in pl_module.named_modules() if isinstance(module, _NormBase)
                for name, buffer in module.named_buffers(prefix=module_name, recurse=False) if buffer.is_floating_point()
            }  # fmt: skip

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        if torch.isfinite(loss.detach()).all():
            return
        value = loss.detach().float().flatten()[0].item() if loss.numel() else float("nan")
        if self.mode == "raise":
            raise NonFiniteLossError(
                f"the training loss is {value} at {self._where(trainer)}: training stopped before the weights changed. "
                "Lower the learning rate, clip gradients (--trainer.gradient_clip_val), check the data for NaN, "
                "or skip such steps with --on_nonfinite_loss skip."
            )
        self._bad_loss = value

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad_loss, self._bad_loss = self._bad_loss, None
        # Under float16 mixed precision, infinite gradients are the loss scaler's business: it skips the step
        # and lowers the scale (that is how it finds its scale), so only the loss is checked then.
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        scaled = scaler is not None and scaler.is_enabled()
        grads_finite = scaled or not params or bool(torch.isfinite(torch.nn.utils.get_total_norm([p.grad for p in params])))
        if bad_loss is None and grads_finite:
            return
        what = f"the training loss is {bad_loss}" if bad_loss is not None else "a gradient is not finite"
        if self.mode == "raise":
            raise NonFiniteLossError(
                f"{what} at {self._where(trainer)}: training stopped before the weights changed. "
                "Lower the learning rate, clip gradients (--trainer.gradient_clip_val), check the data for NaN, "
                "or skip such steps with --on_nonfinite_loss skip."
            )
        for p in params:
            p.grad = None  # torch's optimizers skip parameters without a gradient
        self._restore_norm_stats(pl_module)
        self.skipped_steps += 1
        warnings.warn(f"{what} at {self._where(trainer)}: step skipped ({self.skipped_steps} so far)", RuntimeWarning, stacklevel=1)
        pl_module.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)

    def _restore_norm_stats(self, pl_module: nn.Module) -> None:
        buffers = dict(pl_module.named_buffers())
        for name, saved in self._norm_stats.items():
            buffer = buffers.get(name)
            if buffer is not None and not torch.isfinite(buffer).all():
                buffer.copy_(saved)
