"""Text <-> token ids: a word-, character- or WordPiece-level ``Tokenizer`` and the special-token ids.

Ids 0..3 are the special tokens pad, unk, bos and eos. A tokenizer's whole state is primitives
(``to_config()``: the token list, the level, lowercasing), so a model keeps it in its hyperparameters
and a checkpoint loaded with ``weights_only=True`` encodes and decodes text without the dataset.
Model code imports it from here, without importing ``datamodules``; ``datamodules.text`` re-exports it.

The WordPiece level (BERT's subwords, Devlin et al. 2019) splits text into words as the word level does,
then each word into the longest vocabulary pieces, first to last: "unbelievably" -> "un", "##bel",
"##iev", "##ably" ("##" marks a piece that continues a word). Its vocabulary is trained by Hugging Face
``tokenizers`` (``pip install tokenizers``, the zoo's ``text`` extra) in ``Tokenizer.build``; encoding and
decoding are pure Python and need only the token list, so a checkpoint encodes text without ``tokenizers``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["BOS_ID", "EOS_ID", "LEVELS", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID", "Tokenizer"]

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
LEVELS = ("word", "char", "wordpiece")

# Words, numbers, and each punctuation mark on its own; an apostrophe stays inside a word (don't).
_WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# Marks written without a space before them, and the hyphen written without spaces around it.
_NO_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")
# WordPiece: the prefix of a piece that continues a word, the longest word split into pieces (a longer one
# is one <unk>, as in BERT and tokenizers), the default vocabulary size of tokenizers' WordPieceTrainer,
# and how many words' pieces a tokenizer remembers.
SUBWORD_PREFIX = "##"
MAX_WORD_CHARS = 100
WORDPIECE_DEFAULT_SIZE = 30000
_CACHE_SIZE = 1 << 17


class Tokenizer:
    """Text <-> token ids, word-, character- or WordPiece-level, with the special tokens pad, unk, bos, eos at 0..3.

    Args:
        tokens: the vocabulary in id order; it must start with ``SPECIAL_TOKENS``. WordPiece pieces that
            continue a word start with "##".
        level: "word" (words and punctuation marks), "char" (every character, spaces included) or
            "wordpiece" (the words and marks of "word", each split into the longest pieces of ``tokens``).
        lowercase: lowercase text before splitting it.
    """

    def __init__(self, tokens: Sequence[str], *, level: str = "word", lowercase: bool = True) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(map(repr, LEVELS))}; got {level!r}")
        if list(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {list(tokens[:4])}")
        self.tokens = list(tokens)
        self.level = level
        self.lowercase = lowercase
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self._pieces: dict[str, tuple[int, ...]] = {}  # WordPiece: word -> its ids, filled as words are met

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
        """The vocabulary of ``texts``, at most ``max_size`` entries in all (specials included); ``reserved``
        tokens (BERT's ``"<mask>"``) take the ids right after the specials, 4, 5, ...

        "word" and "char": tokens seen at least ``min_freq`` times, the most frequent first, ties broken
        alphabetically. "wordpiece": trained by ``tokenizers``' ``WordPieceTrainer`` on the words of ``texts``
        (split and lowercased as "word" does): every character, then the merges of pieces seen together at
        least ``min_freq`` times, until ``max_size`` (default 30,000) tokens; it needs ``pip install tokenizers``.

        Args:
            texts: the training texts.
            level: "word", "char" or "wordpiece" (see the class).
            lowercase: lowercase the texts first.
            min_freq: "word", "char": the fewest occurrences a token needs; "wordpiece": that a merge needs.
            max_size: the most tokens in the vocabulary, specials and ``reserved`` included (None: no limit
                for "word" and "char", 30,000 for "wordpiece").
            reserved: tokens placed right after the specials whatever the texts hold.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(map(repr, LEVELS))}; got {level!r}")
        head = SPECIAL_TOKENS + list(dict.fromkeys(t for t in reserved if t not in SPECIAL_TOKENS))
        if level == "wordpiece":
            size = WORDPIECE_DEFAULT_SIZE if max_size is None else max_size
            vocab = _train_wordpiece(texts, lowercase=lowercase, min_freq=min_freq, max_size=size, special_tokens=head).get_vocab()
            tokens = sorted(vocab, key=vocab.__getitem__)  # head first: the trainer puts special tokens first
            return cls(head + [t for t in tokens if t not in head], level=level, lowercase=lowercase)
        splitter = cls(SPECIAL_TOKENS, level=level, lowercase=lowercase)
        counts = Counter(t for text in texts for t in splitter.split(text))
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
        """Text -> token strings before the vocabulary lookup: words and marks ("word", "wordpiece") or characters."""
        text = text.lower() if self.lowercase else text
        if self.level == "char":
            return list(text)
        return _WORD_RE.findall(text)

    def word_ids(self, word: str) -> tuple[int, ...]:
        """WordPiece: one word -> the ids of its pieces, longest match first ("##" on all but the first);
        ``(UNK_ID,)`` for a word that the vocabulary cannot spell or that is over 100 characters long."""
        ids = self._pieces.get(word)
        if ids is None:
            ids = self._wordpiece(word)
            if len(self._pieces) >= _CACHE_SIZE:
                self._pieces.clear()
            self._pieces[word] = ids
        return ids

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (UNK_ID,)
        ids, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else SUBWORD_PREFIX + word[start:end]
                if piece in self.index:
                    ids.append(self.index[piece])
                    start = end
                    break
            else:  # no piece of the vocabulary starts here: the whole word is unknown
                return (UNK_ID,)
        return tuple(ids)

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False, max_len: int | None = None) -> list[int]:
        """Text -> ids; unknown tokens become ``UNK_ID``; truncated to ``max_len`` ids (eos kept last)."""
        if self.level == "wordpiece":
            ids = [i for word in self.split(text) for i in self.word_ids(word)]
        else:
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
        """Ids -> text: stops at the first eos, drops pad and bos, glues "##" pieces onto the piece before
        them (WordPiece), rejoins words and punctuation."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        words: list[str] = []
        for i in ids:
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            token = self.tokens[i] if 0 <= i < len(self.tokens) else SPECIAL_TOKENS[UNK_ID]
            if self.level == "wordpiece" and token.startswith(SUBWORD_PREFIX):
                if words:
                    words[-1] += token[len(SUBWORD_PREFIX) :]
                    continue
                token = token[len(SUBWORD_PREFIX) :]  # a continuation with nothing before it stands alone
            words.append(token)
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


# -- WordPiece training -------------------------------------------------------------------------------
class _WordSplit:
    """A ``tokenizers`` pre-tokenizer splitting as the word level does (``_WORD_RE``), so both levels see the same words."""

    def pre_tokenize(self, pretok: Any) -> None:
        pretok.split(lambda _, s: [s[m.start() : m.end()] for m in _WORD_RE.finditer(str(s))])


def _train_wordpiece(texts: Iterable[str], *, lowercase: bool, min_freq: int, max_size: int, special_tokens: Sequence[str]) -> Any:
    """A ``tokenizers.Tokenizer`` with a WordPiece vocabulary trained on ``texts``; ``special_tokens`` take ids 0, 1, ...

    Its normalizer lowercases (when ``lowercase``) and its pre-tokenizer splits as ``_WORD_RE``, so its own
    ``encode`` gives the ids of ``Tokenizer(level="wordpiece").encode``. The training is made deterministic:
    ``tokenizers`` numbers the "##" characters in hash-map order (huggingface/tokenizers#1794), and the
    numbers break ties between equally frequent merges, so a vocabulary could change from one run to the
    next; here every "##" character is registered up front, in sorted order, after ``special_tokens``.
    """
    try:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, normalizers, pre_tokenizers, trainers
    except ImportError as e:
        raise ImportError(
            "Tokenizer.build(level='wordpiece') trains its vocabulary with Hugging Face tokenizers: pip install tokenizers "
            "(or the zoo's text extra, pip install 'lightning-zoo[text]'). Encoding with a built WordPiece tokenizer does not need it."
        ) from e
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}")
    texts = [text.lower() if lowercase else text for text in texts]  # lowercased as the word level does
    words = {w for text in texts for w in _WORD_RE.findall(text)}
    chars = {c for w in words for c in w}
    continuing = sorted({SUBWORD_PREFIX + c for w in words for c in w[1:]} - set(special_tokens))
    needed = len(special_tokens) + len(chars) + len(continuing)
    if max_size < needed:
        raise ValueError(
            f"max_size={max_size} is too small for a WordPiece vocabulary of these texts: their {len(chars)} characters, "
            f"{len(continuing)} of them also inside words (as '##x'), and {len(special_tokens)} special tokens take {needed} ids"
        )

    def wordpiece_tokenizer(vocab: dict[str, int] | None, lowercase: bool) -> Any:
        model = models.WordPiece(vocab, unk_token=SPECIAL_TOKENS[UNK_ID], continuing_subword_prefix=SUBWORD_PREFIX,
                                 max_input_chars_per_word=MAX_WORD_CHARS)  # fmt: skip
        hf = HFTokenizer(model)
        if lowercase:
            hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.PreTokenizer.custom(_WordSplit())
        return hf

    trainer = trainers.WordPieceTrainer(
        vocab_size=max_size, min_frequency=min_freq, special_tokens=list(special_tokens) + continuing,
        continuing_subword_prefix=SUBWORD_PREFIX, show_progress=False,
    )  # fmt: skip
    trained = wordpiece_tokenizer(None, lowercase=False)  # the texts are lowercased already
    trained.train_from_iterator(texts, trainer=trainer)
    # The same vocabulary in a tokenizer whose special tokens are the real ones alone (a "##x" registered as a
    # special token would be matched in raw text), lowercasing raw text as the word level does.
    out = wordpiece_tokenizer(trained.get_vocab(), lowercase=lowercase)
    out.add_special_tokens(list(special_tokens))
    return out
