"""Whole-word masking on WordPiece ids: a "##" piece is selected with its word, 80/10/10 per selected piece,
specials never touched; the ids agree with BERT's."""

import math

import pytest
import torch

from zoo.core.masking import FIRST_WORD_ID, IGNORE_INDEX, MASK_ID, continuation_table, whole_word_mask
from zoo.core.tokenizer import Tokenizer
from zoo.models.sequence import bert

TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "un", "##bel", "##iev", "##ably", "the", "cat", "##s", "sat", "##", "a"]


def crafted_batch(rows: int) -> tuple[Tokenizer, torch.Tensor, list[list[tuple[int, int]]]]:
    """``rows`` copies of "[CLS] the cats sat unbelievably [SEP] ##s a [SEP] pad pad", and each word's span."""
    tok = Tokenizer(TOKENS, level="wordpiece")
    words = tok.encode("the cats sat unbelievably")  # the | cat ##s | sat | un ##bel ##iev ##ably
    row = [2, *words, 3, TOKENS.index("##s"), TOKENS.index("a"), 3, 0, 0]
    spans = [(1, 2), (2, 4), (4, 5), (5, 9), (10, 11), (11, 12)]  # "##s" after [SEP] is a word of its own
    return tok, torch.tensor([row] * rows), spans


def test_ids_agree_with_bert_and_the_table_marks_continuations():
    assert (MASK_ID, FIRST_WORD_ID, IGNORE_INDEX) == (bert.MASK_ID, bert.FIRST_WORD_ID, bert.IGNORE_INDEX)
    table = continuation_table(TOKENS)
    assert [TOKENS[i] for i in table.nonzero().squeeze(1).tolist()] == ["##bel", "##iev", "##ably", "##s"]  # "##" alone is a mark


def test_words_are_selected_whole_at_mask_prob_and_specials_never():
    tok, ids, spans = crafted_batch(4000)
    assert tok.decode(ids[0]) == "the cats sat unbelievably"
    inputs, labels = whole_word_mask(ids, continuation_table(TOKENS), mask_prob=0.3, generator=torch.Generator().manual_seed(0))
    selected = labels != IGNORE_INDEX  # (B, T)
    for start, end in spans:
        word = selected[:, start:end]
        assert (word.all(1) | ~word.any(1)).all(), f"a word at {start}:{end} was selected in part"
        rate = word[:, 0].float().mean().item()
        assert abs(rate - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 4000), rate
    special = ids < FIRST_WORD_ID
    assert not selected[special].any() and torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[selected], ids[selected]) and torch.equal(inputs[~selected], ids[~selected])
    # "un ##bel ##iev ##ably" selected together: its four pieces are replaced one by one, 80/10/10
    k = int(selected.sum())
    masked = int((inputs[selected] == MASK_ID).sum())
    unchanged = int((inputs[selected] == ids[selected]).sum())
    assert abs(masked - 0.8 * k) < 5 * math.sqrt(k * 0.16) and abs(unchanged - 0.1 * k) < 5 * math.sqrt(k * 0.09) + k / 10
    replaced = inputs[selected & (inputs != MASK_ID) & (inputs != ids)]
    assert len(replaced) > 0.08 * k and replaced.min() >= FIRST_WORD_ID and replaced.max() < len(TOKENS)
    long_word = inputs[selected[:, 5], 5:9]  # rows where the long word was selected
    assert ((long_word == MASK_ID).sum(1) < 4).any()  # per-piece replacement: sometimes not all four are [MASK]


def test_without_continuations_each_piece_is_drawn_alone():
    _, ids, _ = crafted_batch(4000)
    _, labels = whole_word_mask(ids, torch.zeros(len(TOKENS), dtype=torch.bool), mask_prob=0.3, generator=torch.Generator().manual_seed(1))
    word = (labels[:, 5:9] != IGNORE_INDEX).sum(1)  # the four pieces of "unbelievably"
    assert ((word > 0) & (word < 4)).float().mean() > 0.5  # selected in part, as BERT's first recipe does


def test_same_generator_same_masks_and_clear_errors():
    _, ids, _ = crafted_batch(8)
    table = continuation_table(TOKENS)
    a = whole_word_mask(ids, table, generator=torch.Generator().manual_seed(3))
    b = whole_word_mask(ids, table, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        whole_word_mask(ids[0], table)
    with pytest.raises(ValueError, match="mask_prob must be in"):
        whole_word_mask(ids, table, mask_prob=1.0)
    with pytest.raises(ValueError, match="token id 9 lies outside the vocabulary of 8 tokens"):
        whole_word_mask(ids.clamp(max=9), table[:8])
    with pytest.raises(ValueError, match="must exceed 5 tokens"):
        whole_word_mask(ids.clamp(max=4), table[:5])
