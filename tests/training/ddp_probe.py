"""A callback the DDP tests add to ``train.py fit`` (``--trainer.callbacks+=ddp_probe.RankProbe``).

At the end of fit every rank saves what it holds, so the test process can compare the ranks: the model's
state dict, the metrics Lightning logged (``trainer.callback_metrics``) and the global step. The folder
is ``$ZOO_DDP_PROBE_DIR``; the file ``rank<R>.pt``. Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import os

import lightning as L
import torch


class RankProbe(L.Callback):
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        out = os.environ["ZOO_DDP_PROBE_DIR"]
        torch.save(
            {"state_dict": state, "metrics": metrics, "global_step": trainer.global_step, "world_size": trainer.world_size},
            os.path.join(out, f"rank{trainer.global_rank}.pt"),
        )
