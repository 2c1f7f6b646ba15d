"""Mixed precision: ``--trainer.precision bf16-mixed`` for every family, on the recipes' tiny fixture runs.

Each test runs one recipe per family through train.py's ``main`` (fixture data, ``fast_dev_run``) with
``bf16-mixed`` and a probe callback that records, during training, the output dtype of every linear,
convolution and recurrent layer. It checks that

* autocast really ran: layers computed in bfloat16;
* the weights stay float32 (autocast keeps float32 master weights), finite, and changed;
* the logged losses are finite.

This CPU (AVX2, no native bf16) emulates bfloat16, so these tests check correctness, not speed:
``16-mixed`` and ``bf16-mixed`` are for GPUs. The LeNet-5 case runs by default; the sweep is marked slow.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from zoo.training.cli import main

REPO = Path(__file__).resolve().parents[2]

#: One recipe per family (configs/); each runs a fast_dev_run on the fixture data.
FAMILIES = {
    "cnn_classifier": "lenet5_digits.yaml",
    "mlp_classifier": "dnn_fashionmnist.yaml",
    "resnet": "resnet20_fashionmnist.yaml",
    "vgg": "vgg11_small_fashionmnist.yaml",
    "alexnet": "alexnet_small_fashionmnist.yaml",
    "vit": "vit_tiny_fashionmnist.yaml",
    "rnn_classifier": "lstm_fashionmnist_rows.yaml",
    "text_rnn": "gru_imdb.yaml",
    "text_transformer": "transformer_classifier_imdb.yaml",
    "autoencoder": "autoencoder_fashionmnist.yaml",
    "conv_autoencoder": "conv_autoencoder_fashionmnist.yaml",
    "gan": "gan_fashionmnist.yaml",
    "dcgan": "dcgan_fashionmnist.yaml",
    "cgan": "cgan_fashionmnist.yaml",
    "dqn": "dqn_cartpole.yaml",
    "seq2seq": "seq2seq_numbers_fr.yaml",
    "transformer_translation": "transformer_numbers_fr.yaml",
    "forecaster": "lstm_forecaster_co2.yaml",
    "linear_regression": "linear_regression_synthetic.yaml",
}
DEFAULT = {"cnn_classifier"}  # in the default suite; the rest under -m slow


class AutocastProbe(L.Callback):
    """Records the output dtypes of the compute layers while training (not validation)."""

    LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.LSTM, nn.GRU, nn.RNN, nn.MultiheadAttention)

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()
        self._handles: list = []
        self.before: dict[str, torch.Tensor] = {}

    def _record(self, module: nn.Module, inputs, output) -> None:
        if module.training:
            first = output[0] if isinstance(output, tuple) else output
            if isinstance(first, torch.Tensor) and first.is_floating_point():
                self.dtypes.add(first.dtype)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.before = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        self._handles = [m.register_forward_hook(self._record) for m in pl_module.modules() if isinstance(m, self.LAYERS)]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for handle in self._handles:
            handle.remove()


def family_params():
    for family, recipe in FAMILIES.items():
        marks = () if family in DEFAULT else (pytest.mark.slow,)
        yield pytest.param(recipe, id=family, marks=marks)


@pytest.fixture
def in_tmp_cwd(tmp_path, vision_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("recipe", family_params())
def test_bf16_mixed_training_step(recipe, in_tmp_cwd):
    cli = main([
        "fit", "--config", str(REPO / "configs" / recipe), "--trainer.fast_dev_run=true",
        "--trainer.precision", "bf16-mixed", "--test_after_fit", "false", "--trainer.logger", "false",
        "--trainer.callbacks+=tests.training.test_precision.AutocastProbe",
    ])  # fmt: skip
    trainer, model = cli.trainer, cli.model
    assert trainer.state.finished and trainer.precision == "bf16-mixed"
    probe = next(c for c in trainer.callbacks if isinstance(c, AutocastProbe))
    assert torch.bfloat16 in probe.dtypes, f"no layer computed in bfloat16 under autocast: {probe.dtypes}"
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32, f"{name} is {p.dtype}: the weights must stay float32"
        assert torch.isfinite(p).all(), f"{name} is not finite"
    assert any(not torch.equal(probe.before[k], p) for k, p in model.named_parameters() if k in probe.before), "no weight changed"
    losses = {k: float(v) for k, v in trainer.callback_metrics.items() if "loss" in k}
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
