"""Text data: a word- or character-level tokenizer with its vocabulary, and IMDB sentiment reviews.

``Tokenizer`` (defined in ``zoo.tokenizer``, re-exported here) turns text into ids and back. Ids 0..3
are the special tokens pad, unk, bos and eos. Its whole state is primitives (``to_config()``: the token
list, the level, lowercasing), so a model keeps it in its hyperparameters and a checkpoint loaded with
``weights_only=True`` encodes and decodes text without the dataset. The vocabulary is built from the
training split only, after validation is held out: a word seen only in validation is unknown.

``IMDBDataModule`` reads the Large Movie Review Dataset (Maas et al., 2011) in its official layout,
``aclImdb/{train,test}/{pos,neg}/*.txt``, and downloads the official archive when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from datamodules import vision as _vision
from datamodules.base import CorruptDataError, DataNotFoundError, ZooDataModule
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer

__all__ = ["BOS_ID", "EOS_ID", "IMDBDataModule", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID", "TextDataModule", "Tokenizer"]


# --------------------------------------------------------------------------------------------------
# Datamodules
# --------------------------------------------------------------------------------------------------
class TextDataModule(ZooDataModule):
    """Base of the text-classification datamodules: texts -> padded token ids (N, T), labels (N,).

    The vocabulary is built from the training split (validation and test held out) the first time
    ``tokenizer`` (or ``vocab_size``) is read, which the CLI does to link both into the model. Batches
    are trimmed to their longest sequence.

    Args:
        level: "word" or "char" tokens, or "wordpiece" subwords (a vocabulary trained with Hugging Face ``tokenizers``).
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
        """The vocabulary of the training split alone (the texts ``setup`` keeps for training), so that
        validation and test words the training texts never show stay unknown, as they would be in use."""
        if self._tokenizer is None:
            (texts, _), test = self._cached_texts()
            train_idx, _, _ = self.split_indices(len(texts), has_test=test is not None)
            self._tokenizer = Tokenizer.build(
                [texts[i] for i in train_idx.tolist()],
                level=self.level, lowercase=self.lowercase, min_freq=self.min_freq, max_size=self.max_size,
            )  # fmt: skip
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
        level: "word" or "char" tokens, or "wordpiece" subwords (a vocabulary trained with Hugging Face ``tokenizers``).
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
                texts += [_read_review(f) for f in files]
                labels += [label] * len(files)
            if not texts:
                raise DataNotFoundError(f"no reviews in {root / split}/{{pos,neg}}/*.txt")
            splits.append((texts, torch.tensor(labels, dtype=torch.long)))
        return splits[0], splits[1]


def _read_review(path: Path) -> str:
    """One review file's text, ``<br />`` breaks as spaces; ``CorruptDataError`` naming a file that is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8").replace("<br />", " ")
    except UnicodeDecodeError as e:
        raise CorruptDataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); aclImdb's reviews are UTF-8") from None
