"""Corrupt data files give a ``CorruptDataError`` (a ValueError) naming the file, and the line where there is one.

The files are written in their real formats (``conftest``'s writers, ``test_vision_data``'s image folder),
then damaged the way interrupted downloads and hand edits damage them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_aclimdb, write_idx, write_idx_dataset
from datamodules import (
    CorruptDataError,
    FashionMNISTDataModule,
    IMDBDataModule,
    ImageFolderDataModule,
    TimeSeriesDataModule,
    TranslationDataModule,
)
from datamodules.vision import read_idx
from tests.datamodules.test_vision_data import write_image_folder


# -- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------------------
@pytest.fixture
def idx_folder(tmp_path) -> Path:
    write_idx_dataset(tmp_path, np.random.default_rng(0), gz=False)
    return tmp_path


def _load(folder: Path) -> None:
    FashionMNISTDataModule(data_dir=str(folder), download=False).setup()


def test_a_truncated_idx_file_is_named(idx_folder):
    path = idx_folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])  # an interrupted download
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte is truncated or corrupt: 125356 bytes, its header \(shape \(160, 28, 28\)\) says 125456"):
        _load(idx_folder)


def test_a_truncated_header_is_named(idx_folder):
    path = idx_folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:6])  # magic number, half the dimension
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte is truncated or corrupt"):
        _load(idx_folder)


def test_a_wrong_magic_number_is_named(idx_folder):
    path = idx_folder / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x1f\x8b" + path.read_bytes()[2:])  # e.g. a gzip saved without .gz
    with pytest.raises(CorruptDataError, match=r"train-labels-idx1-ubyte is not an IDX file \(bad magic number"):
        _load(idx_folder)


def test_a_damaged_gzip_stream_is_named(tmp_path):
    """A truncated gzip is test_vision_datamodules' case (EOFError); damaged data inside it is a zlib.error."""
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.compress(bytes(range(256)) * 64))
    data[20:40] = b"\xff" * 20  # corrupt the deflate stream: zlib.error, not EOFError
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte.gz is truncated or corrupt"):
        read_idx(path)


def test_images_and_labels_of_different_lengths_name_both_files(idx_folder):
    write_idx(idx_folder / "train-labels-idx1-ubyte", np.zeros(100, np.uint8))
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte has 160 images but .*train-labels-idx1-ubyte 100 labels"):
        _load(idx_folder)


# -- ImageFolder -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "cannot be read as an image"), (b"GIF89a nonsense", "cannot be read as an image")],
    ids=["empty", "truncated-png", "garbage"],
)
def test_an_unreadable_image_is_named(tmp_path, content, message):
    root = write_image_folder(tmp_path, splits=("train",), per_class=2)
    bad = root / "train" / "dog" / "broken.png"
    bad.write_bytes(content)
    dm = ImageFolderDataModule(data_dir=str(root), image_size=16)
    with pytest.raises(CorruptDataError, match=f"{bad}.*{message}.*Replace or delete the file"):
        dm.setup()


def test_a_cut_off_jpeg_is_named(tmp_path):
    root = write_image_folder(tmp_path, splits=("train",), per_class=2)
    good = root / "train" / "fox" / "0.jpg"
    good.write_bytes(good.read_bytes()[:200])  # a partial copy
    with pytest.raises(CorruptDataError, match=f"{good} cannot be read as an image"):
        ImageFolderDataModule(data_dir=str(root), image_size=16).setup()


# -- translation pairs (TSV) -------------------------------------------------------------------------------
def _tsv(tmp_path, lines: list[str]) -> TranslationDataModule:
    path = tmp_path / "fra.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TranslationDataModule(tsv_path=str(path), batch_size=4)


PAIRS = [f"I have {n} cats.\tJ'ai {n} chats.\tCC-BY 2.0" for n in range(10)]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [("I have no tab here", "has no tab"), ("\tJ'ai un chat.", "has an empty source"), ("I have a cat.\t  ", "has an empty target")],
    ids=["no-tab", "empty-source", "empty-target"],
)
def test_a_malformed_tsv_line_is_named_with_its_number(tmp_path, bad, problem):
    dm = _tsv(tmp_path, [*PAIRS[:6], "", bad, *PAIRS[6:]])  # the blank line 7 is fine; line 8 is not
    with pytest.raises(CorruptDataError, match=rf"fra.txt, line 8 {problem}: .*each line must be 'source<TAB>target'"):
        dm.setup()


def test_a_tsv_file_that_is_not_utf8_is_named_with_the_line(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_bytes("\n".join(PAIRS[:3]).encode() + b"\nJ'ai \xe9t\xe9\tI was\n")  # Latin-1 on line 4
    with pytest.raises(CorruptDataError, match=r"fra.txt, line 4: not UTF-8 text"):
        TranslationDataModule(tsv_path=str(path)).setup()


# -- time series (CSV) ---------------------------------------------------------------------------------------
def _csv(tmp_path, text: str, **kwargs) -> TimeSeriesDataModule:
    path = tmp_path / "series.csv"
    path.write_text(text)
    return TimeSeriesDataModule(csv_path=str(path), window=3, **kwargs)


ROWS = "".join(f"{i},{i * 0.5},{i * 2}\n" for i in range(40))


def test_a_missing_csv_column_lists_the_columns_there(tmp_path):
    dm = _csv(tmp_path, "t,value,other\n" + ROWS, columns=["value", "temperature"])
    with pytest.raises(CorruptDataError, match=r"series.csv has no column 'temperature'; its columns are \['t', 'value', 'other'\]"):
        dm.setup()


def test_a_short_csv_row_is_named_with_its_line(tmp_path):
    dm = _csv(tmp_path, "t,value,other\n" + ROWS + "40,20.0\n" + ROWS, columns=["value", "other"])
    with pytest.raises(CorruptDataError, match=r"series.csv, line 42: 2 of 3 columns; no value for 'other'"):
        dm.setup()


def test_a_non_numeric_csv_value_is_named_with_line_and_column(tmp_path):
    dm = _csv(tmp_path, "t,value\n" + "".join(f"{i},{i}\n" for i in range(20)) + "20,n/a\n", columns=["value"])
    with pytest.raises(CorruptDataError, match=r"series.csv, line 22, column 'value': 'n/a' is not a number"):
        dm.setup()


def test_a_csv_without_numeric_columns_lists_its_columns(tmp_path):
    dm = _csv(tmp_path, "date,city\n2020-01-01,Paris\n2020-01-02,Lyon\n")
    with pytest.raises(CorruptDataError, match=r"series.csv has no numeric column .*\['date', 'city'\]"):
        dm.setup()


# -- IMDB reviews ---------------------------------------------------------------------------------------------
def test_a_review_that_is_not_utf8_is_named(tmp_path):
    write_aclimdb(tmp_path / "aclImdb", per_class=3)
    bad = tmp_path / "aclImdb" / "train" / "neg" / "1_2.txt"
    bad.write_bytes(b"Caf\xe9 scene was dull")
    dm = IMDBDataModule(data_dir=str(tmp_path), download=False, min_freq=1)
    with pytest.raises(CorruptDataError, match=f"{bad} is not UTF-8 text"):
        dm.setup()
