"""GRU encoder-decoder (Cho et al., 2014; Sutskever et al., 2014) with optional attention
(Bahdanau et al., 2015, additive; Luong et al., 2015, multiplicative) and teacher forcing."""

from __future__ import annotations

import random

import torch
from torch import Tensor, nn

from zoo.core.registry import register_model
from zoo.core.tokenizer import PAD_ID
from zoo.models.sequence.decoding import TranslationModule

__all__ = ["Seq2Seq"]


class Attention(nn.Module):
    """Scores decoder query (B, H) against encoder outputs (B, S, H) -> context (B, H), weights (B, S)."""

    def __init__(self, kind: str, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":  # v^T tanh(W q + U k)
            self.query = nn.Linear(hidden_size, hidden_size, bias=False)
            self.key = nn.Linear(hidden_size, hidden_size)
            self.v = nn.Linear(hidden_size, 1, bias=False)
        else:  # luong "general": q^T W k
            self.key = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, query: Tensor, memory: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(self.query(query)[:, None] + self.key(memory))).squeeze(-1)  # (B, S)
        else:
            scores = torch.einsum("bh,bsh->bs", query, self.key(memory))  # (B, S)
        weights = scores.masked_fill(~src_mask, float("-inf")).softmax(-1)  # padding gets no attention
        return torch.einsum("bs,bsh->bh", weights, memory), weights


@register_model("seq2seq")
class Seq2Seq(TranslationModule):
    """A GRU encoder reads the source; a GRU decoder, started from its final state, writes the target.

    With ``attention="bahdanau"`` the decoder attends before each step (the context joins its input);
    with ``"luong"`` after it (the context joins its output). During training the decoder reads the true
    previous token with probability ``teacher_forcing`` and its own prediction otherwise; with
    ``teacher_forcing_schedule="linear"`` that probability falls linearly to ``teacher_forcing_min`` over the run.

    Args:
        embedding_dim: width of the source and target embeddings.
        hidden_size: GRU hidden size (encoder and decoder).
        num_layers: stacked GRU layers in the encoder and in the decoder.
        dropout: dropout on embeddings, between GRU layers and before the output layer.
        attention: "none", "bahdanau" or "luong".
        teacher_forcing: probability of feeding the true previous token during training.
        teacher_forcing_schedule: "constant", or "linear" decay to ``teacher_forcing_min`` by the last epoch.
        teacher_forcing_min: final teacher-forcing probability of the linear schedule.
        **kwargs: ``TranslationModule``'s arguments (vocabularies, tokenizers, ``max_decode_len``, ``beam_size``)
            and ``ZooModule``'s, documented there.
    """

    training_state = ("teacher_forcing_ratio",)  # a schedule's position: pretrained= restarts it

    def __init__(
        self,
        *,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.1,
        attention: str = "bahdanau",
        teacher_forcing: float = 1.0,
        teacher_forcing_schedule: str = "constant",
        teacher_forcing_min: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if attention not in ("none", "bahdanau", "luong"):
            raise ValueError(f"attention must be 'none', 'bahdanau' or 'luong', got {attention!r}")
        if teacher_forcing_schedule not in ("constant", "linear"):
            raise ValueError(f"teacher_forcing_schedule must be 'constant' or 'linear', got {teacher_forcing_schedule!r}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing}")
        hp = self.hparams
        self.attention_kind = attention
        self.teacher_forcing_schedule = teacher_forcing_schedule
        drop_between = dropout if num_layers > 1 else 0.0
        self.src_embedding = nn.Embedding(hp.src_vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.tgt_embedding = nn.Embedding(hp.tgt_vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=drop_between)
        context = hidden_size if attention == "bahdanau" else 0
        self.decoder = nn.GRU(embedding_dim + context, hidden_size, num_layers, batch_first=True, dropout=drop_between)
        self.attention = Attention(attention, hidden_size) if attention != "none" else None
        self.combine = nn.Linear(2 * hidden_size, hidden_size) if attention == "luong" else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, hp.tgt_vocab_size)
        # The current teacher-forcing probability: a buffer, so a resumed run continues the schedule.
        self.register_buffer("teacher_forcing_ratio", torch.tensor(float(teacher_forcing)))

    # -- encoder / decoder ----------------------------------------------------------------------------
    def encode(self, src: Tensor) -> dict[str, Tensor]:
        """(B, S) ids -> state: memory (B, S, H), src_mask (B, S), hidden (B, layers, H)."""
        src_mask = src != PAD_ID
        lengths = src_mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(self.src_embedding(src)), lengths, batch_first=True, enforce_sorted=False)
        memory, hidden = self.encoder(packed)  # hidden: (layers, B, H), at each sentence's last real token
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=src.shape[1])
        return {"memory": memory, "src_mask": src_mask, "hidden": hidden.transpose(0, 1).contiguous()}

    def decode_step(self, prev_token: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """prev_token (B,) -> logits (B, V) and the updated state."""
        hidden = state["hidden"].transpose(0, 1).contiguous()  # (layers, B, H)
        x = self.dropout(self.tgt_embedding(prev_token))  # (B, E)
        if self.attention_kind == "bahdanau":
            context, _ = self.attention(hidden[-1], state["memory"], state["src_mask"])  # attend with s_{t-1}
            x = torch.cat([x, context], dim=-1)  # (B, E + H)
        output, hidden = self.decoder(x[:, None], hidden)  # output: (B, 1, H)
        output = output[:, 0]
        if self.attention_kind == "luong":
            context, _ = self.attention(output, state["memory"], state["src_mask"])  # attend with h_t
            output = torch.tanh(self.combine(torch.cat([output, context], dim=-1)))
        logits = self.out(self.dropout(output))  # (B, V)
        return logits, {**state, "hidden": hidden.transpose(0, 1)}

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """src (B, S), tgt_in (B, T) = bos + target[:-1] -> logits (B, T, V).

        In training, each step reads the true token with probability ``teacher_forcing_ratio``, else the
        model's own previous prediction.
        """
        self.check_input(src)
        self.check_input(tgt_in)
        state = self.encode(src)
        ratio = float(self.teacher_forcing_ratio) if self.training else 1.0
        logits, token = [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, state = self.decode_step(token, state)
            logits.append(step_logits)
            if t + 1 < tgt_in.shape[1]:
                forced = ratio >= 1.0 or random.random() < ratio
                token = tgt_in[:, t + 1] if forced else step_logits.argmax(-1).detach()
        return torch.stack(logits, 1)

    def on_train_epoch_start(self) -> None:
        hp = self.hparams
        if self.teacher_forcing_schedule == "linear" and self.trainer is not None and self.trainer.max_epochs:
            progress = self.current_epoch / max(1, self.trainer.max_epochs - 1)
            self.teacher_forcing_ratio.fill_(hp.teacher_forcing + (hp.teacher_forcing_min - hp.teacher_forcing) * progress)
        self.log("train/teacher_forcing", self.teacher_forcing_ratio, on_step=False, on_epoch=True)
