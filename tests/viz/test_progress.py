"""Progress: the CLI's bar (rich on a terminal, one line per epoch elsewhere), and the tqdm bars of the long
evaluations (FGSM table, GAN metrics, DQN evaluation and play), on standard error when forced on, absent when off."""

import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo import attacks
from zoo.training.epoch_progress_bar import EpochLineProgressBar
from zoo.training.cli import main
from zoo.evaluation.gan_metrics import GANQualityMetrics
from zoo.viz.progress import loop_progress, progress_bar, show_progress

REPO = Path(__file__).resolve().parents[2]


def test_progress_bar_writes_to_stderr_only_when_on(capsys):
    for _ in progress_bar(range(5), desc="counting", unit="item", progress=True):
        pass
    shown = capsys.readouterr()
    assert "counting" in shown.err and "/5 " in shown.err and shown.out == ""  # the total; the bar is erased at the end
    for progress in (False, None):  # None: on a terminal only, and pytest's stderr is not one
        for _ in progress_bar(range(5), desc="counting", progress=progress):
            pass
        assert capsys.readouterr().err == ""


def test_show_progress_follows_the_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress(None) and not show_progress(False)
    assert loop_progress(None, L.Trainer(enable_progress_bar=False, logger=False))
    assert not loop_progress(None, L.Trainer(callbacks=[RichProgressBar()], logger=False))  # rich owns the terminal
    assert loop_progress(True, L.Trainer(callbacks=[RichProgressBar()], logger=False))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not show_progress(None) and show_progress(True)


def test_fgsm_table_shows_a_bar_over_the_batches(capsys):
    model = zoo.create_model("lenet5", num_classes=10)
    batches = [(torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))) for _ in range(3)]
    results = attacks.robustness(model, batches, epsilons=[0.0, 0.1], progress=True)
    assert sorted(results.fgsm) == [0.0, 0.1]
    assert "FGSM, 2 budgets; PGD-10, 1" in capsys.readouterr().err
    attacks.robustness(model, batches, epsilons=[0.0, 0.1], progress=False)
    assert "FGSM" not in capsys.readouterr().err


def test_gan_metrics_show_a_bar_over_the_generated_images(tmp_path, capsys):
    gan = zoo.create_model("cgan", generator_sizes=[32], discriminator_sizes=[32], latent_dim=16)
    val = DataLoader(TensorDataset(torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))), batch_size=8)
    for progress, shown in [(True, True), (False, False)]:
        metrics = GANQualityMetrics("unused.ckpt", num_samples=16, batch_size=8, progress=progress)
        metrics.use_classifier(zoo.create_model("lenet5", num_classes=10))
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=tmp_path, callbacks=[metrics])  # fmt: skip
        assert "val/fid" in trainer.validate(gan, val, verbose=False)[0]
        assert ("GAN metrics: generating" in capsys.readouterr().err) == shown


def test_dqn_evaluation_and_play_show_a_bar_over_the_episodes(capsys):
    model = zoo.create_model("dqn", hidden_sizes=[16])
    returns = model.evaluate([0, 1, 2], progress=True)
    err = capsys.readouterr().err
    assert returns.shape == (3,) and "DQN evaluation" in err and "/3 " in err
    zoo.play(model, episodes=2, progress=True)
    assert "play" in capsys.readouterr().err
    model.evaluate([0, 1], progress=False)
    zoo.play(model, episodes=1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    recipe = ["fit", "--config", str(REPO / "configs" / "mlp_blobs.yaml"), "--data.n_samples=200", "--test_after_fit=false"]
    return lambda *args: main([*recipe, f"--trainer.default_root_dir={tmp_path}", *args])


def test_cli_prints_one_line_per_epoch_when_stdout_is_not_a_terminal(cli, capsys):
    trainer = cli("--trainer.max_epochs=2").trainer
    assert isinstance(trainer.progress_bar_callback, EpochLineProgressBar)
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert [line.split(" (")[0] for line in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("val/acc=" in line for line in epochs)


def test_cli_shows_a_rich_bar_on_a_terminal(cli, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert isinstance(cli("--trainer.fast_dev_run=true").trainer.progress_bar_callback, RichProgressBar)
    assert cli("--trainer.fast_dev_run=true", "--trainer.enable_progress_bar=false").trainer.progress_bar_callback is None
