"""MaskedLMDataModule: pre-training on the training fortunes and GCIDE, never on a classifier's held-out entry
(fixtures and the real files); masked batches, whole words or pieces; train_fraction's stratified subsets."""

from types import SimpleNamespace

import pytest
import torch
from tests.conftest import real_fortunes  # noqa: F401  (fixture)
from tests.conftest import require_real_data
from tests.conftest import write_dictd
from tests.datamodules.test_gcide import CAT, DILUENT

import zoo
from datamodules import MaskedLMDataModule, TextCorpusDataModule
from datamodules.corpus import FORTUNE_CATEGORIES
from datamodules.gcide import SYSTEM_GCIDE
from datamodules.unlabelled import decontaminate, word_ngrams
from zoo.core.masking import IGNORE_INDEX, MASK_ID
from zoo.core.tokenizer import Tokenizer
from zoo.evaluation.shipped_metrics import metric_spec


def test_decontaminate_drops_texts_sharing_eight_words_or_equal_to_a_held_out_text():
    held_out = ["The quick brown fox jumps over the lazy dog today.", "Short and sweet."]
    texts = ["A quick brown fox jumps over the lazy dog today, they said.",  # 8 words in a row shared
             "The quick brown fox jumps over a lazy dog.",  # 7 at most
             "short, and SWEET!",  # the same words as a short held-out text
             "Short and sweet, and more."]  # fmt: skip
    assert decontaminate(texts, held_out) == texts[1:2] + texts[3:]
    assert word_ngrams("a b c", 8) == {("a", "b", "c")}
    with pytest.raises(ValueError, match="n must be >= 1"):
        decontaminate(texts, held_out, n=0)


@pytest.fixture
def with_gcide(fortunes_dir, tmp_path):
    """The fixture fortunes, and a dictionary holding two definitions plus one that copies a held-out fortune."""
    folder, written = fortunes_dir
    held = next(t for t in written["zippy"] if TextCorpusDataModule(data_dir=str(folder)).split_of(t) == 2)
    leak = f"Leak \\Leak\\, n.\n   {' '.join(held.split())}\n   [1913 Webster]\n".encode()
    path = write_dictd(tmp_path / "gcide", {"cat": CAT.encode(), "Diluent": DILUENT.encode(), "leak": leak})
    return folder, written, str(path), held


def test_pretraining_reads_training_fortunes_and_the_dictionary_and_nothing_held_out(with_gcide):
    folder, written, gcide, held = with_gcide
    dm = MaskedLMDataModule(data_dir=str(folder), extra_corpora=[gcide], min_freq=1, holdout_fraction=0.1)
    texts = dm.pretraining_texts()
    held_out = set(dm.held_out_texts())
    assert held in held_out and not held_out & set(texts)
    assert not any(" ".join(held.split()) in t for t in texts)  # the copied definition is dropped too
    assert "Cat nap, a very short sleep." in texts and "Cat nap, a very short sleep." in dm.extra_texts()
    fortunes_train = {t for e in written.values() for t in e if dm.split_of(t) == 0}
    assert fortunes_train <= set(texts) and len(texts) == len(fortunes_train) + len(dm.extra_texts())
    dm.setup()
    n = [len(dm.train_set), len(dm.val_set), len(dm.test_set)]
    assert sum(n) == len(texts) and min(n) > 0
    classifier = TextCorpusDataModule(data_dir=str(folder), categories=["zippy", "art"], extra_corpora=[gcide], min_freq=1)
    assert classifier.tokenizer == dm.tokenizer and "felidae" in dm.get_tokenizer().index  # one vocabulary, dictionary words in it


def test_the_vocabulary_never_reads_a_held_out_entry(with_gcide, monkeypatch):
    folder, _, gcide, _ = with_gcide
    seen = []
    build = Tokenizer.build.__func__
    monkeypatch.setattr(Tokenizer, "build", classmethod(lambda cls, texts, **kw: build(cls, seen.extend(texts) or seen, **kw)))
    dm = MaskedLMDataModule(data_dir=str(folder), extra_corpora=[gcide], level="wordpiece", min_freq=1)
    dm.get_tokenizer()
    assert seen and not set(seen) & set(dm.held_out_texts())


def test_batches_are_masked_whole_words_fresh_in_training_fixed_in_validation(with_gcide):
    folder, _, gcide, _ = with_gcide
    dm = MaskedLMDataModule(data_dir=str(folder), extra_corpora=[gcide], level="wordpiece", min_freq=1, max_size=100,
                            whole_word_mask=True, mask_prob=0.4, holdout_fraction=0.1, batch_size=16)  # fmt: skip
    dm.setup()
    tok, cont = dm.get_tokenizer(), dm.continues()
    assert cont.any() and all(tok.tokens[i].startswith("##") for i in cont.nonzero().squeeze(1).tolist())
    val_inputs, val_labels = dm.val_set.tensors  # masked once in setup, with a fixed seed
    assert (val_labels != IGNORE_INDEX).any() and (val_inputs == MASK_ID).any()
    out = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)  # not training: the fixed masks, trimmed
    assert set(out) == {"inputs", "labels"} and torch.equal(out["labels"], val_labels[:16, : out["labels"].shape[1]])

    dm.trainer = SimpleNamespace(training=True)
    ids = dm.train_set.tensors[0][:64]  # (64, T)
    first, second = (dm.on_after_batch_transfer((ids, torch.zeros(64)), 0) for _ in range(2))
    assert not torch.equal(first["labels"], second["labels"])  # fresh masks every time
    sel = first["labels"] != IGNORE_INDEX
    ids = ids[:, : sel.shape[1]]
    assert torch.equal(first["labels"][sel], ids[sel])
    follow = cont[ids[:, 1:]] & (ids[:, :-1] > MASK_ID)  # a "##" piece after a piece of its word
    assert follow.any() and torch.equal(sel[:, 1:][follow], sel[:, :-1][follow])  # selected together or not at all


def test_mlm_model_trains_on_masked_batches(with_gcide):
    import lightning as L

    folder, _, gcide, _ = with_gcide
    dm = MaskedLMDataModule(data_dir=str(folder), extra_corpora=[gcide], level="wordpiece", min_freq=1, max_size=120,
                            whole_word_mask=True, max_len=24, batch_size=8)  # fmt: skip
    model = zoo.create_model("bert_small", d_model=32, nhead=2, num_layers=1, dim_feedforward=64, max_len=24,
                             vocab_size=dm.vocab_size, tokenizer=dm.tokenizer)  # fmt: skip
    trainer = L.Trainer(accelerator="cpu", max_steps=3, limit_val_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    assert trainer.global_step == 3 and torch.isfinite(trainer.callback_metrics["train/loss_step"])
    (scores,) = trainer.validate(model, dm, verbose=False)
    assert scores["val/loss"] > 0 and 0.0 <= scores["val/mlm_acc"] <= 1.0
    spec = metric_spec(model)  # what zoo-export measures and the manifest records for an MLM entry
    (tested,) = trainer.test(model, dm, verbose=False)
    assert spec["name"] == "test/mlm_acc" and spec["higher_is_better"] and 0.0 <= tested[spec["name"]] <= 1.0


def test_mistakes_are_clear_errors(fortunes_dir):
    folder, _ = fortunes_dir
    with pytest.raises(ValueError, match="leave categories unset"):
        MaskedLMDataModule(data_dir=str(folder), categories=["zippy", "art"])
    with pytest.raises(ValueError, match="holdout_fraction must be in"):
        MaskedLMDataModule(data_dir=str(folder), holdout_fraction=0.5)
    with pytest.raises(ValueError, match="unknown extra corpus 'wiki'"):
        TextCorpusDataModule(data_dir=str(folder), extra_corpora=["wiki"])
    with pytest.raises(ValueError, match=r"a list of corpora, got the string 'gcide': write \['gcide'\]"):
        TextCorpusDataModule(data_dir=str(folder), extra_corpora="gcide")
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\]"):
        TextCorpusDataModule(data_dir=str(folder), train_fraction=0.0)


def test_train_fraction_is_a_seeded_stratified_nested_subset(fortunes_dir):
    folder, _ = fortunes_dir
    cats = ["zippy", "art", "politics"]

    def split(fraction, seed=0):
        dm = TextCorpusDataModule(data_dir=str(folder), categories=cats, min_freq=1, train_fraction=fraction, train_subset_seed=seed)
        dm.setup()
        return dm

    full, half, fifth = split(1.0), split(0.5), split(0.2)
    rows = lambda ds: {tuple(r.tolist()) for r in ds.tensors[0]}  # noqa: E731
    assert rows(fifth.train_set) < rows(half.train_set) < rows(full.train_set)  # nested
    per_class = torch.bincount(full.train_set.tensors[1], minlength=3)
    assert torch.bincount(half.train_set.tensors[1], minlength=3).tolist() == [round(0.5 * n) for n in per_class.tolist()]
    assert torch.equal(full.val_set.tensors[0], fifth.val_set.tensors[0]) and torch.equal(full.test_set.tensors[0], fifth.test_set.tensors[0])
    assert full.tokenizer == fifth.tokenizer
    assert rows(split(0.2, seed=1).train_set) != rows(fifth.train_set) and rows(split(0.2).train_set) == rows(fifth.train_set)


@pytest.mark.slow  # ~30 s: the whole GCIDE database and every fortune
@pytest.mark.real_data
def test_real_pretraining_corpus_and_vocabulary_never_read_the_classifiers_held_out_fortunes(real_fortunes, monkeypatch):  # noqa: F811
    require_real_data(__import__("pathlib").Path(SYSTEM_GCIDE).is_file(), f"GCIDE in {SYSTEM_GCIDE} (apt-get install dict-gcide)")
    seen = []
    build = Tokenizer.build.__func__
    monkeypatch.setattr(Tokenizer, "build", classmethod(lambda cls, texts, **kw: build(cls, seen.extend(texts) or seen, **kw)))
    mlm = MaskedLMDataModule(data_dir=str(real_fortunes), extra_corpora=["gcide"], level="wordpiece", max_size=8000)
    classifier = TextCorpusDataModule(data_dir=str(real_fortunes), categories=FORTUNE_CATEGORIES, extra_corpora=["gcide"])
    classifier.read_texts()
    (texts, _), _ = classifier._cached_texts()
    held = {t for t, s in zip(texts, classifier._splits.tolist()) if s != 0}
    assert len(held) > 1000 and held <= set(mlm.held_out_texts())
    corpus = mlm.pretraining_texts()
    assert len(corpus) > 150_000 and not held & set(corpus)
    banned = set().union(*(word_ngrams(t, 8) for t in mlm.held_out_texts()))
    assert all(banned.isdisjoint(word_ngrams(t, 8)) for t in mlm.extra_texts())
    mlm.get_tokenizer()
    assert len(seen) > 150_000 and not held & set(seen) and not set(mlm.held_out_texts()) & set(seen)
