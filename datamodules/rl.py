"""The datamodule of agents that make their own data by acting in an environment (``zoo.DQN``).

An off-policy agent's training batches come from its replay buffer and its evaluation from episodes it
plays, so the model builds its loaders itself (``train_dataloader``, ``val_dataloader``, ...). This
datamodule hands them to the Trainer, so a recipe names ``data: datamodules.EnvironmentDataModule``
like every other recipe, and ``Trainer.fit(model)`` without a datamodule works the same way.
"""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.base import ZooDataModule

__all__ = ["EnvironmentDataModule"]


class EnvironmentDataModule(ZooDataModule):
    """Serves the model's own loaders: the model's environment is the data source.

    The environment, batch size and evaluation episodes are the model's arguments (``--model.init_args.env_id``).
    """

    def __init__(self) -> None:
        super().__init__(batch_size=1, val_fraction=0.0, test_fraction=0.0)

    def setup(self, stage: str | None = None) -> None:
        pass  # nothing to read: the model steps its environment

    def _model_loader(self, name: str) -> DataLoader:
        if self.trainer is None:
            raise RuntimeError(f"{type(self).__name__} serves the loaders of the model it is trained with: attach it to a Trainer")
        return getattr(self.trainer.lightning_module, name)()

    def train_dataloader(self) -> DataLoader:
        return self._model_loader("train_dataloader")

    def val_dataloader(self) -> DataLoader:
        return self._model_loader("val_dataloader")

    def test_dataloader(self) -> DataLoader:
        return self._model_loader("test_dataloader")

    def predict_dataloader(self) -> DataLoader:
        return self._model_loader("predict_dataloader")

    def on_after_batch_transfer(self, batch: Tensor | tuple[Tensor, ...], dataloader_idx: int) -> Tensor | tuple[Tensor, ...]:
        return batch
