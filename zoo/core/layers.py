"""Small building blocks shared across model families.

``make_activation``  an activation module by name ("relu", "gelu", ...): MLP, LeNet-5, autoencoders, DQN.
``make_rnn``         a batch-first RNN / LSTM / GRU: the recurrent classifiers and the forecaster.
``check_token_ids``  the input check of every model that reads token ids (B, T).
``init_conv_net``    He-normal convolutions, unit batch norms: the initialisation of the convolutional families.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "RNN_CELLS", "check_token_ids", "init_conv_net", "make_activation", "make_rnn"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}

RNN_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name``, one of ``ACTIVATIONS``; anything else is a ValueError."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool) -> nn.RNNBase:
    """A batch-first ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``; dropout applies between stacked layers."""
    if cell not in RNN_CELLS:
        raise ValueError(f"cell must be one of {tuple(RNN_CELLS)}, got {cell!r}")
    return RNN_CELLS[cell](
        input_size,
        hidden_size,
        num_layers=num_layers,
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
        batch_first=True,
    )


def check_token_ids(module: nn.Module, x: Tensor) -> Tensor:
    """Raise a ValueError unless ``x`` is an integer (B, T) tensor of token ids; ``module`` names the model."""
    name = type(module).__name__
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of token ids of shape (B, T), got {type(x).__name__}")
    if x.is_floating_point() or x.dtype == torch.bool:
        raise ValueError(f"{name} expects an integer tensor of token ids of shape (B, T), got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} expects input of shape (B, T) (token ids, 0 = padding), got {tuple(x.shape)}")
    return x


def init_conv_net(module: nn.Module, *, fan: str = "fan_out", zero_linear_bias: bool = False) -> None:
    """Initialise ``module`` in place as torchvision does its ResNets, VGGs and DenseNets.

    Convolutions: He normal for ReLU (``fan="fan_out"`` as ResNet and VGG, ``"fan_in"`` as DenseNet), zero
    biases; batch norms: weight 1, bias 0; linear layers keep PyTorch's default weights, their biases zeroed
    when ``zero_linear_bias``.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=fan, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and zero_linear_bias:
            nn.init.zeros_(m.bias)
