"""EMA and SWA through Lightning's WeightAveraging: the averages, BatchNorm, checkpoints, resume, the CLI flag and zoo-export."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.training.cli import main
from zoo.training.cli_errors import ConfigError
from zoo.training.weight_averaging import EMA, SWA, averaging_record

REPO = Path(__file__).resolve().parents[2]
BLOBS = str(REPO / "configs" / "mlp_blobs.yaml")


class Snapshots(Callback):
    """The parameters after every step and at every epoch end (placed before the averaging callback)."""

    def __init__(self) -> None:
        self.steps, self.epochs = [], []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.steps.append({k: v.detach().clone() for k, v in [*module.named_parameters(), *module.named_buffers()] if v.is_floating_point()})

    def on_train_epoch_end(self, trainer, module) -> None:
        self.epochs.append({k: v.detach().clone() for k, v in module.named_parameters()})


def trainer(tmp_path, callbacks, **kwargs) -> L.Trainer:
    options = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, default_root_dir=tmp_path, limit_val_batches=0)  # fmt: skip
    return L.Trainer(callbacks=callbacks, **{**options, **kwargs})


def linear_loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(12, 3, generator=g), torch.randn(12, 1, generator=g)), batch_size=4)


def test_ema_is_the_moving_average_of_the_steps_and_the_checkpoint_holds_it(tmp_path):
    model = zoo.create_model("linear_regression", lr=0.1)
    snaps = Snapshots()
    t = trainer(tmp_path, [snaps, EMA(decay=0.5)], max_steps=3)
    t.fit(model, train_dataloaders=linear_loader())
    expected = snaps.steps[0]
    for step in snaps.steps[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * step[k] for k in step}
    t.save_checkpoint(tmp_path / "ema.ckpt")
    raw = torch.load(tmp_path / "ema.ckpt", weights_only=True)
    assert averaging_record(raw) == {"method": "ema", "decay": 0.5}
    for key, value in expected.items():
        torch.testing.assert_close(raw["state_dict"][key], value)
        torch.testing.assert_close(dict(model.named_parameters())[key].detach(), value)  # copied in when fit ended
    assert not torch.equal(snaps.steps[-1]["linear.weight"], expected["linear.weight"])  # the average is not the last step
    loaded = zoo.load_checkpoint(tmp_path / "ema.ckpt")
    torch.testing.assert_close(loaded.linear.weight, expected["linear.weight"])


def bn_model() -> zoo.ZooModule:
    return zoo.create_model("resnet20", layers=[1, 1, 1], widths=[4, 8, 8], in_channels=1, image_size=8, num_classes=3, lr=0.05)


def bn_loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 1, 8, 8, generator=g) * 2 + 1, torch.randint(0, 3, (16,), generator=g)), batch_size=8)


def test_swa_averages_the_epoch_ends_from_its_start_and_recomputes_batchnorm(tmp_path):
    model = bn_model()
    snaps = Snapshots()
    t = trainer(tmp_path, [snaps, SWA(swa_epoch_start=1)], max_epochs=3)
    t.fit(model, train_dataloaders=bn_loader())
    for key, value in model.named_parameters():  # epochs 1 and 2 averaged, epoch 0 not
        torch.testing.assert_close(value.detach(), (snaps.epochs[1][key] + snaps.epochs[2][key]) / 2)
    reference = copy.deepcopy(model)
    update_bn(bn_loader(), reference)  # torch's recomputation of the statistics for these weights
    bn = [(n, b) for n, b in model.named_buffers() if "running_" in n]
    assert bn and all(torch.allclose(b, dict(reference.named_buffers())[n], atol=1e-6) for n, b in bn)
    t.save_checkpoint(tmp_path / "swa.ckpt")
    raw = torch.load(tmp_path / "swa.ckpt", weights_only=True)
    assert raw["weight_averaging"] == {"method": "swa", "swa_epoch_start": 1}
    assert all(torch.equal(raw["state_dict"][n], b) for n, b in bn)  # the checkpoint holds the recomputed statistics


def test_ema_averages_batchnorm_statistics_with_the_weights(tmp_path):
    model = bn_model()
    snaps = Snapshots()
    t = trainer(tmp_path, [snaps, EMA(decay=0.9)], max_steps=3)
    t.fit(model, train_dataloaders=bn_loader())
    key = next(k for k in snaps.steps[0] if k.endswith("running_mean"))
    expected = snaps.steps[0][key]
    for step in snaps.steps[1:]:
        expected = 0.9 * expected + 0.1 * step[key]
    torch.testing.assert_close(dict(model.named_buffers())[key], expected)
    assert not torch.allclose(expected, snaps.steps[-1][key])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="decay is in"):
        EMA(decay=1.5)
    with pytest.raises(ValueError, match="swa_epoch_start"):
        SWA(swa_epoch_start=1.5)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


SHORT = ["--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false", "--test_after_fit=false"]


def test_one_flag_averages_checkpoints_and_resume_keeps_both(in_tmp):
    cli = main(["fit", "--config", BLOBS, "--weight_averaging", "ema", "--ema_decay", "0.9", "--trainer.max_epochs=1", *SHORT])
    assert sum(isinstance(c, EMA) for c in cli.trainer.callbacks) == 1
    last = next(in_tmp.rglob("last.ckpt"))
    raw = torch.load(last, weights_only=True)
    assert raw["weight_averaging"] == {"method": "ema", "decay": 0.9} and int(raw["averaging_state"]["n_averaged"]) == 2

    with pytest.raises(ConfigError, match="written with weight averaging.*same --weight_averaging"):
        main(["fit", "--config", BLOBS, "--ckpt_path", str(last), "--trainer.max_epochs=2", *SHORT])
    cli = main(["fit", "--config", BLOBS, "--weight_averaging", "ema", "--ema_decay", "0.9", "--ckpt_path", str(last), "--trainer.max_epochs=2", *SHORT])
    average = next(c for c in cli.trainer.callbacks if isinstance(c, EMA))._average_model
    assert int(average.n_averaged) == 4  # two steps before the resume, two after


def test_the_flag_and_a_callback_of_the_config_exclude_each_other(in_tmp):
    with pytest.raises(ConfigError, match="already hold a WeightAveraging callback"):
        main(["fit", "--config", BLOBS, "--weight_averaging", "swa", "--trainer.max_epochs=1", *SHORT,
              "--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging"])  # fmt: skip


def test_zoo_export_keeps_the_averaged_weights_and_records_them(in_tmp):
    from zoo.tools.export import main as export

    main(["fit", "--config", BLOBS, "--weight_averaging", "swa", "--swa_epoch_start", "0", "--trainer.max_epochs=2", *SHORT])
    last = next(in_tmp.rglob("last.ckpt"))
    raw = torch.load(last, weights_only=True)
    assert export([str(last), "--name", "mlp.blobs", "--config", BLOBS, "--out", str(in_tmp / "w"), "--wall-time", "1",
                   "--hf-folder", str(in_tmp / "hf")]) == 0  # fmt: skip
    row = json.loads((in_tmp / "w" / "manifest.json").read_text())["weights"][0]
    assert row["weight_averaging"] == {"method": "swa", "swa_epoch_start": 0}
    shipped = zoo.load_pretrained(in_tmp / "w" / "mlp.blobs.safetensors")
    folder = zoo.MLP.from_pretrained(in_tmp / "hf")
    for key, value in raw["state_dict"].items():  # the averaged weights, not current_model_state's
        assert torch.equal(shipped.state_dict()[key], value) and torch.equal(folder.state_dict()[key], value)
    assert any(not torch.equal(raw["current_model_state"][k], v) for k, v in raw["state_dict"].items())
    config = json.loads((in_tmp / "hf" / "config.json").read_text())
    assert config["zoo"]["weight_averaging"] == "swa" and row["metric"]["name"] in config["zoo"]["metrics"]


@pytest.mark.parametrize("callback", [lambda: EMA(decay=0.5), lambda: SWA(swa_epoch_start=0)], ids=["ema", "swa"])
def test_training_progress_is_not_averaged(callback, tmp_path):
    """A DQN's replay buffer and counters (ZooModule.training_state) stay live in the model and in checkpoints."""
    model = zoo.create_model("dqn", hidden_sizes=[8], batch_size=4, buffer_size=32, learning_starts=4, steps_per_epoch=3, eval_episodes=1)
    snaps = Snapshots()
    t = trainer(tmp_path, [snaps, callback()], max_epochs=2, limit_val_batches=1)
    t.fit(model)
    live = snaps.steps[-1]
    assert int(model.env_steps) == 4 + 6 and len(model.replay) == 10  # warm-up, then one env step per training step
    assert torch.equal(model.replay.obs, live["replay.obs"]) and float(model.epsilon) == float(live["epsilon"])
    assert not torch.equal(model.q_net.body[0].weight, live["q_net.body.0.weight"])  # the weights are averaged
    t.save_checkpoint(tmp_path / "dqn.ckpt")
    state = torch.load(tmp_path / "dqn.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(state["replay.obs"], live["replay.obs"]) and int(state["env_steps"]) == 10


def test_an_interrupted_swa_run_resumes_to_the_uninterrupted_average(in_tmp):
    swa = [*SHORT, "--weight_averaging", "swa", "--swa_epoch_start", "0"]
    full = main(["fit", "--config", BLOBS, "--trainer.max_epochs=3", "--trainer.default_root_dir=full", *swa])
    main(["fit", "--config", BLOBS, "--trainer.max_epochs=2", "--trainer.default_root_dir=part", *swa])
    last = next((in_tmp / "part").rglob("last.ckpt"))
    resumed = main(["fit", "--config", BLOBS, "--trainer.max_epochs=3", "--trainer.default_root_dir=resumed", "--ckpt_path", str(last), *swa])
    n_averaged = [int(next(c for c in cli.trainer.callbacks if isinstance(c, SWA))._average_model.n_averaged) for cli in (full, resumed)]
    assert n_averaged == [3, 3]
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value)
