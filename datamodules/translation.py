"""Sentence pairs for translation: a tab-separated file or URL, or numbers written out by num2words.

``TranslationDataModule`` serves batches ``(src, tgt)`` of token ids: src (B, S) and tgt (B, T) with
tgt = bos, words..., eos; both padded with 0. Its vocabularies are built from the training split alone
(validation held out first, so a word seen only in validation or test is unknown) and exposed as primitives (``src_tokenizer``, ``tgt_tokenizer``) that the CLI links into the model.

Sources:

* ``tsv_path``: the common "source<TAB>target[<TAB>attribution]" format (Tatoeba / manythings.org),
  a local file or an http(s) URL (downloaded once into ``data_dir``); split at random with ``seed``.
* default, offline: English number words -> French (or German, Korean) from the num2words package,
  e.g. "one thousand, nine hundred and ninety-nine" -> "mille neuf cent quatre-vingt-dix-neuf", for
  numbers up to 10^6. The test pairs are the numbers of a held-out range (``test_range``), never seen in
  training, so the test measures generalisation to new numbers.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from urllib.error import URLError

import torch
from torch import Tensor

from datamodules import vision as _vision
from datamodules.base import CorruptDataError, DataNotFoundError, InMemoryDataset, ZooDataModule
from datamodules.text import PAD_ID, Tokenizer

__all__ = ["TranslationDataModule", "number_pairs", "read_tsv_pairs"]

MAX_NUMBER = 10**6


def number_pairs(numbers: list[int], lang: str = "fr") -> list[tuple[str, str]]:
    """(English words, ``lang`` words) for each number, e.g. (21, "fr") -> ("twenty-one", "vingt et un")."""
    from num2words import num2words

    return [(num2words(n, lang="en"), num2words(n, lang=lang)) for n in numbers]


def read_tsv_pairs(path: Path) -> list[tuple[str, str]]:
    """Pairs from "source<TAB>target[<TAB>...]" lines (UTF-8); columns after the second are ignored, and so
    are blank lines.

    A line without a tab, or with an empty source or target, is a ``CorruptDataError`` naming the file and
    the line, as is a file that is not UTF-8 text: a half-downloaded or hand-edited file is refused rather
    than silently trained on in part.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CorruptDataError(f"{path}, line {line}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            problem = "has no tab" if len(cols) < 2 else f"has an empty {'source' if not cols[0].strip() else 'target'}"
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise CorruptDataError(f"{path}, line {number} {problem}: {shown!r}; each line must be 'source<TAB>target'")
        pairs.append((cols[0].strip(), cols[1].strip()))
    if not pairs:
        raise CorruptDataError(f"{path} holds no tab-separated sentence pairs")
    return pairs


class TranslationDataModule(ZooDataModule):
    """Source -> target sentence pairs as padded token ids, with word- or character-level vocabularies.

    Args:
        tsv_path: a TSV file or http(s) URL of "source<TAB>target" lines; None uses the num2words corpus.
        data_dir: where a TSV URL is downloaded. Default: ``$ZOO_DATA_DIR``, else ``./data``.
        lang: num2words target language: "fr", "de" or "ko".
        num_train: num2words pairs drawn for training and validation (numbers outside ``test_range``).
        num_test: num2words test pairs, drawn from ``test_range``.
        test_range: [low, high) of the held-out test numbers.
        src_level: "word" or "char" source tokens.
        tgt_level: "word" or "char" target tokens; None: "word" for French or TSV files, "char" for German
            and Korean (whose number words are written as one word).
        min_freq: keep tokens seen at least this many times in the training pairs.
        max_len: tokens kept per sentence, bos and eos included.
        batch_size: pairs per batch.
        val_fraction: share of the training pairs held out for validation.
        test_fraction: share of the TSV pairs held out for testing (the num2words corpus uses ``test_range``).
        seed: seed of the number draw and of the splits.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    def __init__(
        self,
        *,
        tsv_path: str | None = None,
        data_dir: str | None = None,
        lang: str = "fr",
        num_train: int = 20000,
        num_test: int = 500,
        test_range: list[int] | None = None,
        src_level: str = "word",
        tgt_level: str | None = None,
        min_freq: int = 1,
        max_len: int = 64,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        test_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, test_fraction=test_fraction, **kwargs)
        if lang not in ("fr", "de", "ko"):
            raise ValueError(f"lang must be 'fr', 'de' or 'ko', got {lang!r}")
        self.test_range = list(test_range or [400_000, 410_000])
        low, high = self.test_range
        if not 0 <= low < high <= MAX_NUMBER + 1 or high - low < num_test:
            raise ValueError(f"test_range must be [low, high) within [0, 10^6] holding num_test={num_test} numbers, got {self.test_range}")
        self.tsv_path = tsv_path
        self.data_dir = _vision.resolve_data_dir(data_dir)
        self.lang = lang
        self.num_train = num_train
        self.num_test = num_test
        self.src_level = src_level
        self.tgt_level = tgt_level or ("word" if lang == "fr" or tsv_path else "char")
        self.min_freq = min_freq
        self.max_len = max_len
        self._pairs: tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]] | None = None
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None

    # -- the pairs ------------------------------------------------------------------------------------
    def _tsv_file(self) -> Path:
        if not str(self.tsv_path).startswith(("http://", "https://")):
            path = Path(self.tsv_path).expanduser()
            if not path.is_file():
                raise DataNotFoundError(f"translation pairs {path} not found; pass tsv_path= a 'source<TAB>target' file or URL")
            return path
        name = self.tsv_path.rstrip("/").rsplit("/", 1)[-1]
        path = self.data_dir / "translation" / name
        if not path.is_file():
            try:
                _vision._download_atomically(path.parent, lambda tmp: (_vision.download_url(self.tsv_path, root=str(tmp), filename=name), tmp)[1])
            except (URLError, OSError, RuntimeError) as e:
                raise DataNotFoundError(
                    f"could not download {self.tsv_path} ({getattr(e, 'reason', e)}); save it as {path} or pass tsv_path= a local file"
                ) from None
        return path

    def read_pairs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(training pairs, test pairs); validation is split from the training pairs in ``setup``."""
        rng = random.Random(self.seed)
        if self.tsv_path:
            pairs = read_tsv_pairs(self._tsv_file())
            rng.shuffle(pairs)
            n_test = math.floor(len(pairs) * self.test_fraction)
            return pairs[n_test:], pairs[:n_test]
        low, high = self.test_range
        train: set[int] = set()
        while len(train) < min(self.num_train, MAX_NUMBER + 1 - (high - low)):
            # Half uniform up to 10^6, half log-uniform so that small numbers (and their words) are common.
            n = rng.randint(0, MAX_NUMBER) if rng.random() < 0.5 else int(10 ** rng.uniform(0, 6))
            if not low <= n < high:
                train.add(n)
        test = rng.sample(range(low, high), self.num_test)
        return number_pairs(sorted(train), self.lang), number_pairs(test, self.lang)

    def split_pairs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
        """(train, validation, test) pairs: ``val_fraction`` of ``read_pairs``' training pairs, drawn with ``seed``,
        is held out for validation."""
        if self._pairs is None:
            pairs, test = self.read_pairs()
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.seed)).tolist()
            n_val = math.floor(len(pairs) * self.val_fraction)
            self._pairs = ([pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]], test)
        return self._pairs

    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers built on the training split (validation and test pairs left out)."""
        if self._tokenizers is None:
            train, _, _ = self.split_pairs()
            self._tokenizers = (
                Tokenizer.build([s for s, _ in train], level=self.src_level, min_freq=self.min_freq),
                Tokenizer.build([t for _, t in train], level=self.tgt_level, min_freq=self.min_freq),
            )
        return self._tokenizers

    @property
    def src_tokenizer(self) -> dict:
        return self.tokenizers()[0].to_config()

    @property
    def tgt_tokenizer(self) -> dict:
        return self.tokenizers()[1].to_config()

    @property
    def src_vocab_size(self) -> int:
        return len(self.tokenizers()[0])

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tokenizers()[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.max_len,)

    # -- tensors --------------------------------------------------------------------------------------
    def encode_pairs(self, pairs: list[tuple[str, str]]) -> tuple[Tensor, Tensor]:
        src_tok, tgt_tok = self.tokenizers()
        src = src_tok.encode_batch([s for s, _ in pairs], max_len=self.max_len, add_eos=True)  # (N, S)
        tgt = tgt_tok.encode_batch([t for _, t in pairs], max_len=self.max_len, add_bos=True, add_eos=True)  # (N, T)
        return src, tgt

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train_pairs, val_pairs, test = self.split_pairs()
        self.train_set = InMemoryDataset(*self.encode_pairs(train_pairs))
        self.val_set = InMemoryDataset(*self.encode_pairs(val_pairs)) if val_pairs else InMemoryDataset(torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.long))
        self.test_set = InMemoryDataset(*self.encode_pairs(test)) if test else self.val_set
        self.test_pairs = test

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, Tensor):
            return batch
        return tuple(trim_padding(t) for t in batch)


def trim_padding(ids: Tensor) -> Tensor:
    """(B, L) ids -> (B, T <= L): the trailing columns that are padding in every row are cut."""
    if ids.ndim != 2 or ids.is_floating_point():
        return ids
    used = (ids != PAD_ID).any(0).nonzero()
    return ids[:, : int(used.max()) + 1] if len(used) else ids[:, :1]
