"""BERT (Devlin et al., 2019): an encoder-only Transformer pre-trained by masked-language modelling, then
fine-tuned with a classification head on its first token.

``BertEncoder`` is the shared network: BERT's input embeddings (token + learned position + segment, then
LayerNorm and dropout) and post-LN encoder layers with GELU, the paper's layout. ``BertForMaskedLM``
trains it with the MLM objective, its output layer tied to the token embedding; ``BertClassifier`` puts a
linear head on the final state of the first token ([CLS]) and starts from a ``BertForMaskedLM``
checkpoint with ``pretrained=`` (the encoder's weights only: a fresh head, a fresh optimizer).

Token ids follow ``zoo.tokenizer``: pad 0, unk 1, bos 2 stands for [CLS], eos 3 for [SEP], and the
vocabulary reserves id 4 for [MASK] (``Tokenizer.build(..., reserved=[MASK_TOKEN])``, as
``datamodules.TextCorpusDataModule`` builds it). Segments need no second input: tokens up to and
including the first [SEP] are segment A (0), those after it segment B (1), as BERT lays out a pair.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.base import ClassifierModule, ZooModule
from zoo.core.layers import check_token_ids
from zoo.core.registry import register_model
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS

__all__ = ["BertBase", "BertClassifier", "BertEncoder", "BertForMaskedLM", "CLS_ID", "MASK_ID", "MASK_TOKEN", "SEP_ID", "mask_tokens", "segment_ids"]

log = logging.getLogger(__name__)

CLS_ID, SEP_ID = BOS_ID, EOS_ID
MASK_TOKEN = "<mask>"
MASK_ID = len(SPECIAL_TOKENS)  # 4: the first reserved id
FIRST_WORD_ID = MASK_ID + 1  # ids below are special: never selected for prediction, never drawn as random tokens
IGNORE_INDEX = -100  # the label of a position the MLM loss skips (F.cross_entropy's default ignore_index)


def segment_ids(ids: Tensor) -> Tensor:
    """(B, T) ids -> (B, T) segment ids: 0 up to and including the first [SEP], 1 after it."""
    sep = (ids == SEP_ID).long()
    return ((sep.cumsum(1) - sep) > 0).long()


def mask_tokens(ids: Tensor, *, vocab_size: int, mask_prob: float = 0.15, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT's corruption: (B, T) ids -> (inputs, labels), both (B, T).

    Each word token (not padding, [CLS], [SEP], unk or [MASK]) is selected with probability ``mask_prob``;
    a selected token becomes [MASK] with probability 0.8, a random word token with 0.1, and stays itself
    with 0.1. ``labels`` holds the original id at selected positions and ``IGNORE_INDEX`` elsewhere, so the
    loss reads the selected positions only. Selection is per token (Bernoulli), as in RoBERTa's and Hugging
    Face's collators, rather than exactly 15% of each sequence.
    """
    if vocab_size <= FIRST_WORD_ID:
        raise ValueError(f"vocab_size must exceed {FIRST_WORD_ID} (the specials and [MASK]), got {vocab_size}")
    u = torch.rand(ids.shape, generator=generator, device=ids.device)  # (B, T) selection draw
    v = torch.rand(ids.shape, generator=generator, device=ids.device)  # (B, T) replacement draw
    random_words = torch.randint(FIRST_WORD_ID, vocab_size, ids.shape, generator=generator, device=ids.device)
    selected = (u < mask_prob) & (ids >= FIRST_WORD_ID)  # (B, T)
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    inputs = torch.where(selected & (v < 0.8), torch.full_like(ids, MASK_ID), ids)
    inputs = torch.where(selected & (v >= 0.8) & (v < 0.9), random_words, inputs)
    return inputs, labels


class BertEmbeddings(nn.Module):
    """(B, T) ids, (B, T) segments -> (B, T, D): token + learned position + segment embedding, LayerNorm, dropout."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float, num_segments: int = 2) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.position = nn.Embedding(max_len, d_model)
        self.segment = nn.Embedding(num_segments, d_model)
        self.norm = nn.LayerNorm(d_model, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor, segments: Tensor) -> Tensor:
        if ids.shape[1] > self.position.num_embeddings:
            raise ValueError(f"BERT expects input of shape (B, T) with T <= max_len={self.position.num_embeddings}, got {tuple(ids.shape)}")
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        h = self.token(ids) + self.position(positions) + self.segment(segments)  # (B, T, D)
        return self.dropout(self.norm(h))


class BertEncoder(nn.Module):
    """BERT's network: (B, T) ids -> (B, T, D) final hidden states; padding (id 0) is masked in attention.

    Post-LN layers (LayerNorm after each residual sum) with GELU, as in the paper; weights drawn from
    N(0, 0.02) like the reference implementation.
    """

    def __init__(self, *, vocab_size: int, d_model: int, nhead: int, num_layers: int, dim_feedforward: int, dropout: float, max_len: int) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=False)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # nn.TransformerEncoder deep-copies one layer: without this, every layer would start with the same
        # attention projections.
        if isinstance(module, nn.MultiheadAttention):
            nn.init.normal_(module.in_proj_weight, std=0.02)
            nn.init.zeros_(module.in_proj_bias)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    def forward(self, ids: Tensor) -> Tensor:
        pad = ids == PAD_ID  # (B, T)
        pad = pad & ~pad.all(1, keepdim=True)  # a row of padding only attends to itself rather than to nothing (NaN)
        h = self.embeddings(ids, segment_ids(ids))  # (B, T, D)
        return self.layers(h, src_key_padding_mask=pad)  # (B, T, D)


def _check_config(vocab_size: int, d_model: int, nhead: int, num_layers: int, dim_feedforward: int, dropout: float, max_len: int, tokenizer: dict | None) -> None:
    for name, value in (("d_model", d_model), ("nhead", nhead), ("num_layers", num_layers), ("dim_feedforward", dim_feedforward), ("max_len", max_len)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if vocab_size <= FIRST_WORD_ID:
        raise ValueError(f"vocab_size must exceed {FIRST_WORD_ID} (4 specials and [MASK]), got {vocab_size}")
    if d_model % nhead:
        raise ValueError(f"d_model must be divisible by nhead, got d_model={d_model}, nhead={nhead}")
    if tokenizer is not None:
        tokens = tokenizer.get("tokens", [])
        if len(tokens) != vocab_size or tokens[MASK_ID : MASK_ID + 1] != [MASK_TOKEN]:
            raise ValueError(
                f"the tokenizer must hold vocab_size={vocab_size} tokens with {MASK_TOKEN!r} at id {MASK_ID} "
                f"(Tokenizer.build(..., reserved=[{MASK_TOKEN!r}])); got {len(tokens)} tokens, id {MASK_ID} = {tokens[MASK_ID : MASK_ID + 1]}"
            )


class BertBase:
    """What both BERT models share, written once: the encoder's hyperparameters, the encoder (``self.bert``)
    and the token-id input. A plain class placed before the model's LightningModule base
    (``class BertClassifier(BertBase, ClassifierModule)``), so the CLI and checkpoints see these arguments
    as the model's own.

    Args:
        vocab_size: token vocabulary size, specials and [MASK] included (linked from the datamodule).
        d_model: hidden width.
        nhead: attention heads.
        num_layers: encoder layers.
        dim_feedforward: hidden width of the feed-forward layers.
        dropout: dropout on embeddings, attention weights and residual branches (and before a classifier's head).
        max_len: longest sequence (size of the position table).
        tokenizer: the vocabulary as primitives, so a checkpoint encodes raw text without the dataset.
        **kwargs: the arguments of the model's LightningModule base (``ZooModule``, ``ClassifierModule``).
    """

    def __init__(
        self,
        *,
        vocab_size: int = 1000,
        d_model: int = 256,
        nhead: int = 4,
        num_layers: int = 4,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        max_len: int = 128,
        tokenizer: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_config(vocab_size, d_model, nhead, num_layers, dim_feedforward, dropout, max_len, tokenizer)
        self.bert = BertEncoder(vocab_size=vocab_size, d_model=d_model, nhead=nhead, num_layers=num_layers,
                                dim_feedforward=dim_feedforward, dropout=dropout, max_len=max_len)  # fmt: skip

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (min(16, self.hparams.max_len),)

    @property
    def example_input_array(self) -> Tensor:
        ids = torch.arange(self.input_shape[0]).remainder(self.hparams.vocab_size - FIRST_WORD_ID) + FIRST_WORD_ID
        ids[0], ids[-1] = CLS_ID, SEP_ID
        return ids.repeat(2, 1)  # (B=2, T=min(16, max_len)): [CLS] words [SEP]

    def check_input(self, x: Tensor) -> Tensor:
        check_token_ids(self, x)  # a sequence longer than max_len: BertEmbeddings refuses it
        # The range check reads the values: eager only (torch.export, torch.compile and the ONNX tracer see
        # symbolic ids, and an exported graph cannot raise).
        tracing = torch.compiler.is_compiling() or torch.jit.is_tracing()
        if x.numel() and not tracing and (int(x.min()) < 0 or int(x.max()) >= self.hparams.vocab_size):
            raise ValueError(f"{type(self).__name__}: token ids must lie in [0, {self.hparams.vocab_size}), got [{int(x.min())}, {int(x.max())}]")
        return x


@register_model("bert_small")
class BertForMaskedLM(BertBase, ZooModule):
    """BERT pre-training by masked-language modelling: (B, T) ids -> (B, T, vocab_size) logits.

    Each training batch is corrupted afresh (``mask_tokens``: 15% selected, 80/10/10), so every epoch
    masks other positions; validation and test batches use a fixed seed per batch, so ``val/mlm_acc``
    and ``test/mlm_acc`` (accuracy on the selected positions) compare across epochs and runs. The output
    layer is the transposed token embedding plus a bias, after a dense + GELU + LayerNorm transform.

    Args:
        mask_prob: share of the word tokens selected for prediction.
        **kwargs: ``BertBase``'s encoder arguments (``vocab_size``, ``d_model``, ``nhead``, ``num_layers``,
            ``dim_feedforward``, ``dropout``, ``max_len``, ``tokenizer``), then ``ZooModule``'s.
    """

    def __init__(self, *, mask_prob: float = 0.15, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
        d_model, vocab_size = self.hparams.d_model, self.hparams.vocab_size
        self.mlm_transform = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model, eps=1e-12))
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        BertEncoder._init_weights(self.mlm_transform[0])

    def mlm_logits(self, h: Tensor) -> Tensor:
        """(..., D) hidden states -> (..., vocab_size): the output layer is the token embedding, transposed."""
        return F.linear(self.mlm_transform(h), self.bert.embeddings.token.weight, self.mlm_bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T) ids, [MASK] (id 4) where a word is to be guessed -> (B, T, vocab_size) logits."""
        self.check_input(x)
        return self.mlm_logits(self.bert(x))

    def _mlm_step(self, batch: Tensor | tuple[Tensor, ...] | dict[str, Tensor], batch_idx: int, stage: str) -> Tensor:
        if isinstance(batch, dict):  # masked by the datamodule (datamodules.MaskedLMDataModule: whole-word masking)
            inputs, labels = self.check_input(batch["inputs"]), batch["labels"]  # (B, T) each
        else:
            ids = batch[0] if isinstance(batch, (tuple, list)) else batch  # labels of a classification corpus unused
            self.check_input(ids)
            generator = None  # training: the global RNG (seed_everything), fresh masks every epoch
            if stage != "train":
                generator = torch.Generator(device=ids.device).manual_seed(10_000 + batch_idx)
            inputs, labels = mask_tokens(ids, vocab_size=self.hparams.vocab_size, mask_prob=self.hparams.mask_prob, generator=generator)
        h = self.bert(inputs)  # (B, T, D)
        selected = labels != IGNORE_INDEX  # (B, T)
        n = int(selected.sum())
        if n == 0:  # nothing to predict in this batch (tiny or all-special): a zero loss that still has a graph
            return h.sum() * 0.0
        logits = self.mlm_logits(h[selected])  # (N, V): the vocabulary projection at selected positions only
        target = labels[selected]  # (N,)
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(-1) == target).float().mean()
        on_step = stage == "train"
        # batch_size = selected tokens, so the epoch figures are per-token means over the whole split.
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        self.log(f"{stage}/mlm_acc", acc, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=n, sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._mlm_step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx: int) -> Tensor:
        return self._mlm_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> Tensor:
        return self._mlm_step(batch, batch_idx, "test")


@register_model("bert_small_classifier")
class BertClassifier(BertBase, ClassifierModule):
    """BERT fine-tuned for classification: the encoder's final state of the first token ([CLS]) -> linear head.

    ``pretrained=`` a ``BertForMaskedLM`` checkpoint copies its encoder (same configuration and tokenizer
    required) and keeps this model's fresh head; a ``BertClassifier`` source follows the zoo's usual
    fine-tuning rules. Either way only weights travel: the optimizer and schedule start afresh. There is
    no pooler (BERT's tanh layer trained by next-sentence prediction, which this pre-training omits).

    Args:
        **kwargs: ``BertBase``'s encoder arguments (``vocab_size``, ``d_model``, ``nhead``, ``num_layers``,
            ``dim_feedforward``, ``dropout``: also before the head, ``max_len``, ``tokenizer``), then
            ``ClassifierModule``'s.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(self.hparams.dropout)
        self.head = nn.Linear(self.hparams.d_model, self.num_outputs)

    def load_encoder(self, src: BertForMaskedLM, label: str = "the given BertForMaskedLM") -> None:
        """Copy the encoder of a pre-trained ``BertForMaskedLM`` into this model; the head stays fresh."""
        ours, theirs = self.hparams.get("tokenizer"), src.hparams.get("tokenizer")
        if ours and theirs and ours != theirs:
            raise ValueError(
                f"the tokenizer differs from the one {label} was pre-trained with: its embedding rows would stand for "
                "other tokens. Build the datamodule's vocabulary as in pre-training (same data, min_freq, max_size, seed)."
            )
        target, incoming = self.bert.state_dict(), src.bert.state_dict()
        wrong = [f"{k}: {tuple(v.shape)} in the source, {tuple(target[k].shape)} here" for k, v in incoming.items() if k in target and v.shape != target[k].shape]
        if wrong or set(target) != set(incoming):
            keys = ("vocab_size", "d_model", "nhead", "num_layers", "dim_feedforward", "max_len")
            differ = [f"{k}={self.hparams[k]} (source: {src.hparams[k]})" for k in keys if self.hparams[k] != src.hparams[k]]
            raise ValueError(f"the encoder of {label} does not fit this BertClassifier: {'; '.join(wrong + differ)}")
        self.bert.load_state_dict(incoming)
        if not ours and theirs:
            self.hparams["tokenizer"] = theirs
        log.info("BertClassifier: encoder initialised from %s; the %d-class head is fresh", label, self.num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, T) ids, [CLS] first -> (B, d_model): the final hidden state of the first token."""
        self.check_input(x)
        return self.dropout(self.bert(x)[:, 0])  # (B, D)
