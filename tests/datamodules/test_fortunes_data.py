"""TextCorpusDataModule: fortune files in strfile's format, a text folder, a CSV; deduplication, the hashed
split that ignores the category selection, the shared vocabulary with <mask> at id 4, [CLS] ... [SEP] framing."""

import pytest
import torch
from tests.conftest import FORTUNE_SHARED, FORTUNE_WORDS

from datamodules import TextCorpusDataModule
from datamodules.base import CorruptDataError, DataNotFoundError
from datamodules.corpus import FORTUNE_CATEGORIES, read_fortunes
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID


def test_read_fortunes_parses_strfile_entries_and_skips_index_symlink_and_off(fortunes_dir):
    folder, written = fortunes_dir
    corpus = read_fortunes(folder)
    assert sorted(corpus) == sorted(FORTUNE_WORDS)  # no "x.dat", "x.u8" or "off"
    for name, entries in written.items():
        assert corpus[name] == entries + [entries[0], FORTUNE_SHARED]  # file order, multi-line entries whole
    assert any("\n" in e for e in corpus["zippy"])  # multi-line entries


def test_deduplication_keeps_one_copy_and_drops_texts_filed_under_two_categories(fortunes_dir):
    folder, written = fortunes_dir
    dm = TextCorpusDataModule(data_dir=str(folder))
    corpus = dm.corpus()
    for name, entries in written.items():
        assert corpus[name] == entries  # the repeat and the shared entry are gone
    assert dm.class_names == sorted(FORTUNE_WORDS) and dm.num_classes == len(FORTUNE_WORDS)


def _rows(ds) -> set[tuple[int, ...]]:
    return {tuple(r[r != PAD_ID].tolist()) for r in ds.tensors[0]}


def test_split_by_entry_does_not_depend_on_the_categories_selected(fortunes_dir):
    """An entry lies in the same split whether every category or two are loaded: pre-training on all the
    training entries never reads the test entries of a classifier fine-tuned on a few."""
    folder, written = fortunes_dir
    every = TextCorpusDataModule(data_dir=str(folder), test_fraction=0.3, val_fraction=0.2, min_freq=1)
    two = TextCorpusDataModule(data_dir=str(folder), categories=["zippy", "computers"], test_fraction=0.3, val_fraction=0.2, min_freq=1)
    every.setup()
    two.setup()
    assert two.class_names == ["zippy", "computers"] and two.num_classes == 2
    texts = written["zippy"] + written["computers"]
    expected = torch.bincount(torch.tensor([every.split_of(t) for t in texts]), minlength=3).tolist()
    assert [len(two.train_set), len(two.val_set), len(two.test_set)] == expected and min(expected) > 0
    assert _rows(two.test_set) <= _rows(every.test_set) and _rows(two.val_set) <= _rows(every.val_set)
    assert not _rows(two.test_set) & _rows(every.train_set)
    labels = torch.cat([two.train_set.tensors[1], two.val_set.tensors[1], two.test_set.tensors[1]])
    assert torch.bincount(labels).tolist() == [40, 40]
    n = [len(every.train_set), len(every.val_set), len(every.test_set)]
    assert sum(n) == 6 * 40 and abs(n[2] - 72) < 25  # 30% of 240 held out for testing


def test_another_seed_gives_another_split(fortunes_dir):
    folder, written = fortunes_dir
    texts = written["art"]
    a = [TextCorpusDataModule(data_dir=str(folder), seed=1).split_of(t) for t in texts]
    b = [TextCorpusDataModule(data_dir=str(folder), seed=2).split_of(t) for t in texts]
    assert a != b and {0, 2} <= set(a) and {0, 2} <= set(b)


def test_vocabulary_is_shared_across_selections_with_mask_at_4_and_texts_framed_cls_sep(fortunes_dir):
    folder, _ = fortunes_dir
    every = TextCorpusDataModule(data_dir=str(folder), max_len=12)
    two = TextCorpusDataModule(data_dir=str(folder), categories=["art", "politics"], max_len=12)
    assert every.tokenizer == two.tokenizer  # built from every category's training entries
    assert every.get_tokenizer().tokens[4] == "<mask>" and "senate" in every.get_tokenizer().index
    two.setup()
    ids = two.train_set.tensors[0]  # (N, <= 12)
    assert ids.shape[1] <= 12 and (ids[:, 0] == BOS_ID).all()
    lengths = (ids != PAD_ID).sum(1)
    assert (ids[torch.arange(len(ids)), lengths - 1] == EOS_ID).all()  # [SEP] last, truncated texts too
    plain = TextCorpusDataModule(data_dir=str(folder), categories=["art", "politics"], add_special_tokens=False)
    plain.setup()
    assert not (plain.train_set.tensors[0] == BOS_ID).any()


def test_text_folder_and_csv_sources(tmp_path):
    folder = tmp_path / "reviews"
    for label, words in {"neg": "awful dull", "pos": "great superb"}.items():
        (folder / label).mkdir(parents=True)
        for i in range(10):
            (folder / label / f"{i}.txt").write_text(f"{words} film {i}<br />end", encoding="utf-8")
    dm = TextCorpusDataModule(data_dir=str(folder), min_freq=1)
    assert dm.class_names == ["neg", "pos"] and len(dm.corpus()["pos"]) == 10
    assert dm.corpus()["neg"][0] == "awful dull film 0 end"

    csv_path = tmp_path / "texts.csv"
    csv_path.write_text('label,text\nham,"hello, friend"\nspam,win money now\nham,see you\n', encoding="utf-8")
    dm = TextCorpusDataModule(data_dir=str(csv_path))
    assert dm.corpus() == {"ham": ["hello, friend", "see you"], "spam": ["win money now"]}
    csv_path.write_text("ham,one,two\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"texts.csv, line 1: expected 2 columns"):
        TextCorpusDataModule(data_dir=str(csv_path)).corpus()


def test_missing_corpus_and_unknown_categories_are_clear_errors(fortunes_dir, tmp_path):
    with pytest.raises(DataNotFoundError, match="apt-get install fortunes"):
        TextCorpusDataModule(data_dir=str(tmp_path / "nowhere")).corpus()
    folder, _ = fortunes_dir
    with pytest.raises(ValueError, match=r"categories \['cats'\] are not in"):
        TextCorpusDataModule(data_dir=str(folder), categories=["art", "cats"]).num_classes
    with pytest.raises(ValueError, match="at least 2 distinct categories"):
        TextCorpusDataModule(data_dir=str(folder), categories=["art"])


def test_default_location_is_zoo_data_dir_fortunes(fortunes_dir, monkeypatch):
    folder, _ = fortunes_dir
    monkeypatch.setenv("ZOO_DATA_DIR", str(folder.parent))
    assert TextCorpusDataModule().locate() == folder


def test_real_fortunes_categories_and_the_recipes_five(real_fortunes):
    """Debian's fortunes: 43 categories, about 15,000 distinct entries; the five the fine-tuning recipe classifies."""
    dm = TextCorpusDataModule(data_dir=str(real_fortunes), categories=FORTUNE_CATEGORIES)
    corpus = dm.corpus()
    assert len(corpus) >= 40 and "off" not in corpus and not any(n.endswith((".dat", ".u8")) for n in corpus)
    assert sum(map(len, corpus.values())) > 14_000
    sizes = {c: len(corpus[c]) for c in FORTUNE_CATEGORIES}
    assert all(n >= 500 for n in sizes.values()), sizes
