"""Text <-> token ids: a word- or character-level ``Tokenizer`` and the special-token ids.

Ids 0..3 are the special tokens pad, unk, bos and eos. A tokenizer's whole state is primitives
(``to_config()``: the token list, the level, lowercasing), so a model keeps it in its hyperparameters
and a checkpoint loaded with ``weights_only=True`` encodes and decodes text without the dataset.
Model code imports it from here, without importing ``datamodules``; ``datamodules.text`` re-exports it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID", "Tokenizer"]

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# Words, numbers, and each punctuation mark on its own; an apostrophe stays inside a word (don't).
_WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# Marks written without a space before them, and the hyphen written without spaces around it.
_NO_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


class Tokenizer:
    """Text <-> token ids, word- or character-level, with the special tokens pad, unk, bos, eos at 0..3.

    Args:
        tokens: the vocabulary in id order; it must start with ``SPECIAL_TOKENS``.
        level: "word" (words and punctuation marks) or "char" (every character, spaces included).
        lowercase: lowercase text before splitting it.
    """

    def __init__(self, tokens: Sequence[str], *, level: str = "word", lowercase: bool = True) -> None:
        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}")
        if list(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {list(tokens[:4])}")
        self.tokens = list(tokens)
        self.level = level
        self.lowercase = lowercase
        self.index = {t: i for i, t in enumerate(self.tokens)}

    # -- building and storing -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        level: str = "word",
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        reserved: Sequence[str] = (),
    ) -> Tokenizer:
        """The vocabulary of ``texts``: tokens seen at least ``min_freq`` times, the most frequent first,
        at most ``max_size`` entries in all (specials included); ties are broken alphabetically.
        ``reserved`` tokens (BERT's ``"<mask>"``) take the ids right after the specials, 4, 5, ..."""
        splitter = cls(SPECIAL_TOKENS, level=level, lowercase=lowercase)
        counts = Counter(t for text in texts for t in splitter.split(text))
        head = SPECIAL_TOKENS + [t for t in reserved if t not in SPECIAL_TOKENS]
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in head), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(head))]
        return cls(head + ranked, level=level, lowercase=lowercase)

    def to_config(self) -> dict:
        """Primitives that rebuild this tokenizer: ``Tokenizer.from_config(tok.to_config())``."""
        return {"tokens": list(self.tokens), "level": self.level, "lowercase": self.lowercase}

    @classmethod
    def from_config(cls, config: dict) -> Tokenizer:
        return cls(config["tokens"], level=config.get("level", "word"), lowercase=config.get("lowercase", True))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_config() == other.to_config()

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens, level={self.level!r}, lowercase={self.lowercase})"

    # -- text <-> ids ---------------------------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        """Text -> token strings (before the vocabulary lookup)."""
        text = text.lower() if self.lowercase else text
        if self.level == "char":
            return list(text)
        return _WORD_RE.findall(text)

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False, max_len: int | None = None) -> list[int]:
        """Text -> ids; unknown tokens become ``UNK_ID``; truncated to ``max_len`` ids (eos kept last)."""
        ids = [self.index.get(t, UNK_ID) for t in self.split(text)]
        if max_len is not None:
            ids = ids[: max_len - int(add_bos) - int(add_eos)]
        return [BOS_ID] * add_bos + ids + [EOS_ID] * add_eos

    def encode_batch(self, texts: Sequence[str], *, max_len: int, add_bos: bool = False, add_eos: bool = False) -> Tensor:
        """Texts -> (N, T) int64 ids padded with ``PAD_ID`` on the right, T <= ``max_len``."""
        rows = [self.encode(t, add_bos=add_bos, add_eos=add_eos, max_len=max_len) for t in texts]
        out = torch.full((len(rows), max(1, max((len(r) for r in rows), default=1))), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Ids -> text: stops at the first eos, drops pad and bos, rejoins words and punctuation."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        words = []
        for i in ids:
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            words.append(self.tokens[i] if 0 <= i < len(self.tokens) else SPECIAL_TOKENS[UNK_ID])
        if self.level == "char":
            return "".join(words)
        return self.detokenize(words)

    @staticmethod
    def detokenize(words: Sequence[str]) -> str:
        """Word tokens -> text: "quatre - vingt , dix" -> "quatre-vingt, dix"."""
        text = " ".join(words).replace(" - ", "-").replace(" ' ", "'")
        return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))

    def normalize(self, text: str) -> str:
        """``text`` as this tokenizer would give it back: what ``decode(encode(text))`` returns, unknowns aside."""
        words = self.split(text)
        return "".join(words) if self.level == "char" else self.detokenize(words)
