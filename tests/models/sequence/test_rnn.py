"""Recurrent classifiers beyond the generic tests: padding invariance, the bidirectional head, token and image input."""

import pytest
import torch

import zoo
from zoo.models.sequence.rnn import RecurrentClassifier


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_the_result(cell, bidirectional):
    torch.manual_seed(0)
    model = zoo.create_model(cell, vocab_size=30, embedding_dim=8, hidden_size=16, bidirectional=bidirectional).eval()
    seqs = [torch.randint(1, 30, (n,)) for n in (3, 7, 5)]
    outputs = []
    for total in (7, 12, 20):  # the same sequences padded with 0 to different lengths
        batch = torch.zeros(3, total, dtype=torch.long)
        for i, s in enumerate(seqs):
            batch[i, : len(s)] = s
        outputs.append(model(batch))
    alone = torch.cat([model(s[None]) for s in seqs])  # each sequence on its own, unpadded
    for out in outputs:
        torch.testing.assert_close(out, outputs[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(alone, outputs[0], rtol=0, atol=1e-5)


def test_bidirectional_head_reads_last_forward_and_first_backward_state():
    torch.manual_seed(0)
    model = zoo.create_model("lstm", input_size=4, seq_len=0, hidden_size=6, num_layers=2, bidirectional=True).eval()
    x = torch.randn(2, 9, 4)
    outputs, _ = model.rnn(x)  # (B, T, 2H): forward half then backward half
    expected = torch.cat([outputs[:, -1, :6], outputs[:, 0, 6:]], dim=-1)
    torch.testing.assert_close(model.forward_features(x), expected)
    assert model.num_features == 12


def test_float_sequences_any_length_and_image_rows():
    model = zoo.create_model("gru", input_size=28, seq_len=0, num_classes=4)
    assert model(torch.randn(2, 5, 28)).shape == (2, 4)
    rows = zoo.create_model("lstm")  # Fashion-MNIST rows: (B, 1, 28, 28) read as 28 steps of 28 features
    image = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(rows(image), rows(image[:, 0]))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, T=28, F=28\)"):
        rows(torch.randn(3, 3, 28, 28))


def test_cell_and_arguments_are_checked():
    with pytest.raises(ValueError, match="cell must be one of"):
        RecurrentClassifier(cell="transformer")
    with pytest.raises(ValueError, match="dropout"):
        RecurrentClassifier(dropout=1.0)
    assert type(zoo.create_model("rnn").rnn) is torch.nn.RNN and type(zoo.create_model("gru").rnn) is torch.nn.GRU


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.real_data
def test_lstm_recipe_beats_the_linear_baseline_on_fashion_mnist_rows(real_fashion_mnist, fashion_mnist_linear_baseline, tmp_path):
    """configs/lstm_fashionmnist_rows.yaml as committed (4 epochs): measured 89.31% test accuracy (seed 0, 2-core CPU).

    The bar sits 2 points or more above logistic regression on the same split (84.40%, FASHION_MNIST_LINEAR_BASELINE
    in conftest.py), and 1.5 points or more below the measured figure; one epoch (85.21%) was too close to call.
    """
    from pathlib import Path

    from zoo.training.cli import main

    threshold = 0.87
    assert threshold >= fashion_mnist_linear_baseline + 0.02
    config = Path(__file__).resolve().parents[3] / "configs" / "lstm_fashionmnist_rows.yaml"
    cli = main(["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}", f"--data.data_dir={real_fashion_mnist}"])
    accuracy = float(cli.trainer.callback_metrics["test/acc"])
    print(f"LSTM on Fashion-MNIST rows, {cli.trainer.max_epochs} epochs: test accuracy {accuracy:.4f}")
    assert accuracy >= threshold
