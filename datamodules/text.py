"""Text data: a word- or character-level tokenizer with its vocabulary, and IMDB sentiment reviews.

``Tokenizer`` turns text into ids and back. Ids 0..3 are the special tokens pad, unk, bos and eos.
Its whole state is primitives (``to_config()``: the token list, the level, lowercasing), so a model
keeps it in its hyperparameters and a checkpoint loaded with ``weights_only=True`` encodes and decodes
text without the dataset.

``IMDBDataModule`` reads the Large Movie Review Dataset (Maas et al., 2011) in its official layout,
``aclImdb/{train,test}/{pos,neg}/*.txt``, and downloads the official archive when it is absent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from datamodules import vision as _vision
from datamodules.base import DataNotFoundError, ZooDataModule

__all__ = ["BOS_ID", "EOS_ID", "IMDBDataModule", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID", "TextDataModule", "Tokenizer"]

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
    ) -> Tokenizer:
        """The vocabulary of ``texts``: tokens seen at least ``min_freq`` times, the most frequent first,
        at most ``max_size`` entries in all (specials included); ties are broken alphabetically."""
        splitter = cls(SPECIAL_TOKENS, level=level, lowercase=lowercase)
        counts = Counter(t for text in texts for t in splitter.split(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIAL_TOKENS), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIAL_TOKENS))]
        return cls(SPECIAL_TOKENS + ranked, level=level, lowercase=lowercase)

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


# --------------------------------------------------------------------------------------------------
# Datamodules
# --------------------------------------------------------------------------------------------------
class TextDataModule(ZooDataModule):
    """Base of the text-classification datamodules: texts -> padded token ids (N, T), labels (N,).

    The vocabulary is built from the training texts the first time ``tokenizer`` (or ``vocab_size``) is
    read, which the CLI does to link both into the model. Batches are trimmed to their longest sequence.

    Args:
        level: "word" or "char" tokens.
        min_freq: keep tokens seen at least this many times in the training texts.
        max_size: vocabulary size at most, the four special tokens included.
        max_len: tokens kept per text (the first ones).
        lowercase: lowercase the text.
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: share of the data held out for testing, for datasets without an official test split.
        seed: seed of the train/val/test split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    def __init__(
        self,
        *,
        level: str = "word",
        min_freq: int = 2,
        max_size: int = 20000,
        max_len: int = 256,
        lowercase: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if max_len < 1 or max_size < len(SPECIAL_TOKENS) + 1 or min_freq < 1:
            raise ValueError(f"need max_len >= 1, max_size >= 5, min_freq >= 1; got {max_len}, {max_size}, {min_freq}")
        self.level = level
        self.min_freq = min_freq
        self.max_size = max_size
        self.max_len = max_len
        self.lowercase = lowercase
        self.input_shape = (max_len,)
        self._tokenizer: Tokenizer | None = None
        self._texts: tuple[tuple[list[str], Tensor], tuple[list[str], Tensor] | None] | None = None

    def read_texts(self) -> tuple[tuple[list[str], Tensor], tuple[list[str], Tensor] | None]:
        """``((train_texts, train_labels), (test_texts, test_labels) or None)``."""
        raise NotImplementedError

    def _cached_texts(self):
        if self._texts is None:
            self._texts = self.read_texts()
        return self._texts

    @property
    def tokenizer(self) -> dict:
        """The vocabulary as primitives (``Tokenizer.to_config()``), for the model's ``tokenizer`` argument."""
        return self.get_tokenizer().to_config()

    def get_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            (texts, _), _ = self._cached_texts()
            self._tokenizer = Tokenizer.build(
                texts, level=self.level, lowercase=self.lowercase, min_freq=self.min_freq, max_size=self.max_size
            )
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.get_tokenizer())

    def load(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        (texts, labels), test = self._cached_texts()
        tok = self.get_tokenizer()
        train = (tok.encode_batch(texts, max_len=self.max_len), labels)
        if test is not None:
            test = (tok.encode_batch(test[0], max_len=self.max_len), test[1])
        self._texts = None  # the ids are all that is needed from here on
        return train, test

    def preprocess(self, x: Tensor, train: bool = False) -> Tensor:
        """(B, max_len) ids -> (B, T) with T the longest sequence of the batch (trailing padding cut)."""
        if x.ndim != 2 or x.is_floating_point():
            return x
        used = (x != PAD_ID).any(0).nonzero()
        return x[:, : int(used.max()) + 1] if len(used) else x[:, :1]


class IMDBDataModule(TextDataModule):
    """IMDB movie reviews, positive or negative: 25,000 train / 25,000 test (aclImdb v1).

    Files, first match wins: ``<data_dir>/aclImdb/{train,test}/{pos,neg}/*.txt`` or the same folders
    directly in ``data_dir``; else the official archive is downloaded (84 MB) into ``<data_dir>/aclImdb``
    when ``download`` is true; else ``DataNotFoundError`` says where to put the files.

    Args:
        data_dir: folder holding ``aclImdb`` (or its train/test folders). Default: ``$ZOO_DATA_DIR``, else ``./data``.
        download: fetch the official archive when the files are not found.
        max_reviews: read at most this many reviews per split and class (0: all), for quick runs.
        level: "word" or "char" tokens.
        min_freq: keep tokens seen at least this many times in the training reviews.
        max_size: vocabulary size at most, the four special tokens included.
        max_len: tokens kept per review (the first ones).
        lowercase: lowercase the text.
        batch_size: samples per batch for every split.
        val_fraction: share of the training data held out for validation (0 disables validation).
        test_fraction: unused: IMDB has an official test split.
        seed: seed of the train/val split, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    url = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    md5 = "7c2ac02c03563afcf9b574c7e56c153a"
    num_classes = 2
    class_names = ["neg", "pos"]

    def __init__(self, *, data_dir: str | None = None, download: bool = True, max_reviews: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_dir = _vision.resolve_data_dir(data_dir)
        self.download = download
        self.max_reviews = max_reviews

    @property
    def root(self) -> Path:
        return self.data_dir / "aclImdb"

    @staticmethod
    def _complete(folder: Path) -> bool:
        return all((folder / split / label).is_dir() for split in ("train", "test") for label in ("pos", "neg"))

    def _fetch(self, tmp: Path) -> Path:
        _vision.download_and_extract_archive(self.url, download_root=str(tmp), md5=self.md5, remove_finished=True)
        return tmp / "aclImdb"

    def locate(self) -> Path:
        """The aclImdb folder, downloading it when allowed; DataNotFoundError otherwise."""
        for folder in (self.root, self.data_dir):
            if self._complete(folder):
                return folder
        reason = "download=False"
        if self.download:
            try:
                _vision._download_atomically(self.root, self._fetch)
                return self.root
            except (OSError, RuntimeError) as e:  # offline (URLError is an OSError), HTTP error, bad MD5
                reason = f"the download of {self.url} failed: {getattr(e, 'reason', e)}"
        raise DataNotFoundError(
            f"IMDB (aclImdb) not found in {self.root} or {self.data_dir}, and {reason}.\n"
            f"Download and extract {self.url} into {self.data_dir} (it makes aclImdb/train/pos, ...),\n"
            f"  or point data_dir (--data.data_dir) at the folder holding aclImdb."
        )

    def prepare_data(self) -> None:
        self.locate()

    def read_texts(self) -> tuple[tuple[list[str], Tensor], tuple[list[str], Tensor]]:
        root = self.locate()
        splits = []
        for split in ("train", "test"):
            texts, labels = [], []
            for label, name in enumerate(self.class_names):
                files = sorted((root / split / name).glob("*.txt"))
                if self.max_reviews:
                    files = files[: self.max_reviews]
                texts += [f.read_text(encoding="utf-8").replace("<br />", " ") for f in files]
                labels += [label] * len(files)
            if not texts:
                raise DataNotFoundError(f"no reviews in {root / split}/{{pos,neg}}/*.txt")
            splits.append((texts, torch.tensor(labels, dtype=torch.long)))
        return splits[0], splits[1]
