"""Masked-language-model pre-training data that a classifier's held-out entries never reach.

``MaskedLMDataModule`` pre-trains on the *training* entries of every fortune category plus the unlabelled
``extra_corpora`` (GCIDE's definitions), and on nothing else: by construction it never loads an entry that
``TextCorpusDataModule``'s seeded hash puts in validation or test (for any choice of categories), and the
extra texts that share 8 words in a row with such an entry are dropped before anything reads them. Its
own validation and test texts are carved out of that pool by a second hash (``holdout_fraction`` each).
The vocabulary is ``TextCorpusDataModule``'s: every category's training entries and the extra texts, so
the classifier recipe that names the same data settings and ``extra_corpora`` builds the same one.

It masks the batches itself and hands the model ``{"inputs": (B, T), "labels": (B, T)}``
(``BertForMaskedLM`` then skips its own corruption): training batches afresh from the global RNG, validation
and test once, with a fixed seed, so ``val/mlm_acc`` compares across epochs and runs. ``whole_word_mask``
selects whole WordPiece words (``zoo.core.masking``); without it each piece is drawn alone, as BERT first did.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from datamodules.base import InMemoryDataset
from datamodules.corpus import TextCorpusDataModule
from zoo.core.masking import continuation_table, whole_word_mask
from zoo.core.tokenizer import PAD_ID

__all__ = ["MaskedLMDataModule"]

_FIXED_MASK_SEED = 10_000


class MaskedLMDataModule(TextCorpusDataModule):
    """BERT pre-training batches, ``{"inputs", "labels"}``, from the training fortunes and the extra corpora.

    Args:
        whole_word_mask: select whole words (a "##" piece with the word it continues); False: piece by piece.
        mask_prob: the chance that a word (a piece, without ``whole_word_mask``) is selected for prediction.
        holdout_fraction: share of the pre-training texts held out for validation, and the same share for test.
        data_dir: a fortunes folder (see ``TextCorpusDataModule``).
        categories: must stay None: pre-training reads the training entries of every category.
        extra_corpora: unlabelled corpora added to pre-training and to the vocabulary: "gcide" or a dictd file.
        max_extra_texts: read at most this many texts of each extra corpus (0: all), for quick runs.
        level: "word", "char" or "wordpiece" tokens.
        min_freq: keep tokens (merges, for "wordpiece") seen at least this many times.
        max_size: vocabulary size at most, the specials and ``<mask>`` included.
        max_len: tokens kept per text, [CLS] and [SEP] included.
        batch_size: samples per batch for every split.
        val_fraction: the classifier's validation share: entries it holds out are never read here.
        test_fraction: the classifier's test share: entries it holds out are never read here.
        seed: seed of the classifier's split hash; pre-training's own held-out texts hash with it too.
    """

    def __init__(self, *, whole_word_mask: bool = False, mask_prob: float = 0.15, holdout_fraction: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.categories is not None:
            raise ValueError("MaskedLMDataModule pre-trains on every category's training entries: leave categories unset (None)")
        if not 0.0 < mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
        if not 0.0 < holdout_fraction < 0.5:
            raise ValueError(f"holdout_fraction must be in (0, 0.5), got {holdout_fraction}")
        if self.train_fraction != 1.0:
            raise ValueError("train_fraction subsets a classifier's labels; MaskedLMDataModule reads no labels")
        self.whole_word_mask = whole_word_mask
        self.mask_prob = mask_prob
        self.holdout_fraction = holdout_fraction
        self._continues: Tensor | None = None

    def pretraining_split_of(self, text: str) -> int:
        """0 train, 1 validation, 2 test, among the pre-training texts (a hash salted apart from ``split_of``)."""
        u = int.from_bytes(hashlib.sha1(f"mlm\0{self.seed}\0{text}".encode()).digest()[:8], "big") / 2.0**64
        return 1 if u < self.holdout_fraction else 2 if u < 2 * self.holdout_fraction else 0

    def pretraining_texts(self) -> list[str]:
        """Every text pre-training reads: the training entries of every category, then the decontaminated extra texts."""
        fortunes = [t for entries in self.corpus().values() for t in entries if self.split_of(t) == 0]
        seen = set(fortunes)
        return fortunes + [t for t in self.extra_texts() if t not in seen]

    def read_texts(self) -> tuple[tuple[list[str], Tensor], None]:
        texts = self.pretraining_texts()
        self._splits = torch.tensor([self.pretraining_split_of(t) for t in texts], dtype=torch.long)
        self._labels = torch.zeros(len(texts), dtype=torch.long)  # unlabelled: the model reads none
        return (texts, self._labels), None

    def continues(self) -> Tensor:
        """(V,) bool: the "##" pieces, all False without ``whole_word_mask`` (each piece is then a word)."""
        if self._continues is None:
            tokens = self.get_tokenizer().tokens
            self._continues = continuation_table(tokens) if self.whole_word_mask else torch.zeros(len(tokens), dtype=torch.bool)
        return self._continues

    def mask(self, ids: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(B, T) ids -> (inputs, labels), both (B, T): this datamodule's corruption."""
        return whole_word_mask(ids, self.continues(), mask_prob=self.mask_prob, generator=generator)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        super().setup(stage)
        for name in ("val_set", "test_set"):  # masked once, with a fixed seed: the same targets every epoch
            ids = getattr(self, name).tensors[0]
            setattr(self, name, InMemoryDataset(*self.mask(ids, torch.Generator().manual_seed(_FIXED_MASK_SEED))))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, Tensor):
            return batch  # the model's example input, already ids
        if self.trainer is not None and self.trainer.training:
            ids = batch[0]  # (B, T)
            inputs, labels = self.mask(ids)  # the global RNG: fresh masks every epoch, seeded by seed_everything
        else:
            inputs, labels = batch  # (B, T) each, masked in setup
        used = (inputs != PAD_ID).any(0).nonzero()  # trailing padding of the whole batch cut
        t = int(used.max()) + 1 if len(used) else 1
        return {"inputs": inputs[:, :t], "labels": labels[:, :t]}
