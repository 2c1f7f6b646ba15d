"""zoo.layers: the building blocks shared across families."""

import pytest
import torch
from torch import nn

from zoo.core.layers import ACTIVATIONS, check_token_ids, make_activation, make_rnn


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_make_activation_builds_a_fresh_module(name):
    a, b = make_activation(name), make_activation(name)
    assert isinstance(a, ACTIVATIONS[name]) and a is not b


def test_make_activation_names_the_choices():
    with pytest.raises(ValueError, match="activation must be one of .*'relu'.*got 'swish'"):
        make_activation("swish")


@pytest.mark.parametrize(("cell", "cls"), [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_make_rnn_is_batch_first(cell, cls):
    rnn = make_rnn(cell, 5, 7, num_layers=2, dropout=0.3, bidirectional=True)
    assert isinstance(rnn, cls) and rnn.dropout == 0.3
    out, _ = rnn(torch.zeros(3, 4, 5))  # (B, T, F)
    assert out.shape == (3, 4, 14)
    assert make_rnn(cell, 5, 7, num_layers=1, dropout=0.3, bidirectional=False).dropout == 0.0  # no stack, no dropout


def test_make_rnn_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell must be one of"):
        make_rnn("transformer", 5, 7, 1, 0.0, False)


def test_check_token_ids():
    ids = torch.tensor([[1, 2, 0]])
    assert check_token_ids(nn.Identity(), ids) is ids
    with pytest.raises(ValueError, match="Identity expects an integer tensor"):
        check_token_ids(nn.Identity(), ids.float())
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        check_token_ids(nn.Identity(), ids[0])
    with pytest.raises(TypeError):
        check_token_ids(nn.Identity(), [[1, 2]])
