"""Tokenizer and vocabulary, and IMDB read from fixture files in the official aclImdb layout."""

import pytest
import torch

from datamodules import DataNotFoundError, IMDBDataModule, Tokenizer
from datamodules.text import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

from tests.conftest import write_aclimdb


def test_word_vocabulary_min_freq_max_size_and_special_ids():
    texts = ["the cat sat", "the cat ran", "the dog"]
    tok = Tokenizer.build(texts, min_freq=2)
    assert tok.tokens == SPECIAL_TOKENS + ["the", "cat"]  # most frequent first; sat, ran, dog seen once
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.encode("The dog", add_bos=True, add_eos=True) == [BOS_ID, 4, UNK_ID, EOS_ID]
    small = Tokenizer.build(texts, max_size=5)
    assert len(small) == 5 and small.tokens[4] == "the"


def test_word_tokenizer_round_trip_keeps_hyphens_and_punctuation():
    sentence = "mille neuf cent quatre-vingt-dix-neuf, et vingt et un!"
    tok = Tokenizer.build([sentence])
    assert tok.split("Quatre-vingt") == ["quatre", "-", "vingt"]
    assert tok.decode(tok.encode(sentence)) == sentence
    ids = tok.encode(sentence, add_bos=True, add_eos=True) + [PAD_ID, PAD_ID]
    assert tok.decode(torch.tensor(ids)) == sentence  # stops at eos, drops bos and padding


def test_char_tokenizer_and_batches():
    tok = Tokenizer.build(["abc ab"], level="char", lowercase=False)
    assert tok.decode(tok.encode("ba c")) == "ba c"
    batch = tok.encode_batch(["ab", "abcab"], max_len=4, add_eos=True)
    assert batch.shape == (2, 4) and batch.dtype == torch.long
    assert batch[0, 2] == EOS_ID and batch[0, 3] == PAD_ID and batch[1, 3] == EOS_ID  # truncated, eos kept


def test_tokenizer_config_is_primitive_and_rebuilds_it():
    tok = Tokenizer.build(["Hello, world"], level="word")
    config = tok.to_config()
    assert set(config) == {"tokens", "level", "lowercase"} and all(isinstance(t, str) for t in config["tokens"])
    assert Tokenizer.from_config(config) == tok
    with pytest.raises(ValueError, match="starts with"):
        Tokenizer(["a", "b"])


def test_imdb_reads_the_aclimdb_layout(tmp_path):
    write_aclimdb(tmp_path / "aclImdb", per_class=10)
    dm = IMDBDataModule(data_dir=str(tmp_path), batch_size=8, max_len=12, min_freq=1, download=False)
    assert dm.vocab_size == len(dm.tokenizer["tokens"]) and "great" in dm.tokenizer["tokens"]
    assert "br" not in dm.tokenizer["tokens"]  # <br /> line breaks are removed
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 20 and len(dm.test_set) == 20
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.long and x.shape[1] == 12 and set(y.tolist()) <= {0, 1}
    trimmed = dm.preprocess(torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]]))
    assert trimmed.tolist() == [[5, 6], [7, 0]]


def test_imdb_offline_without_files_is_a_clear_error(tmp_path):
    dm = IMDBDataModule(data_dir=str(tmp_path / "nowhere"))  # download is attempted and fails (no network)
    with pytest.raises(DataNotFoundError, match="aclImdb"):
        dm.setup("fit")
    assert not (tmp_path / "nowhere").exists()  # nothing half-written


def test_imdb_vocabulary_comes_from_the_training_split_only(tmp_path):
    """Each review holds one word of its own: those of validation reviews are unknown, as new text's would be."""
    for label in ("pos", "neg"):
        for split in ("train", "test"):
            (tmp_path / "aclImdb" / split / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "aclImdb" / "train" / label / f"{i}_5.txt").write_text(f"a film about {label}{i}")
            (tmp_path / "aclImdb" / "test" / label / f"{i}_5.txt").write_text(f"a film about test{label}{i}")
    dm = IMDBDataModule(data_dir=str(tmp_path), batch_size=4, min_freq=1, val_fraction=0.25, download=False)
    dm.setup("fit")
    own_words = [t for t in dm.tokenizer["tokens"] if t.startswith(("pos", "neg", "test"))]
    assert len(own_words) == len(dm.train_set) == 15 and len(dm.val_set) == 5
    for dataset, unknown in ((dm.train_set, False), (dm.val_set, True), (dm.test_set, True)):
        ids = dataset.tensors[0]
        assert ((ids == UNK_ID).any(1) == unknown).all()


def test_tokenizer_and_text_models_import_without_datamodules():
    """Model code reads its tokenizer from zoo.core.tokenizer; a checkpoint translates without the data package."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import zoo.core.tokenizer, zoo.models.sequence.rnn, zoo.models.sequence.seq2seq, zoo.models.sequence.transformer, zoo.models.sequence.decoding\n"
        "from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer\n"
        "assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'datamodules')\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import datamodules.text
    import zoo.core.tokenizer

    assert datamodules.Tokenizer is datamodules.text.Tokenizer is zoo.core.tokenizer.Tokenizer  # re-exported
