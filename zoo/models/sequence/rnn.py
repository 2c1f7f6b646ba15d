"""Recurrent classifiers: Elman RNN, LSTM (Hochreiter & Schmidhuber, 1997) and GRU (Cho et al., 2014).

One class, ``RecurrentClassifier``, with the cell type as an argument; ``rnn``, ``lstm`` and ``gru``
are its registered variants. It reads either float sequences (B, T, F) (a Fashion-MNIST image read
as 28 rows of 28 pixels, a sensor trace) or token ids (B, T) through an embedding, where id 0 is
padding: padded batches are packed, so the padding never changes a sequence's result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from zoo.core.base import ClassifierModule
from zoo.core.layers import check_token_ids, make_rnn
from zoo.core.preprocessing import ImageInputModule
from zoo.core.registry import register_model
from zoo.core.tokenizer import PAD_ID

__all__ = ["RecurrentClassifier"]


class RecurrentClassifier(ImageInputModule, ClassifierModule):
    """A stacked RNN / LSTM / GRU whose final state feeds a linear classifier.

    The features are the last layer's final hidden state; in bidirectional mode the last forward state
    concatenated with the first backward state (the backward pass's final state), as in the notes' LSTM2.
    With ``vocab_size > 0`` the input is token ids (B, T) with 0 as padding: each sequence runs packed
    to its own length, so trailing padding leaves the result unchanged. Otherwise the input is a float
    sequence (B, T, F); a one-channel image batch (B, 1, H, W) is read as H steps of W features.
    Trained on images read as rows, it records their normalization and class names, so ``transforms()``
    and ``zoo.predict`` turn a raw (1, seq_len, input_size) image into its (seq_len, input_size) rows;
    a token model has its tokenizer instead.

    Args:
        cell: "rnn" (tanh Elman), "lstm" or "gru".
        input_size: features per step of a float sequence (F), e.g. 28 pixels of a Fashion-MNIST row.
        seq_len: steps of a float sequence (T); 0 accepts any length.
        vocab_size: token vocabulary size, padding (id 0) included; > 0 switches to token-id input
            through an embedding.
        embedding_dim: width of the token embedding (token input only).
        hidden_size: hidden state width of each layer and direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers and before the head.
        bidirectional: run a backward pass too and classify concat(last forward, first backward state).
        tokenizer: the vocabulary as primitives (``zoo.tokenizer.Tokenizer.to_config()``), stored so a
            checkpoint can encode raw text without the dataset; None for float input.
        **kwargs: ``ImageInputModule``'s ``mean``, ``std``, ``class_names`` (images read as rows), then
            ``ClassifierModule``'s arguments.
    """

    def __init__(
        self,
        *,
        cell: str = "lstm",
        input_size: int = 28,
        seq_len: int = 28,
        vocab_size: int = 0,
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        tokenizer: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if input_size < 1 or hidden_size < 1 or num_layers < 1 or seq_len < 0 or vocab_size < 0:
            raise ValueError(
                f"input_size, hidden_size, num_layers must be >= 1 and seq_len, vocab_size >= 0; got "
                f"{input_size}, {hidden_size}, {num_layers}, {seq_len}, {vocab_size}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = cell
        self.seq_len = seq_len
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID) if vocab_size else None
        self.rnn = make_rnn(cell, embedding_dim if vocab_size else input_size, hidden_size, num_layers, dropout, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), self.num_outputs)

    @property
    def takes_tokens(self) -> bool:
        return self.embedding is not None

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.takes_tokens:
            return (self.seq_len or 16,)
        return (self.seq_len or 28, self.rnn.input_size)

    @property
    def example_input_array(self) -> Tensor:
        if self.takes_tokens:
            return torch.ones(2, *self.input_shape, dtype=torch.long)  # (B=2, T) token ids
        return torch.zeros(2, *self.input_shape)  # (B=2, T, F)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(1, seq_len, input_size): the one-channel image whose rows are the steps; a ValueError otherwise."""
        if self.takes_tokens:
            raise ValueError(
                f"this {type(self).__name__} reads token ids, not images, so it has no image transforms: "
                "encode text with the tokenizer it carries (hparams['tokenizer'])"
            )
        if not self.seq_len:
            raise ValueError(f"this {type(self).__name__} reads sequences of any length (seq_len=0), not images of a fixed size")
        return (1, self.seq_len, self.rnn.input_size)

    def _describe_shape(self) -> str:
        t = f"T={self.seq_len}" if self.seq_len else "T"
        return f"(B, {t}, F={self.rnn.input_size})"

    def check_input(self, x: Tensor) -> Tensor:
        if self.takes_tokens:
            return check_token_ids(self, x)
        if isinstance(x, Tensor) and x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]  # (B, 1, H, W) image -> (B, T=H, F=W)
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return super().check_input(x)  # the base class's dtype message
        t_ok = not self.seq_len or (x.ndim == 3 and x.shape[1] == self.seq_len)
        if x.ndim != 3 or x.shape[2] != self.rnn.input_size or not t_ok:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {self._describe_shape()}, got {tuple(x.shape)}. "
                "Build the model for your data (input_size=, seq_len=0 for any length)."
            )
        return x

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, F) float or (B, T) token ids -> (B, num_classes) logits, or (B, 1) in binary mode."""
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, T, F) or (B, T) ids -> (B, hidden_size * directions): the final state(s) of the top layer."""
        x = self.check_input(x)
        if self.takes_tokens:
            lengths = (x != PAD_ID).sum(1).clamp(min=1)  # (B,) trailing padding is not read
            seq = pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        else:
            seq = x  # (B, T, F)
        _, h_n = self.rnn(seq)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        # h_n: (num_layers * directions, B, H); the top layer's states are the last `directions` rows.
        if self.rnn.bidirectional:
            # Forward state after the last step, backward state after reading back to the first step.
            features = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H)
        else:
            features = h_n[-1]  # (B, H)
        return self.dropout(features)


@register_model("rnn")
def rnn(**kwargs) -> RecurrentClassifier:
    """Elman RNN (tanh) classifier."""
    return RecurrentClassifier(**{"cell": "rnn", **kwargs})


@register_model("lstm")
def lstm(**kwargs) -> RecurrentClassifier:
    """LSTM classifier; by default 2 layers of 128 reading Fashion-MNIST rows."""
    return RecurrentClassifier(**{"cell": "lstm", **kwargs})


@register_model("gru")
def gru(**kwargs) -> RecurrentClassifier:
    """GRU classifier."""
    return RecurrentClassifier(**{"cell": "gru", **kwargs})
