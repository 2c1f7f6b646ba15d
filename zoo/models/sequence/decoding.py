"""What the translation models share: greedy and beam-search decoding, and ``TranslationModule``.

A translation model implements two methods and gets decoding, training and metrics from here:

* ``encode(src) -> state``: a dict of batch-first tensors (encoder outputs, masks, recurrent state);
* ``decode_step(prev_token, state) -> (logits, state)``: next-token logits (B, V) given the previous token.

Beam search reorders and repeats the state along its first dimension, so the state must be batch-first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.text import BLEUScore

from zoo.core.base import ZooModule
from zoo.core.layers import check_token_ids
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from zoo.viz.figures import save_or_log_table, should_draw

__all__ = ["TranslationModule", "beam_search", "greedy_decode"]


def _select(state: dict[str, Tensor], index: Tensor) -> dict[str, Tensor]:
    return {k: v.index_select(0, index) for k, v in state.items()}


@torch.no_grad()
def greedy_decode(model: TranslationModule, src: Tensor, max_len: int) -> Tensor:
    """(B, S) source ids -> (B, <= max_len) target ids (no bos), each row ending at its eos or at ``max_len``."""
    state = model.encode(src)
    token = torch.full((src.shape[0],), BOS_ID, dtype=torch.long, device=src.device)
    out, done = [], torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, state = model.decode_step(token, state)  # (B, V)
        token = logits.argmax(-1).masked_fill(done, PAD_ID)
        out.append(token)
        done |= token == EOS_ID
        if done.all():
            break
    return torch.stack(out, 1)


@torch.no_grad()
def beam_search(model: TranslationModule, src: Tensor, max_len: int, beam_size: int = 4, length_penalty: float = 0.6) -> Tensor:
    """(B, S) source ids -> (B, <= max_len) ids of the best of ``beam_size`` hypotheses per sentence.

    Hypotheses are ranked by log-probability / length**``length_penalty`` (Wu et al., 2016, simplified).
    A finished hypothesis (eos emitted) stays in its beam at no further cost.
    """
    if beam_size <= 1:
        return greedy_decode(model, src, max_len)
    b, k = src.shape[0], beam_size
    device = src.device
    state = _select(model.encode(src), torch.arange(b, device=device).repeat_interleave(k))  # (B*k, ...)
    tokens = torch.full((b * k, 1), BOS_ID, dtype=torch.long, device=device)
    scores = torch.zeros(b, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
    finished = torch.zeros(b * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(b * k, device=device)
    for _ in range(max_len):
        logits, state = model.decode_step(tokens[:, -1], state)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*k, V)
        vocab = logp.shape[-1]
        logp[finished] = float("-inf")
        logp[finished, EOS_ID] = 0.0  # a finished hypothesis only repeats eos, for free
        candidates = (scores.view(-1, 1) + logp).view(b, k * vocab)
        scores, flat = candidates.topk(k, dim=-1)  # (B, k)
        beam = torch.div(flat, vocab, rounding_mode="floor")
        token = flat % vocab
        rows = (torch.arange(b, device=device)[:, None] * k + beam).view(-1)  # (B*k,) parent hypotheses
        state = _select(state, rows)
        lengths = lengths[rows] + (~finished[rows]).float()
        finished = finished[rows] | (token.view(-1) == EOS_ID)
        tokens = torch.cat([tokens[rows], token.view(-1, 1)], dim=1)
        if finished.all():
            break
    normalized = scores / lengths.view(b, k).clamp(min=1) ** length_penalty
    best = normalized.argmax(-1) + torch.arange(b, device=device) * k
    out = tokens[best, 1:]  # drop bos
    after_eos = (out == EOS_ID).long().cumsum(1) - (out == EOS_ID).long() > 0
    return out.masked_fill(after_eos, PAD_ID)


class TranslationModule(ZooModule):
    """Base of the encoder-decoder models: teacher-forced cross-entropy, decoding, exact match and BLEU.

    Batches are ``(src, tgt)``: src (B, S) ids ending with eos, tgt (B, T) = bos ... eos, 0-padded.
    ``forward(src, tgt_in)`` returns next-token logits (B, T, V). Validation decodes greedily (cheap),
    test and predict use beam search with ``beam_size``.

    Args:
        src_vocab_size: source vocabulary size (linked from the datamodule).
        tgt_vocab_size: target vocabulary size (linked from the datamodule).
        src_tokenizer: source vocabulary as primitives (``Tokenizer.to_config()``), so a checkpoint translates raw text.
        tgt_tokenizer: target vocabulary as primitives.
        max_decode_len: most target tokens generated per sentence.
        beam_size: beams at test and predict time (1: greedy).
        label_smoothing: cross-entropy label smoothing.
    """

    monitor = "val/exact_match"
    monitor_mode = "max"

    def __init__(
        self,
        *,
        src_vocab_size: int = 40,
        tgt_vocab_size: int = 40,
        src_tokenizer: dict | None = None,
        tgt_tokenizer: dict | None = None,
        max_decode_len: int = 48,
        beam_size: int = 4,
        label_smoothing: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if min(src_vocab_size, tgt_vocab_size) < 5:
            raise ValueError(f"vocabularies hold the 4 special tokens and at least one word, got {src_vocab_size}, {tgt_vocab_size}")
        self.max_decode_len = max_decode_len
        self.beam_size = beam_size
        self.label_smoothing = label_smoothing
        for stage in ("val", "test"):
            setattr(self, f"{stage}_exact_match", MeanMetric())
            setattr(self, f"{stage}_bleu", BLEUScore(n_gram=4, smooth=True))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (12,)

    @property
    def example_input_array(self) -> tuple[Tensor, Tensor]:
        src = torch.full((2, 12), 4, dtype=torch.long)
        tgt = torch.full((2, 10), 4, dtype=torch.long)
        tgt[:, 0] = BOS_ID
        return src, tgt

    def check_input(self, x: Tensor) -> Tensor:
        return check_token_ids(self, x)

    # -- to implement ---------------------------------------------------------------------------------
    def encode(self, src: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def decode_step(self, prev_token: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    # -- decoding and text ----------------------------------------------------------------------------
    def generate(self, src: Tensor, beam_size: int | None = None, max_len: int | None = None) -> Tensor:
        """(B, S) source ids -> (B, L) target ids (no bos; eos then padding)."""
        check_token_ids(self, src)
        beam_size = self.beam_size if beam_size is None else beam_size
        return beam_search(self, src, max_len or self.max_decode_len, beam_size=beam_size)

    def tokenizers(self):
        if not self.hparams.src_tokenizer or not self.hparams.tgt_tokenizer:
            raise ValueError(f"{type(self).__name__} has no stored tokenizers: train it with a TranslationDataModule")
        return Tokenizer.from_config(self.hparams.src_tokenizer), Tokenizer.from_config(self.hparams.tgt_tokenizer)

    @torch.no_grad()
    def translate(self, texts: str | list[str], beam_size: int | None = None) -> str | list[str]:
        """Translate a sentence or a list of sentences with the stored tokenizers (no dataset needed)."""
        src_tok, tgt_tok = self.tokenizers()
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        was_training = self.training
        self.eval()
        src = src_tok.encode_batch(batch, max_len=256, add_eos=True).to(self.device)
        out = [tgt_tok.decode(row) for row in self.generate(src, beam_size=beam_size)]
        self.train(was_training)
        return out[0] if single else out

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["zoo_class"] = type(self).__name__  # lets ``zoo.load_checkpoint`` pick the class

    # -- steps ----------------------------------------------------------------------------------------
    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD_ID, label_smoothing=self.label_smoothing)

    def _loss(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        src, tgt = batch
        logits = self(src, tgt[:, :-1])  # (B, T-1, V): teacher forcing
        loss = self.compute_loss(logits, tgt[:, 1:])
        self._log_loss(stage, loss, len(src))
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._loss(batch, "train")

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, beam_size: int) -> Tensor:
        loss = self._loss(batch, stage)
        src, tgt = batch
        # Bounded by the references' length (+ a margin): an untrained model stops there, not at max_decode_len.
        max_len = min(self.max_decode_len, tgt.shape[1] + 4)
        hyp = beam_search(self, src, max_len, beam_size=beam_size)
        self._keep_samples(src, tgt, hyp)
        hyp_words, ref_words = _words(hyp), _words(tgt[:, 1:])
        exact = torch.tensor([h == r for h, r in zip(hyp_words, ref_words)], dtype=torch.float, device=src.device)
        getattr(self, f"{stage}_exact_match").update(exact)
        bleu = getattr(self, f"{stage}_bleu")
        bleu.update([" ".join(h) for h in hyp_words], [[" ".join(r)] for r in ref_words])
        self.log(f"{stage}/exact_match", getattr(self, f"{stage}_exact_match"), on_epoch=True, prog_bar=True, batch_size=len(src))
        self.log(f"{stage}/bleu", bleu, on_epoch=True, prog_bar=True, batch_size=len(src))
        return loss

    # -- a table of sample translations per validation epoch and test run (zoo.figures) ------------------
    #: Sentences in the table: the first ones of the validation / test set.
    num_logged_translations: int = 8

    def _keep_samples(self, src: Tensor, tgt: Tensor, hyp: Tensor) -> None:
        kept = getattr(self, "_samples", None)
        if kept is not None and len(kept) < self.num_logged_translations:
            for s, t, h in zip(src.tolist(), tgt[:, 1:].tolist(), hyp.tolist()):  # reference without bos
                kept.append((s, t, h))
            del kept[self.num_logged_translations :]

    def translation_rows(self, samples: list[tuple[list[int], list[int], list[int]]]) -> list[list[str]]:
        """(source, reference, output) id lists -> rows of text (ids when the model has no stored tokenizers)."""
        try:
            src_tok, tgt_tok = self.tokenizers()
            texts = (src_tok.decode, tgt_tok.decode, tgt_tok.decode)
        except ValueError:
            texts = (lambda ids: " ".join(_words(torch.tensor([ids]))[0]),) * 3
        return [[decode(ids) for decode, ids in zip(texts, sample)] for sample in samples]

    def _start_samples(self) -> None:
        self._samples = [] if should_draw(self) else None

    def _log_samples(self, stage: str) -> None:
        samples, self._samples = getattr(self, "_samples", None), None
        if samples:
            save_or_log_table(self, f"{stage}/translations", ["source", "reference", "output"], self.translation_rows(samples))

    def on_validation_epoch_start(self) -> None:
        self._start_samples()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_samples("val")

    def on_test_epoch_start(self) -> None:
        self._start_samples()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_samples("test")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val", beam_size=1)  # greedy: cheap enough for every epoch

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test", beam_size=self.beam_size)

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Target ids (B, L) decoded with beam search."""
        src = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.generate(src)


def _words(ids: Tensor) -> list[list[str]]:
    """Id rows -> lists of id strings up to the first eos (pad and bos dropped): what exact match and BLEU compare."""
    rows = []
    for row in ids.tolist():
        words = []
        for i in row:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                words.append(str(i))
        rows.append(words)
    return rows
