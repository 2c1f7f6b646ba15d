"""The stage metrics (accuracy, top-5, MAE, ...) and losses are computed once per epoch over every sample of the stage.

The steps only update the torchmetrics objects; ``ZooModule`` logs ``compute()`` at the end of each train,
validation and test epoch and resets them. These tests pin what a user reads in ``trainer.callback_metrics``
and the logs: the same numbers as computing the metric over the whole split by hand, fresh every epoch.
"""

from __future__ import annotations

import csv

import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

import zoo
from tests.support.trainers import quiet_trainer


def _images(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


def _accuracy(model, data: TensorDataset, k: int = 1) -> float:
    x, y = data.tensors
    with torch.no_grad():
        top = model.eval()(x).topk(k, dim=-1).indices  # (N, k)
    return (top == y[:, None]).any(dim=-1).float().mean().item()


def test_validation_and_test_metrics_are_those_of_the_whole_split_in_uneven_batches():
    torch.manual_seed(0)
    model = zoo.create_model("lenet5")
    train, val = _images(96, 0), _images(70, 1)  # 70 = 32 + 32 + 6: a last batch of another size
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=1.0)
    trainer.fit(model, DataLoader(train, batch_size=32), DataLoader(val, batch_size=32))
    for stage, run in (("val", trainer.validate), ("test", trainer.test)):
        metrics = run(model, DataLoader(val, batch_size=32), verbose=False)[0]
        assert abs(metrics[f"{stage}/acc"] - _accuracy(model, val)) < 1e-6
        assert abs(metrics[f"{stage}/acc_top5"] - _accuracy(model, val, k=5)) < 1e-6
    # the metrics were reset after every epoch: the same split read twice gives the same value, not a mix
    again = trainer.validate(model, DataLoader(val, batch_size=32), verbose=False)[0]
    assert again["val/acc"] == metrics["test/acc"]


def test_training_accuracy_is_logged_per_epoch_and_reset_between_epochs(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("lenet5", optimizer="sgd", lr=1e-12)  # weights that do not move: each epoch predicts alike
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # and the same in training mode
    train = _images(64, 2)
    trainer = quiet_trainer(max_epochs=3, limit_val_batches=0)
    trainer.fit(model, DataLoader(train, batch_size=16))
    expected = _accuracy(model, train)
    assert abs(float(trainer.callback_metrics["train/acc"]) - expected) < 1e-6  # one epoch's samples, not three
    assert "train/acc_top5" in trainer.callback_metrics


def test_regression_metrics_per_epoch():
    torch.manual_seed(0)
    model = zoo.create_model("linear_regression", in_features=3)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 3, generator=g)
    data = TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]))
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, DataLoader(data, batch_size=16))
    metrics = trainer.test(model, DataLoader(data, batch_size=16), verbose=False)[0]
    with torch.no_grad():
        error = model.eval()(x) - data.tensors[1]
    assert abs(metrics["test/mae"] - error.abs().mean().item()) < 1e-5
    assert abs(metrics["test/rmse"] - error.pow(2).mean().sqrt().item()) < 1e-5


def test_the_loss_is_the_whole_splits_mean_and_the_step_loss_reaches_the_logger_every_logging_step(tmp_path):
    """``val/loss`` / ``test/loss`` / ``train/loss_epoch``: the mean over every sample (uneven batches weighted by size);
    ``train/loss_step``: the logger's rows every ``log_every_n_steps`` steps, with the loss of that very step."""
    torch.manual_seed(0)
    model = zoo.create_model("lenet5", optimizer="sgd", lr=1e-12)  # weights that do not move
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    train, val = _images(70, 4), _images(70, 5)  # batches of 16: 4 x 16 + 6
    logger = CSVLogger(tmp_path, name="run")
    trainer = quiet_trainer(max_epochs=2, logger=logger, log_every_n_steps=2, limit_val_batches=1.0)
    trainer.fit(model, DataLoader(train, batch_size=16), DataLoader(val, batch_size=16))

    def loss_of(data: TensorDataset, start: int = 0, stop: int | None = None) -> float:
        x, y = data.tensors
        with torch.no_grad():
            return F.cross_entropy(model.eval()(x[start:stop]), y[start:stop]).item()

    assert abs(float(trainer.callback_metrics["val/loss"]) - loss_of(val)) < 1e-5
    assert abs(float(trainer.callback_metrics["train/loss_epoch"]) - loss_of(train)) < 1e-5
    assert abs(trainer.test(model, DataLoader(val, batch_size=16), verbose=False)[0]["test/loss"] - loss_of(val)) < 1e-5
    rows = list(csv.DictReader(open(logger.log_dir + "/metrics.csv")))
    steps = {int(r["step"]): float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")}
    assert sorted(steps) == [1, 3, 5, 7, 9]  # 2 epochs of 5 steps: every second step, counted across epochs
    assert abs(steps[3] - loss_of(train, 48, 64)) < 1e-5  # the 4th batch's own loss, not a running mean
    assert sum(1 for r in rows if r.get("train/loss_epoch")) == 2 and sum(1 for r in rows if r.get("val/loss")) == 2
