"""Figures per family (zoo.figures, zoo.classifier_figures): files in the run folder when the logger takes no images."""

import csv

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.viz.classifier_figures import ClassifierTestFigures

NAMES = ["cat", "dog", "eel"]


def trainer(tmp_path, **kwargs) -> L.Trainer:
    defaults = dict(accelerator="cpu", logger=CSVLogger(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False)  # fmt: skip
    return L.Trainer(**{**defaults, **kwargs})


def read_table(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_test_figures_count_confusions_and_keep_the_most_confident_mistakes():
    figures = ClassifierTestFigures(num_classes=3, keep=2)
    x = torch.arange(5.0).view(5, 1)  # each input holds its own index
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.05, 0.9, 0.05]])
    figures.update(x[:3], probs[:3], torch.tensor([0, 2, 1]))  # right, wrong (0.7), wrong (0.6)
    figures.update(x[3:], probs[3:], torch.tensor([2, 0]))  # right, wrong (0.9)
    assert figures.matrix.tolist() == [[1, 1, 0], [1, 0, 0], [0, 1, 1]]  # rows true, columns predicted
    assert figures.inputs.flatten().tolist() == [4.0, 1.0]  # the two most confident of the three mistakes
    assert figures.predicted.tolist() == [1, 1] and figures.target.tolist() == [0, 2]
    assert figures.confidence.tolist() == pytest.approx([0.9, 0.7])
    more = torch.tensor([[0.95, 0.05, 0.0], [0.5, 0.4, 0.1], [0.8, 0.1, 0.1]])  # three mistakes, more than keep
    figures.update(torch.tensor([[5.0], [6.0], [7.0]]), more, torch.tensor([1, 2, 2]))
    assert figures.inputs.flatten().tolist() == [5.0, 4.0] and figures.confidence.tolist() == pytest.approx([0.95, 0.9])
    assert figures.matrix.sum().item() == 8


def test_classifier_test_run_saves_confusion_matrix_with_class_names_and_error_grid(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("lenet5", num_classes=3, class_names=NAMES, mean=[0.5], std=[0.25])
    x, y = torch.randn(40, 1, 28, 28), torch.randint(0, 3, (40,))
    trainer(tmp_path).test(model, DataLoader(TensorDataset(x, y), batch_size=16))
    run = tmp_path / "lightning_logs" / "version_0"
    table = read_table(run / "tables" / "test_confusion_matrix_epoch000.csv")
    assert table[0] == ["true \\ predicted", *NAMES]
    assert [row[0] for row in table[1:]] == NAMES
    counts = torch.tensor([[int(c) for c in row[1:]] for row in table[1:]])  # (3, 3)
    assert counts.sum(dim=1).tolist() == torch.bincount(y, minlength=3).tolist()  # every test sample, by true class
    predicted = model.eval()(x).argmax(-1)
    assert counts.diag().sum().item() == (predicted == y).sum().item()
    with Image.open(run / "images" / "test_confusion_matrix_epoch000.png") as image:
        assert image.size[0] >= 300 and image.size[1] >= 300
    with Image.open(run / "images" / "test_most_confident_errors_epoch000.png") as image:
        assert image.size[0] >= 4 * 200 and image.size[1] >= 4 * 200  # 16 of the mistakes, 4 x 4
        assert len(np.unique(np.asarray(image.convert("L")))) > 50  # pixels drawn, not a blank canvas


def test_non_image_classifier_gets_a_confusion_matrix_and_no_error_grid(tmp_path):
    model = zoo.create_model("mlp", in_features=2, hidden_sizes=[8], num_classes=2, binary=True)
    x, y = torch.randn(30, 2), torch.randint(0, 2, (30,))
    trainer(tmp_path).test(model, DataLoader(TensorDataset(x, y), batch_size=10))
    run = tmp_path / "lightning_logs" / "version_0"
    assert sorted(p.name for p in (run / "images").iterdir()) == ["test_confusion_matrix_epoch000.png"]
    table = read_table(run / "tables" / "test_confusion_matrix_epoch000.csv")
    assert table[0] == ["true \\ predicted", "0", "1"]  # no class names: the indices
    assert sum(int(c) for row in table[1:] for c in row[1:]) == 30


def test_fast_dev_run_draws_nothing(tmp_path):
    model = zoo.create_model("lenet5", num_classes=3)
    loader = DataLoader(TensorDataset(torch.randn(8, 1, 28, 28), torch.randint(0, 3, (8,))), batch_size=4)
    trainer(tmp_path, fast_dev_run=True, default_root_dir=tmp_path).test(model, loader)
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.csv"))


def test_no_logger_no_figures(tmp_path):
    model = zoo.create_model("lenet5", num_classes=3)
    loader = DataLoader(TensorDataset(torch.randn(8, 1, 28, 28), torch.randint(0, 3, (8,))), batch_size=4)
    trainer(tmp_path, logger=False, default_root_dir=tmp_path).test(model, loader)  # logging off: nothing written
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.csv"))


def test_translation_models_log_a_table_of_sample_translations(tmp_path):
    from datamodules import TranslationDataModule

    dm = TranslationDataModule(num_train=200, num_test=20, batch_size=16)
    dm.setup()
    model = zoo.create_model("seq2seq", embedding_dim=16, hidden_size=32, beam_size=2, src_vocab_size=dm.src_vocab_size,
                             tgt_vocab_size=dm.tgt_vocab_size, src_tokenizer=dm.src_tokenizer, tgt_tokenizer=dm.tgt_tokenizer)  # fmt: skip
    run = trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=2, limit_test_batches=1)
    run.fit(model, datamodule=dm)
    run.test(model, datamodule=dm)
    _, val, test = dm.split_pairs()
    tables = tmp_path / "lightning_logs" / "version_0" / "tables"
    for name, pairs in [("val_translations_epoch000.csv", val), ("test_translations_epoch001.csv", test)]:
        header, *rows = read_table(tables / name)
        assert header == ["source", "reference", "output"]
        assert len(rows) == model.num_logged_translations
        references = dict(pairs)
        for source, reference, _ in rows:  # the data's own sentences (a word outside the vocabulary reads <unk>)
            assert reference == references[source] or "<unk>" in reference
        assert all(isinstance(output, str) for *_, output in rows)


def test_dqn_logs_the_episode_return_curve_each_validation(tmp_path):
    model = zoo.create_model("dqn", hidden_sizes=[16], batch_size=8, buffer_size=200, learning_starts=20, steps_per_epoch=60,
                             eval_episodes=2, train_frequency=1)  # fmt: skip
    trainer(tmp_path, max_epochs=2, num_sanity_val_steps=0).fit(model)
    images = tmp_path / "lightning_logs" / "version_0" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["val_episode_returns_epoch000.png", "val_episode_returns_epoch001.png"]
    assert len(model._val_returns) == 2 and len(model._train_returns) >= 2  # CartPole's random episodes last ~20 steps
    assert [step for step, _ in model._val_returns] == sorted(step for step, _ in model._val_returns)
    with Image.open(images / "val_episode_returns_epoch001.png") as image:
        assert image.size == (700, 400)


def test_forecaster_logs_forecast_against_truth_on_the_test_span(tmp_path):
    from datamodules import TimeSeriesDataModule

    dm = TimeSeriesDataModule(window=12, horizon=3, batch_size=64)
    model = zoo.create_model("lstm_forecaster", window=12, horizon=3, hidden_size=8, num_layers=1)
    trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1).fit(model, datamodule=dm)
    forecasts = []
    model._record_test_output = lambda x, output, y, record=model._record_test_output: (forecasts.append(output), record(x, output, y))
    trainer(tmp_path, logger=CSVLogger(tmp_path, version="test")).test(model, datamodule=dm)
    assert sum(len(f) for f in forecasts) == len(dm.test_set)  # every test window went into the figure
    with Image.open(tmp_path / "lightning_logs" / "test" / "images" / "test_forecast_epoch000.png") as image:
        assert image.size == (800, 400)


def test_text_classifier_batches_of_varying_length_get_a_confusion_matrix(tmp_path):
    model = zoo.create_model("gru", vocab_size=30, hidden_size=8, num_classes=2)
    batches = [(torch.randint(1, 30, (4, length)), torch.tensor([0, 1, 0, 1])) for length in (5, 9, 7)]  # (B, T), T per batch
    trainer(tmp_path).test(model, DataLoader(batches, batch_size=None))
    run = tmp_path / "lightning_logs" / "version_0"
    assert sorted(p.name for p in (run / "images").iterdir()) == ["test_confusion_matrix_epoch000.png"]  # token ids: no grid
    assert sum(int(c) for row in read_table(run / "tables" / "test_confusion_matrix_epoch000.csv")[1:] for c in row[1:]) == 12


DDP_SCRIPT = """
import sys, torch, lightning as L
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset
import zoo

if __name__ == "__main__":
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 28, 28), torch.randint(0, 3, (40,))
    model = zoo.create_model("lenet5", num_classes=3)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=CSVLogger(sys.argv[1]),
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.test(model, DataLoader(TensorDataset(x, y), batch_size=8))
"""


@pytest.mark.slow
def test_confusion_matrix_counts_every_ddp_rank(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "ddp_test.py"
    script.write_text(DDP_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = read_table(tmp_path / "lightning_logs" / "version_0" / "tables" / "test_confusion_matrix_epoch000.csv")
    torch.manual_seed(0)
    _, y = torch.randn(40, 1, 28, 28), torch.randint(0, 3, (40,))
    assert [sum(int(c) for c in row[1:]) for row in table[1:]] == torch.bincount(y, minlength=3).tolist()  # both halves
