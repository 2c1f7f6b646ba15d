"""Labelled short texts for pre-training and fine-tuning text encoders: Debian's fortunes, a text folder, a CSV.

``TextCorpusDataModule`` reads one of three sources and serves ``(ids, label)`` batches:

* a folder of fortune files in strfile's source format (``/usr/share/games/fortunes``, Debian package
  ``fortunes``): each file is a category, its entries separated by lines holding a single ``%``;
  ``*.dat`` index files, ``*.u8`` copies and sub-folders (``off/``) are skipped;
* a text folder, ``<data_dir>/<label>/*.txt``, one text per file (aclImdb's ``train`` folder works);
* a CSV file with ``label,text`` rows (a header row naming them is skipped).

Entries are deduplicated (a text filed under two categories is dropped: its label is ambiguous). The
split is by entry and seeded: an entry goes to test, validation or training by a hash of ``seed`` and its
text, so it falls in the same split whichever ``categories`` are selected. Pre-training on every
category's training entries therefore never reads the test entries of a classifier trained on a few.
The vocabulary is built from the training entries of every category, not only the selected ones, so a
masked-language model pre-trained on the whole corpus and a classifier fine-tuned on some categories
share it; id 4 is reserved for BERT's ``<mask>``.

``extra_corpora`` (``["gcide"]``: Debian's dictionary definitions, ``datamodules.gcide``) adds unlabelled texts to
the vocabulary's training texts, less any that shares an 8-word run with a validation or test entry of any
category (``datamodules.unlabelled.decontaminate``); ``datamodules.MaskedLMDataModule`` pre-trains on them too.
``train_fraction`` keeps a seeded, stratified share of the training entries (validation and test unchanged) for
label-efficiency curves; the vocabulary does not depend on it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from pathlib import Path

import torch
from torch import Tensor

from datamodules.base import CorruptDataError, DataNotFoundError, stratified_subset
from datamodules.text import TextDataModule
from datamodules.unlabelled import decontaminate, read_extra_corpus
from zoo.core.tokenizer import Tokenizer

__all__ = ["FORTUNE_CATEGORIES", "TextCorpusDataModule", "read_csv_texts", "read_fortunes", "read_text_folder", "stratified_subset"]

SYSTEM_FORTUNES = "/usr/share/games/fortunes"
MASK_TOKEN = "<mask>"  # zoo.bert.MASK_TOKEN; spelled here so datamodules do not import the model
#: Five large, distinct categories of Debian's fortunes (entries before deduplication): the default of the
#: BERT fine-tuning recipe.
FORTUNE_CATEGORIES = ["computers", "definitions", "politics", "songs-poems", "zippy"]


def read_fortunes(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Category (file name) -> entries of every fortune file in ``folder``, in file order.

    Entries are separated by lines holding only ``%``; whitespace at their ends is stripped, empty ones dropped.
    """
    folder = Path(folder)
    out = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8") or path.name.startswith("."):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_text(encoding="latin-1")  # a few old fortune files are Latin-1
        entries = [e.strip() for e in re.split(r"^%[ \t]*$", text, flags=re.MULTILINE)]
        entries = [e for e in entries if e]
        if entries:
            out[path.name] = entries
    return out


def read_text_folder(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Label (sub-folder name) -> texts of its ``*.txt`` files, ``<br />`` breaks as spaces."""
    out = {}
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        texts = []
        for f in sorted(sub.glob("*.txt")):
            try:
                texts.append(f.read_text(encoding="utf-8").replace("<br />", " ").strip())
            except UnicodeDecodeError as e:
                raise CorruptDataError(f"{f} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        if texts:
            out[sub.name] = texts
    return out


def read_csv_texts(path: str | os.PathLike) -> dict[str, list[str]]:
    """Label -> texts of a ``label,text`` CSV file (a first row ``label,text`` is a header)."""
    out: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f), start=1):
            if i == 1 and [c.strip().lower() for c in row] == ["label", "text"]:
                continue
            if len(row) != 2:
                raise CorruptDataError(f"{path}, line {i}: expected 2 columns (label,text), got {len(row)}")
            out.setdefault(row[0].strip(), []).append(row[1].strip())
    return out


class TextCorpusDataModule(TextDataModule):
    """Labelled texts (fortunes by category, a text folder or a CSV) as ``[CLS] ids [SEP]`` batches.

    Args:
        data_dir: a fortunes folder, a text folder (``<label>/*.txt``) or a ``.csv`` file. Default: the first of
            ``$ZOO_DATA_DIR/fortunes``, ``./data/fortunes`` and ``/usr/share/games/fortunes`` that exists.
        categories: the categories to classify, in label order; None keeps every category (sorted by name).
        add_special_tokens: frame each text as BERT reads it, ``[CLS]`` (bos) first and ``[SEP]`` (eos) last.
        extra_corpora: unlabelled corpora whose texts join the vocabulary's: "gcide", or a dictd ``.dict.dz`` path;
            texts sharing 8 words in a row with a held-out entry are dropped. Pre-training and fine-tuning must agree.
        max_extra_texts: read at most this many texts of each extra corpus (0: all), for quick runs.
        train_fraction: share of each category's training entries kept (a seeded, stratified subset, nested as the
            fraction grows); validation, test and the vocabulary are unchanged.
        train_subset_seed: seed of that subset.
        level: "word" or "char" tokens, or "wordpiece": BERT's subwords, a vocabulary trained by Hugging Face
            ``tokenizers`` (``pip install tokenizers``) on the same texts, so that few words are ``<unk>``.
        min_freq: keep tokens seen at least this many times in the training texts of every category ("wordpiece":
            merge pieces seen together at least this many times).
        max_size: vocabulary size at most, the specials and ``<mask>`` included.
        max_len: tokens kept per text (the first ones, [CLS] and [SEP] included).
        lowercase: lowercase the text.
        batch_size: samples per batch for every split.
        val_fraction: share of the non-test entries held out for validation.
        test_fraction: share of the entries held out for testing.
        seed: seed of the hash that assigns entries to splits, independent of the global seed.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        categories: list[str] | None = None,
        add_special_tokens: bool = True,
        extra_corpora: list[str] | None = None,
        max_extra_texts: int = 0,
        train_fraction: float = 1.0,
        train_subset_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if categories is not None and len(set(categories)) < 2:
            raise ValueError(f"categories must name at least 2 distinct categories (or be None for all), got {categories}")
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        if max_extra_texts < 0:
            raise ValueError(f"max_extra_texts must be >= 0 (0: all), got {max_extra_texts}")
        if isinstance(extra_corpora, str):
            raise ValueError(f"extra_corpora is a list of corpora, got the string {extra_corpora!r}: write [{extra_corpora!r}]")
        for name in extra_corpora or []:
            if name != "gcide" and not str(name).endswith((".dict.dz", ".dict")):
                raise ValueError(f"unknown extra corpus {name!r}: name 'gcide' or a dictd .dict.dz/.dict file")
        self.extra_corpora = list(extra_corpora or [])
        self.max_extra_texts = max_extra_texts
        self.train_fraction = train_fraction
        self.train_subset_seed = train_subset_seed
        self._extra: list[str] | None = None
        self.data_dir = data_dir
        self.categories = list(categories) if categories is not None else None
        self.add_special_tokens = add_special_tokens
        self._corpus: dict[str, list[str]] | None = None
        self._splits: Tensor | None = None  # split of each entry read_texts returned: 0 train, 1 val, 2 test
        self._labels: Tensor | None = None  # label of each entry read_texts returned

    # -- the corpus ---------------------------------------------------------------------------------
    def locate(self) -> Path:
        """The source folder or CSV file; ``DataNotFoundError`` saying where to put it when there is none."""
        if self.data_dir is not None:
            candidates = [Path(self.data_dir).expanduser()]
        else:
            candidates = [Path(d) / "fortunes" for d in (os.environ.get("ZOO_DATA_DIR"), "data") if d] + [Path(SYSTEM_FORTUNES)]
        for path in candidates:
            if path.is_file() or (path.is_dir() and any(path.iterdir())):
                return path
        raise DataNotFoundError(
            f"no text corpus at {', '.join(map(str, candidates))}.\n"
            "Install Debian's fortunes (apt-get install fortunes), or point data_dir (--data.data_dir) at a folder of\n"
            "fortune files, a folder of <label>/*.txt files, or a label,text CSV file."
        )

    def prepare_data(self) -> None:
        self.locate()

    def corpus(self) -> dict[str, list[str]]:
        """Category -> deduplicated entries of the whole source (every category)."""
        if self._corpus is None:
            path = self.locate()
            if path.is_file():
                raw = read_csv_texts(path)
            elif any(p.is_dir() and any(p.glob("*.txt")) for p in path.iterdir()):
                raw = read_text_folder(path)
            else:
                raw = read_fortunes(path)
            if len(raw) < 1:
                raise DataNotFoundError(f"{path} holds no texts")
            owners: dict[str, set[str]] = {}
            for name, texts in raw.items():
                for t in texts:
                    owners.setdefault(t, set()).add(name)
            corpus = {}
            for name, texts in raw.items():  # first copy of each text, and none of a text filed twice
                seen: set[str] = set()
                corpus[name] = [t for t in texts if len(owners[t]) == 1 and not (t in seen or seen.add(t))]
            self._corpus = corpus
        return self._corpus

    @property
    def class_names(self) -> list[str]:
        names = self.categories if self.categories is not None else sorted(self.corpus())
        missing = [c for c in names if c not in self.corpus()]
        if missing:
            raise ValueError(f"categories {missing} are not in {self.locate()}; it has {sorted(self.corpus())}")
        return names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_of(self, text: str) -> int:
        """0 train, 1 validation, 2 test: a hash of ``seed`` and the text against the fractions."""
        u = int.from_bytes(hashlib.sha1(f"{self.seed}\0{text}".encode()).digest()[:8], "big") / 2.0**64
        if u < self.test_fraction:
            return 2
        return 1 if u < self.test_fraction + (1.0 - self.test_fraction) * self.val_fraction else 0

    def held_out_texts(self) -> list[str]:
        """The validation and test entries of every category: what no pre-training or vocabulary may read."""
        return [t for entries in self.corpus().values() for t in entries if self.split_of(t) != 0]

    def extra_texts(self) -> list[str]:
        """The texts of ``extra_corpora``, deduplicated, less any that shares 8 words in a row with a held-out entry."""
        if self._extra is None:
            texts = list(dict.fromkeys(t for name in self.extra_corpora for t in read_extra_corpus(name, max_texts=self.max_extra_texts)))
            self._extra = decontaminate(texts, self.held_out_texts()) if texts else []
        return self._extra

    # -- TextDataModule's hooks -------------------------------------------------------------------------
    def read_texts(self) -> tuple[tuple[list[str], Tensor], None]:
        names = self.class_names
        texts, labels = [], []
        for label, name in enumerate(names):
            texts += self.corpus()[name]
            labels += [label] * len(self.corpus()[name])
        self._splits = torch.tensor([self.split_of(t) for t in texts], dtype=torch.long)
        self._labels = torch.tensor(labels, dtype=torch.long)
        return (texts, self._labels), None

    def split_indices(self, n: int, has_test: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        if self._splits is None:
            self._cached_texts()
        if n != len(self._splits):
            raise RuntimeError(f"split of {n} entries asked, {len(self._splits)} read")
        train, val, test = ((self._splits == s).nonzero().squeeze(1) for s in range(3))
        if self.train_fraction < 1.0:
            train = stratified_subset(train, self._labels[train], self.train_fraction, seed=self.train_subset_seed)
        return train, val, test

    def get_tokenizer(self) -> Tokenizer:
        """The vocabulary of the training entries of every category, ``<mask>`` at id 4."""
        if self._tokenizer is None:
            texts = [t for entries in self.corpus().values() for t in entries if self.split_of(t) == 0] + self.extra_texts()
            self._tokenizer = Tokenizer.build(
                texts, level=self.level, lowercase=self.lowercase, min_freq=self.min_freq, max_size=self.max_size, reserved=[MASK_TOKEN]
            )
        return self._tokenizer

    def load(self) -> tuple[tuple[Tensor, Tensor], None]:
        (texts, labels), _ = self._cached_texts()
        tok = self.get_tokenizer()
        special = self.add_special_tokens
        ids = tok.encode_batch(texts, max_len=self.max_len, add_bos=special, add_eos=special)
        self._texts = None
        return (ids, labels), None
