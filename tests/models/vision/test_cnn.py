"""SimpleCNN: the notes' 10-20-50 network, widened by its arguments."""

import pytest
import torch

import zoo


def test_simple_cnn_widths_are_arguments():
    """channels= and hidden_size= widen SimpleCNN; the defaults keep the 10-20-50 network of the notes."""
    small, wide = zoo.create_model("simple_cnn"), zoo.create_model("simple_cnn", channels=[32, 64], hidden_size=128)
    assert sum(p.numel() for p in small.parameters()) == (1 * 10 * 25 + 10) + (10 * 20 * 25 + 20) + (320 * 50 + 50) + (50 * 10 + 10)
    assert sum(p.numel() for p in wide.parameters()) == (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (64 * 16 * 128 + 128) + (128 * 10 + 10)
    assert wide(torch.zeros(2, 1, 28, 28)).shape == (2, 10) and wide.num_features == 128
    with pytest.raises(ValueError, match="two positive conv widths"):
        zoo.create_model("simple_cnn", channels=[32])
