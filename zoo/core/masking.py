"""Whole-word masking for BERT's masked-language modelling on WordPiece ids (Devlin et al.'s 2019 update of BERT).

BERT's original corruption (``zoo.models.sequence.bert.mask_tokens``) selects pieces one by one, so "un ##bel
##iev ##ably" may lose "##iev" alone and the model guesses it from the pieces around it. Whole-word masking
selects whole words: a word's first piece is drawn with probability ``mask_prob`` and the "##" pieces that
continue it follow its fate. Each selected piece is then replaced as before, independently: [MASK] with
probability 0.8, a random word piece with 0.1, itself with 0.1 (Google's ``create_pretraining_data.py`` draws
per piece too). The ids follow ``zoo.core.tokenizer`` and BERT: specials 0..3, [MASK] at 4, never selected,
nor drawn as random pieces; a "##" piece right after a special starts a word of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo.core.tokenizer import SPECIAL_TOKENS, SUBWORD_PREFIX

__all__ = ["FIRST_WORD_ID", "IGNORE_INDEX", "MASK_ID", "continuation_table", "whole_word_mask"]

MASK_ID = len(SPECIAL_TOKENS)  # 4, as zoo.models.sequence.bert.MASK_ID (core cannot import models)
FIRST_WORD_ID = MASK_ID + 1
IGNORE_INDEX = -100  # the label of a position the loss skips (F.cross_entropy's default)


def continuation_table(tokens: Sequence[str]) -> Tensor:
    """(V,) bool: True for the pieces that continue a word ("##..."), from a vocabulary in id order."""
    return torch.tensor([t.startswith(SUBWORD_PREFIX) and len(t) > len(SUBWORD_PREFIX) for t in tokens], dtype=torch.bool)


def whole_word_mask(ids: Tensor, continues: Tensor, *, mask_prob: float = 0.15, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(B, T) WordPiece ids -> (inputs, labels), both (B, T), selecting whole words (see the module).

    Args:
        ids: (B, T) token ids, padding and specials included.
        continues: (V,) bool, ``continuation_table(tokens)``: which ids are "##" pieces.
        mask_prob: the chance that a word is selected.
        generator: the random draws' source (None: the global RNG).
    """
    if ids.ndim != 2:
        raise ValueError(f"whole_word_mask expects ids of shape (B, T), got {tuple(ids.shape)}")
    vocab_size = continues.numel()
    if vocab_size <= FIRST_WORD_ID:
        raise ValueError(f"the vocabulary must exceed {FIRST_WORD_ID} tokens (the specials and [MASK]), got {vocab_size}")
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
    if ids.numel() and int(ids.max()) >= vocab_size:
        raise ValueError(f"token id {int(ids.max())} lies outside the vocabulary of {vocab_size} tokens")
    continues = continues.to(ids.device)
    word = ids >= FIRST_WORD_ID  # (B, T): pieces that may be selected
    after_word = torch.cat([torch.zeros_like(word[:, :1]), word[:, :-1]], dim=1)  # (B, T): a word piece before it
    starts = word & ~(continues[ids] & after_word)  # (B, T): a word's first piece
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)  # (B, T)
    start_of = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=1).values  # (B, T): its word's first piece
    u = torch.rand(ids.shape, generator=generator, device=ids.device)  # (B, T): selection draw, read at word starts
    v = torch.rand(ids.shape, generator=generator, device=ids.device)  # (B, T): replacement draw, per piece
    random_pieces = torch.randint(FIRST_WORD_ID, vocab_size, ids.shape, generator=generator, device=ids.device)
    selected = word & (starts & (u < mask_prob)).gather(1, start_of)  # (B, T): every piece of a selected word
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    inputs = torch.where(selected & (v < 0.8), torch.full_like(ids, MASK_ID), ids)
    inputs = torch.where(selected & (v >= 0.8) & (v < 0.9), random_pieces, inputs)
    return inputs, labels
