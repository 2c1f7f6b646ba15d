"""The WordPiece level of ``Tokenizer``: a vocabulary trained by Hugging Face ``tokenizers`` (specials, then
``<mask>``, then pieces with "##"), encoded in pure Python exactly as ``tokenizers`` encodes it, decoded back,
stored as primitives through a checkpoint; on Debian's fortunes it leaves far fewer ``<unk>`` than the word
level (``python -m pytest tests/core/test_wordpiece.py -k unk -s`` prints both shares)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from datamodules import TextCorpusDataModule
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer, _train_wordpiece

pytest.importorskip("tokenizers")  # the dev extra installs it; training a WordPiece vocabulary needs it

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Don't panic! The answer is 42, or so they say.",
    "Unbelievable: the foxes jumped, and jumped again (twice).",
    "A jumper jumps; jumping jumpers jumped.",
    "Brown dogs and quick foxes don't say 42 twice!",
]
RECIPE = dict(max_size=6000, min_freq=2)  # the BERT recipes' vocabulary settings


def small_tokenizer(**kwargs) -> Tokenizer:
    return Tokenizer.build(TEXTS, level="wordpiece", reserved=["<mask>"], **{"max_size": 150, **kwargs})


# -- building ---------------------------------------------------------------------------------------------------
def test_build_puts_specials_first_then_mask_then_characters_and_pieces():
    tok = small_tokenizer()
    assert tok.tokens[:5] == SPECIAL_TOKENS + ["<mask>"] and tok.level == "wordpiece" and len(tok) <= 150
    assert len(set(tok.tokens)) == len(tok)
    pieces = [t for t in tok.tokens if t.startswith("##")]
    assert "##s" in pieces and "##e" in pieces and any(len(p) > 3 for p in pieces)  # characters and merges
    assert {c for t in TEXTS for c in t.lower() if not c.isspace()} <= set(tok.tokens)  # every character, alone
    ids = tok.encode("Jumpers foxed")  # words never seen whole, spelled from pieces
    assert UNK_ID not in ids and len(ids) > 2
    assert [tok.tokens[i].startswith("##") for i in tok.encode("foxed")] == [False] + [True] * (len(tok.encode("foxed")) - 1)
    assert tok.encode("Jumps!") == tok.encode("jumps !")  # split and lowercased as the word level does
    assert tok.encode("foxé") == [UNK_ID]  # "é" was never seen: the whole word is one <unk>
    assert tok.encode("a" * 101) == [UNK_ID] and UNK_ID not in tok.encode("a" * 100)
    assert tok.encode("the fox", add_bos=True, add_eos=True, max_len=3) == [BOS_ID, tok.index["the"], EOS_ID]
    batch = tok.encode_batch(["fox", "the fox jumps over the lazy dog"], max_len=8, add_bos=True, add_eos=True)  # (2, T)
    assert batch.dtype == torch.long and batch.shape == (2, 8) and batch[0, -1] == PAD_ID and batch[1, -1] == EOS_ID


def test_smaller_max_size_keeps_fewer_merges_and_too_small_a_size_is_a_clear_error():
    big, small = small_tokenizer(max_size=150), small_tokenizer(max_size=80)
    assert len(small) == 80 and set(small.tokens) < set(big.tokens)
    assert len(small.encode(TEXTS[2])) > len(big.encode(TEXTS[2]))  # shorter pieces
    with pytest.raises(ValueError, match=r"max_size=20 is too small.*characters"):
        small_tokenizer(max_size=20)


def test_cased_vocabulary_keeps_capitals():
    tok = small_tokenizer(lowercase=False)
    assert "T" in tok.index and tok.encode("The") != tok.encode("the")
    assert tok.decode(tok.encode(TEXTS[0])) == TEXTS[0]


# -- encoding and decoding ----------------------------------------------------------------------------------------
def test_decode_inverts_encode_up_to_normalize():
    tok = small_tokenizer()
    for text in TEXTS + ["Jumpers foxed the brown fox's dog; twice, (42)!"]:
        ids = tok.encode(text)
        assert UNK_ID not in ids
        assert tok.decode(ids) == tok.normalize(text), text
        assert tok.decode(torch.tensor([BOS_ID, *ids, EOS_ID, PAD_ID])) == tok.normalize(text)
    assert tok.normalize("Don't  (panic) ,now!") == "don't (panic), now!"
    assert tok.decode([tok.index["##s"]]) == "s"  # a continuation with nothing before it stands alone


@pytest.fixture(scope="module")
def fortunes_wordpiece(real_fortunes):
    """The recipes' data with a WordPiece vocabulary: (datamodule, tokenizer, training texts, test texts)."""
    dm = TextCorpusDataModule(data_dir=str(real_fortunes), level="wordpiece", **RECIPE)
    entries = [t for texts in dm.corpus().values() for t in texts]
    train = [t for t in entries if dm.split_of(t) == 0]
    test = [t for t in entries if dm.split_of(t) == 2]
    return dm, dm.get_tokenizer(), train, test


def test_python_encoder_gives_the_ids_of_tokenizers_own_encoding_on_held_out_fortunes(fortunes_wordpiece):
    """The pure-Python encoder is WordPiece: on every held-out entry of every category it gives, token for token,
    what the trained ``tokenizers`` object gives (its ids mapped to ours by token string)."""
    _, tok, train, test = fortunes_wordpiece
    assert tok.tokens[:5] == SPECIAL_TOKENS + ["<mask>"] and len(tok) == 6000 and tok.level == "wordpiece"
    hf = _train_wordpiece(train, lowercase=True, min_freq=2, max_size=6000, special_tokens=SPECIAL_TOKENS + ["<mask>"])
    assert hf.get_vocab() == tok.index  # the same training gives the same vocabulary
    odd = ["Ünïcödé, naïve café — Zoë's résumé", "x" * 101, "supercalifragilisticexpialidocious!!", "e-mail: joe@unix.org (1997)"]
    assert len(test) > 2500
    for text in test + odd:
        theirs = [tok.index[s] for s in hf.encode(text, add_special_tokens=False).tokens]
        assert tok.encode(text) == theirs, text


def test_decode_inverts_encode_on_held_out_fortunes(fortunes_wordpiece):
    _, tok, _, test = fortunes_wordpiece
    known = [t for t in test if UNK_ID not in tok.encode(t)]
    assert len(known) > 0.95 * len(test)
    for text in known:
        assert tok.decode(tok.encode(text)) == tok.normalize(text), text


def test_unk_share_of_held_out_fortunes_is_far_below_the_word_levels(real_fortunes, fortunes_wordpiece):
    """Both vocabularies of 6,000 tokens (min_freq=2) from every category's training entries, read on the held-out
    (test) entries: the word level leaves about one token in ten unknown, WordPiece about none."""
    _, tok, _, test = fortunes_wordpiece
    word = TextCorpusDataModule(data_dir=str(real_fortunes), level="word", **RECIPE).get_tokenizer()
    shares, lengths = {}, {}
    for name, t in (("word", word), ("wordpiece", tok)):
        ids = [t.encode(text) for text in test]
        n = sum(map(len, ids))
        shares[name] = sum(i == UNK_ID for row in ids for i in row) / n
        lengths[name] = n / len(test)
        unk = sum(i == UNK_ID for row in ids for i in row)
        over = sum(len(row) + 2 > 48 for row in ids) / len(test)  # cut by the recipes' max_len, [CLS] and [SEP] included
        print(f"{name:>9}: <unk> {100 * shares[name]:.2f}% ({unk} of {n} tokens) in {len(test)} held-out fortunes, "
              f"{lengths[name]:.1f} tokens per entry, {100 * over:.1f}% of entries over 48, vocabulary {len(t)}")  # fmt: skip
    assert shares["word"] > 0.05, shares  # measured 10%
    assert shares["wordpiece"] < 0.01 and shares["wordpiece"] < shares["word"] / 10, shares
    assert lengths["word"] < lengths["wordpiece"] < 1.5 * lengths["word"]  # rare words only are split


def test_datamodule_serves_wordpiece_ids_framed_cls_sep(fortunes_dir):
    folder, _ = fortunes_dir
    dm = TextCorpusDataModule(data_dir=str(folder), level="wordpiece", max_len=12, max_size=120, min_freq=2)
    tok = dm.get_tokenizer()
    assert tok.level == "wordpiece" and tok.tokens[4] == "<mask>" and dm.vocab_size == len(tok) <= 120
    assert dm.tokenizer == tok.to_config()
    dm.setup()
    ids = dm.train_set.tensors[0]  # (N, <= 12)
    assert (ids[:, 0] == BOS_ID).all() and int(ids.max()) < len(tok)
    lengths = (ids != PAD_ID).sum(1)
    assert (ids[torch.arange(len(ids)), lengths - 1] == EOS_ID).all()


def test_pretraining_then_finetuning_recipes_run_with_wordpiece_through_the_cli(fortunes_dir, tmp_path, monkeypatch):
    """``--data.init_args.level wordpiece`` on both BERT recipes: vocab_size and the tokenizer are linked into the
    models, and the classifier's vocabulary, built again, is the pre-trained one."""
    from zoo.training.cli import main

    folder, _ = fortunes_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZOO_DATA_DIR", str(folder.parent))
    quick = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
             "--data.init_args.level=wordpiece", "--data.init_args.max_size=150", "--model.init_args.num_layers=1"]  # fmt: skip
    mlm = main(["fit", "--config", str(REPO / "configs/bert_small_mlm_fortunes.yaml"), *quick, "--trainer.default_root_dir", "mlm"])
    tok = Tokenizer.from_config(mlm.model.hparams.tokenizer)
    assert tok.level == "wordpiece" and mlm.model.hparams.vocab_size == len(tok) <= 150
    last = sorted(tmp_path.glob("mlm/**/last.ckpt"))
    cli = main(["fit", "--config", str(REPO / "configs/bert_small_fortunes.yaml"), *quick, "--trainer.default_root_dir", "cls",
                "--model.init_args.pretrained", str(last[0])])  # fmt: skip
    assert cli.trainer.state.finished and Tokenizer.from_config(cli.model.hparams.tokenizer) == tok


# -- storing ------------------------------------------------------------------------------------------------------
def test_config_round_trip_is_primitives_and_equal():
    tok = small_tokenizer()
    config = tok.to_config()
    assert json.loads(json.dumps(config)) == config and config["level"] == "wordpiece"
    again = Tokenizer.from_config(config)
    assert again == tok and len(again) == len(tok)
    assert all(again.encode(t) == tok.encode(t) for t in TEXTS)
    assert Tokenizer(tok.tokens, level="word") != tok and small_tokenizer(max_size=100) != tok


def test_checkpoint_recreates_the_tokenizer_and_encodes_without_tokenizers(tmp_path, monkeypatch):
    from tests.models.sequence.test_bert import _pretrained_mlm

    tok = small_tokenizer()
    mlm, path = _pretrained_mlm(tmp_path, tok.to_config())  # bert_small, d_model=32, 1 layer, max_len=32
    assert mlm.hparams.vocab_size == len(tok)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # encoding needs only the stored token list
    loaded = zoo.load_checkpoint(path)
    again = Tokenizer.from_config(loaded.hparams.tokenizer)
    assert again == tok and again.level == "wordpiece"
    ids = again.encode_batch(TEXTS, max_len=32, add_bos=True, add_eos=True)  # (5, T)
    assert torch.equal(ids, tok.encode_batch(TEXTS, max_len=32, add_bos=True, add_eos=True))
    with torch.no_grad():
        assert loaded(ids).shape == (*ids.shape, len(tok))


# -- errors and reproducibility -----------------------------------------------------------------------------------
def test_unknown_level_and_missing_tokenizers_are_clear_errors(monkeypatch):
    for make in (lambda: Tokenizer(SPECIAL_TOKENS, level="bpe"), lambda: Tokenizer.build(TEXTS, level="bpe")):
        with pytest.raises(ValueError, match=r"level must be one of 'word', 'char', 'wordpiece'; got 'bpe'"):
            make()
    with pytest.raises(ValueError, match="min_freq"):
        Tokenizer.build(TEXTS, level="wordpiece", min_freq=0)
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match=r"pip install tokenizers.*text extra"):
        Tokenizer.build(TEXTS, level="wordpiece")
    assert Tokenizer.build(TEXTS, level="word").encode("the fox")  # the other levels do not need it


_BUILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tokenizer", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
texts = [line for line in open(sys.argv[2], encoding="utf-8").read().split("\\n%\\n")]
print(json.dumps(module.Tokenizer.build(texts, level="wordpiece", min_freq=2, max_size=600, reserved=["<mask>"]).tokens))
"""


def test_vocabulary_is_the_same_in_every_process(real_fortunes):
    """``tokenizers`` numbers the "##" characters in hash-map order, which changes from one process to the next
    (huggingface/tokenizers#1794) and with it the ids, or even the merges; ``build`` registers them in sorted order,
    so two processes build the same token list, as pre-training and fine-tuning runs must."""
    command = [sys.executable, "-c", _BUILD, str(REPO / "zoo" / "core" / "tokenizer.py"), str(real_fortunes / "zippy")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]  # both at once
    first, second = (json.loads(run.communicate(timeout=120)[0]) for run in runs)
    assert len(first) == 600 and first == second
