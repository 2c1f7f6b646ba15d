"""Unlabelled text that joins a labelled corpus for pre-training and for the vocabulary, kept apart from its
held-out entries.

``read_extra_corpus("gcide")`` reads GCIDE's definitions (``datamodules.gcide``); a path to a dictd
``.dict.dz`` / ``.dict`` file reads that dictionary the same way. ``decontaminate`` drops every extra text that
shares a run of ``n`` words with a held-out text (or equals one), the n-gram test GPT-3's authors used for their
benchmarks (13 words there; 8 here, for fortunes of a few dozen words), so an outside source cannot carry a
test entry into pre-training.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from datamodules.gcide import read_gcide

__all__ = ["DECONTAMINATION_NGRAM", "EXTRA_CORPORA", "decontaminate", "read_extra_corpus", "word_ngrams"]

EXTRA_CORPORA = ("gcide",)
DECONTAMINATION_NGRAM = 8
_WORDS = re.compile(r"\w+")


def read_extra_corpus(name: str, *, max_texts: int = 0) -> list[str]:
    """The texts of an unlabelled corpus: ``"gcide"`` (Debian's dict-gcide, or ``$ZOO_DATA_DIR/gcide``), or the path
    of a dictd ``.dict.dz`` / ``.dict`` file with its ``.index`` beside it.

    Args:
        name: "gcide" or a path ending in ".dict.dz" or ".dict".
        max_texts: keep the first this many texts (0: all), for quick runs.
    """
    if name == "gcide":
        return read_gcide(max_texts=max_texts)
    if name.endswith((".dict.dz", ".dict")):
        return read_gcide(name, max_texts=max_texts)
    raise ValueError(f"unknown extra corpus {name!r}: name one of {', '.join(map(repr, EXTRA_CORPORA))} or a dictd .dict.dz/.dict file")


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The lowercased word n-grams of ``text``; a text of fewer than ``n`` words gives its whole word sequence."""
    words = tuple(_WORDS.findall(text.lower()))
    if len(words) < n:
        return {words} if words else set()
    return {words[i : i + n] for i in range(len(words) - n + 1)}


def decontaminate(texts: Sequence[str], held_out: Iterable[str], *, n: int = DECONTAMINATION_NGRAM) -> list[str]:
    """``texts`` without those that share an ``n``-word run with a ``held_out`` text or have the same words as one.

    Args:
        texts: the candidate texts (say, dictionary definitions).
        held_out: the texts nothing may be learned from (a classifier's validation and test entries).
        n: the length of the shared word run that disqualifies a text.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    banned: set[tuple[str, ...]] = set()
    for text in held_out:
        banned |= word_ngrams(text, n)
    return [t for t in texts if banned.isdisjoint(word_ngrams(t, n))]
