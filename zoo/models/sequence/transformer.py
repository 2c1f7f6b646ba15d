"""The Transformer (Vaswani et al., 2017, "Attention Is All You Need"): the encoder-decoder for
translation, and an encoder-only classifier for text.

Both use scaled token embeddings plus the paper's sinusoidal positions, and padding masks (id 0);
the decoder adds the causal mask. The translation model trains with label smoothing and the paper's
warm-up schedule, lr * min(step / warmup, sqrt(warmup / step)), peaking at ``lr`` after ``warmup_steps``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from zoo.core.base import ClassifierModule
from zoo.core.layers import check_token_ids
from zoo.core.registry import register_model
from zoo.core.tokenizer import PAD_ID
from zoo.models.sequence.decoding import TranslationModule

__all__ = ["PositionalEncoding", "Transformer", "TransformerClassifier"]


class PositionalEncoding(nn.Module):
    """Token embedding * sqrt(d_model) + sinusoidal position encoding, then dropout: (B, T) ids -> (B, T, D)."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.scale = math.sqrt(d_model)
        position = torch.arange(max_len)[:, None]  # (L, 1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)  # PE(pos, 2i)
        pe[:, 1::2] = torch.cos(position * freq)  # PE(pos, 2i+1)
        self.register_buffer("pe", pe, persistent=False)  # a function of the arguments, not a weight
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of {ids.shape[1]} tokens is longer than max_len={self.pe.shape[0]}")
        return self.dropout(self.embedding(ids) * self.scale + self.pe[: ids.shape[1]])


@register_model("transformer")
class Transformer(TranslationModule):
    """Encoder-decoder Transformer for translation; pre-norm by default (``norm_first=False``: the paper's post-norm).

    Args:
        d_model: model width (embeddings, attention, residual stream).
        nhead: attention heads.
        num_encoder_layers: encoder blocks.
        num_decoder_layers: decoder blocks.
        dim_feedforward: hidden width of the position-wise feed-forward layers.
        dropout: dropout on embeddings, attention weights and residual branches.
        max_len: longest source or target sequence (size of the position table).
        norm_first: pre-norm blocks (LayerNorm before each sub-layer), steadier for small, quick runs;
            False gives the paper's post-norm blocks (LayerNorm after each residual sum).
        warmup_steps: linear warm-up steps of the Noam schedule, then 1/sqrt(step) decay; 0 keeps ``scheduler``.
        label_smoothing: cross-entropy label smoothing (0.1 in the paper).
        **kwargs: ``TranslationModule``'s arguments (vocabularies, tokenizers, ``max_decode_len``, ``beam_size``),
            then ``ZooModule``'s: ``lr`` is the peak learning rate (reached after ``warmup_steps``), and
            ``scheduler`` applies when ``warmup_steps`` is 0.
    """

    def __init__(
        self,
        *,
        d_model: int = 128,
        nhead: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        max_len: int = 128,
        norm_first: bool = True,
        warmup_steps: int = 300,
        label_smoothing: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(label_smoothing=label_smoothing, **kwargs)
        if d_model % nhead or d_model % 2:
            raise ValueError(f"d_model must be even and divisible by nhead, got d_model={d_model}, nhead={nhead}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        hp = self.hparams
        self.src_embed = PositionalEncoding(hp.src_vocab_size, d_model, max_len, dropout)
        self.tgt_embed = PositionalEncoding(hp.tgt_vocab_size, d_model, max_len, dropout)
        with warnings.catch_warnings():  # pre-norm blocks cannot use nested tensors: say nothing about it
            warnings.filterwarnings("ignore", "enable_nested_tensor is True")
            self.transformer = nn.Transformer(
                d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout,
                batch_first=True, norm_first=norm_first,
            )  # fmt: skip
        self.out = nn.Linear(d_model, hp.tgt_vocab_size)

    def encode(self, src: Tensor) -> dict[str, Tensor]:
        """(B, S) ids -> memory (B, S, D), src_mask (B, S) True at real tokens, ys (B, 0) tokens so far."""
        src_pad = src == PAD_ID
        memory = self.transformer.encoder(self.src_embed(src), src_key_padding_mask=src_pad)  # (B, S, D)
        return {"memory": memory, "src_mask": ~src_pad, "ys": src.new_zeros(src.shape[0], 0)}

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """tgt_in (B, T), memory (B, S, D) -> logits (B, T, V); position t sees tokens <= t only."""
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=tgt_in.device, dtype=torch.bool)
        h = self.transformer.decoder(
            self.tgt_embed(tgt_in), memory, tgt_mask=causal, tgt_is_causal=True,
            tgt_key_padding_mask=tgt_in == PAD_ID, memory_key_padding_mask=~src_mask,
        )  # fmt: skip
        return self.out(h)

    def decode_step(self, prev_token: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        # The prefix is re-decoded each step (no key/value cache): simple, and cheap for short sentences.
        ys = torch.cat([state["ys"], prev_token[:, None]], dim=1)  # (B, t)
        logits = self.decode(ys, state["memory"], state["src_mask"])[:, -1]  # (B, V)
        return logits, {**state, "ys": ys}

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """src (B, S), tgt_in (B, T) = bos + target[:-1] -> logits (B, T, V)."""
        self.check_input(src)
        self.check_input(tgt_in)
        state = self.encode(src)
        return self.decode(tgt_in, state["memory"], state["src_mask"])

    def configure_optimizers(self):
        warmup = self.hparams.warmup_steps
        if not warmup:
            return super().configure_optimizers()
        if self.hparams.scheduler != "none":
            raise ValueError("warmup_steps > 0 is the Noam schedule: leave scheduler='none' (or set warmup_steps=0)")
        optimizer = super().configure_optimizers()

        def noam(step: int) -> float:  # multiplies lr; 1.0 at step == warmup
            step = max(step, 1)
            return min(step / warmup, math.sqrt(warmup / step))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, noam)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@register_model("transformer_classifier")
class TransformerClassifier(ClassifierModule):
    """Encoder-only Transformer for text classification: token ids -> masked mean of the encoder outputs -> head.

    Padding (id 0) is masked in attention and left out of the mean, so padding never changes the result.
    A row of padding only (an empty text) has no token to average: its features are zeros, and its
    logits the head's bias, instead of the NaN that a fully masked attention row gives.

    Args:
        vocab_size: token vocabulary size, padding (id 0) included (linked from the datamodule).
        d_model: model width.
        nhead: attention heads.
        num_layers: encoder blocks.
        dim_feedforward: hidden width of the feed-forward layers.
        dropout: dropout on embeddings, attention and residual branches, and before the head.
        max_len: longest sequence (size of the position table).
        tokenizer: the vocabulary as primitives, so a checkpoint encodes raw text without the dataset.
    """

    def __init__(
        self,
        *,
        vocab_size: int = 1000,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        max_len: int = 512,
        tokenizer: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if vocab_size < 2 or d_model % nhead or d_model % 2:
            raise ValueError(f"need vocab_size >= 2 and an even d_model divisible by nhead; got {vocab_size}, {d_model}, {nhead}")
        self.vocab_size = vocab_size
        self.embed = PositionalEncoding(vocab_size, d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, self.num_outputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (16,)

    @property
    def example_input_array(self) -> Tensor:
        return torch.ones(2, 16, dtype=torch.long)  # (B=2, T) token ids

    def check_input(self, x: Tensor) -> Tensor:
        return check_token_ids(self, x)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, T) ids -> (B, d_model): mean of the encoder outputs over the real (non-padding) tokens."""
        self.check_input(x)
        pad = x == PAD_ID  # (B, T)
        # A fully masked attention row is a softmax over nothing (NaN): let an all-padding row attend to
        # its padding. The mean below still leaves those positions out, so such a row's features are 0.
        attn_pad = pad & ~pad.all(1, keepdim=True)  # (B, T)
        h = self.encoder(self.embed(x), src_key_padding_mask=attn_pad)  # (B, T, D)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.dropout((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))
