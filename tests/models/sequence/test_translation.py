"""Translation: the num2words and TSV datamodule, the standard tests for "seq2seq" and "transformer",
decoding, learning on held-out numbers, and translating from a checkpoint in a fresh process."""

import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import zoo
from datamodules import TranslationDataModule
from zoo.models.sequence.decoding import beam_search, greedy_decode
from zoo.core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from tests.support.trainers import quiet_trainer

REPO = Path(__file__).resolve().parents[3]
TRANSLATION_MODELS = ["seq2seq", "transformer"]
SMALL = {
    "seq2seq": dict(embedding_dim=16, hidden_size=32),
    "transformer": dict(d_model=32, nhead=2, dim_feedforward=64, num_encoder_layers=1, num_decoder_layers=1, warmup_steps=10),
}


def recipe_beam_size(name: str) -> int:
    """The beam size the numbers recipe (configs/<name>_numbers_fr.yaml) tests and translates with."""
    recipe = yaml.safe_load((REPO / "configs" / f"{name}_numbers_fr.yaml").read_text())
    return int(recipe["model"]["init_args"]["beam_size"])


@pytest.fixture(scope="module")
def numbers() -> TranslationDataModule:
    dm = TranslationDataModule(num_train=300, num_test=40, test_range=[5000, 6000], batch_size=16)
    dm.setup()
    return dm


def build(name: str, dm: TranslationDataModule, **kwargs) -> zoo.ZooModule:
    links = dict(src_vocab_size=dm.src_vocab_size, tgt_vocab_size=dm.tgt_vocab_size, src_tokenizer=dm.src_tokenizer, tgt_tokenizer=dm.tgt_tokenizer)
    return zoo.create_model(name, **{**SMALL[name], **links, **kwargs})


# -- data ---------------------------------------------------------------------------------------------
def test_num2words_pairs_and_held_out_range(numbers):
    train, val, test = numbers.split_pairs()
    train = train + val
    assert ("twenty-one", "vingt et un") in train or all(s != "twenty-one" for s, _ in train)
    low, high = numbers.test_range
    train_sources = {s for s, _ in train}
    assert not train_sources & {s for s, _ in test}  # no test number is seen in training
    from num2words import num2words

    assert all(num2words(n) not in train_sources for n in range(low, high))
    assert len(test) == 40
    src, tgt = next(iter(numbers.train_dataloader()))
    assert src.dtype == torch.long and (tgt[:, 0] == BOS_ID).all() and (tgt == EOS_ID).any(1).all()
    src_tok, tgt_tok = numbers.tokenizers()
    assert tgt_tok.decode(tgt_tok.encode("mille neuf cent quatre-vingt-dix-neuf")) == "mille neuf cent quatre-vingt-dix-neuf"


def test_tsv_pairs_file(tmp_path):
    path = tmp_path / "fra.txt"
    lines = [f"I have {n} cats.\tJ'ai {n} chats.\tCC-BY 2.0 (France) Attribution: tatoeba.org" for n in range(40)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a blank line is skipped; a malformed one is an error (test_corrupt_data)
    dm = TranslationDataModule(tsv_path=str(path), batch_size=8, val_fraction=0.1, test_fraction=0.25)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 30 and len(dm.test_set) == 10
    assert "chats" in dm.tgt_tokenizer["tokens"] and dm.tgt_tokenizer["level"] == "word"


def test_vocabularies_come_from_the_training_split_only(tmp_path):
    """A word seen only in validation (or test) pairs is unknown, as it would be for a new sentence."""
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"I saw w{n}.\tJ'ai vu m{n}.\n" for n in range(40)), encoding="utf-8")
    dm = TranslationDataModule(tsv_path=str(path), batch_size=8, val_fraction=0.25, test_fraction=0.25, min_freq=1)
    dm.setup()
    src_words = {t for t in dm.src_tokenizer["tokens"] if t.startswith("w")}
    tgt_words = {t for t in dm.tgt_tokenizer["tokens"] if t.startswith("m")}
    assert len(src_words) == len(tgt_words) == len(dm.train_set) == 23  # 40 - 10 test - floor(30 * 0.25) val
    for dataset, unknown in ((dm.train_set, False), (dm.val_set, True), (dm.test_set, True)):
        src, tgt = dataset.tensors
        assert ((src == UNK_ID).any(1) == unknown).all() and ((tgt == UNK_ID).any(1) == unknown).all()


def test_tsv_url_offline_is_a_clear_error(tmp_path):
    from datamodules.base import DataNotFoundError

    dm = TranslationDataModule(tsv_path="https://example.org/fra.txt", data_dir=str(tmp_path))
    with pytest.raises(DataNotFoundError, match="could not download"):
        dm.setup()


# -- standard tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRANSLATION_MODELS)
def test_forward_shapes_and_finite_gradients(name, numbers):
    model = build(name, numbers)
    src, tgt = next(iter(numbers.train_dataloader()))
    logits = model(src, tgt[:, :-1])
    assert logits.shape == (*tgt[:, :-1].shape, numbers.tgt_vocab_size)
    model.compute_loss(logits, tgt[:, 1:]).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    with pytest.raises(ValueError, match="expects an integer tensor of token ids"):
        model(src.float(), tgt)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, T\)"):
        model(src[None], tgt)


@pytest.mark.parametrize("name", TRANSLATION_MODELS)
def test_fast_dev_run_fit_and_checkpoint_round_trip(name, numbers, tmp_path):
    model = build(name, numbers, beam_size=2)
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(model, datamodule=numbers)
    trainer.test(model, datamodule=numbers)
    assert {"test/loss", "test/exact_match", "test/bleu"} <= set(trainer.callback_metrics)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    assert raw["hyper_parameters"] == dict(model.hparams) and raw["zoo_class"] == type(model).__name__
    loaded = type(model).load_from_checkpoint(path, weights_only=True).eval()
    model.eval()
    src, tgt = next(iter(numbers.test_dataloader()))
    with torch.no_grad():
        assert torch.equal(model(src, tgt[:, :-1]), loaded(src, tgt[:, :-1]))
    assert torch.equal(model.generate(src, beam_size=2), loaded.generate(src, beam_size=2))


@pytest.mark.parametrize("name", TRANSLATION_MODELS)
def test_decoding_greedy_and_beam(name, numbers):
    torch.manual_seed(0)
    model = build(name, numbers).eval()
    src, _ = next(iter(numbers.test_dataloader()))
    greedy = greedy_decode(model, src, max_len=7)
    assert greedy.shape[0] == len(src) and greedy.shape[1] <= 7
    assert torch.equal(beam_search(model, src, 7, beam_size=1), greedy)
    beam = beam_search(model, src, 7, beam_size=3)
    assert beam.shape[0] == len(src) and beam.shape[1] <= 7
    after_eos = (beam == EOS_ID).long().cumsum(1) - (beam == EOS_ID).long() > 0
    assert (beam[after_eos] == PAD_ID).all()  # nothing but padding after a hypothesis ends


class TableDecoder:
    """A stand-in translation model whose next-token probabilities are fixed by hand: they depend only on
    the previous token, through the table that the source's first id picks (``tables[src[0]]``)."""

    def __init__(self, tables: torch.Tensor) -> None:
        self.log_probs = tables.clamp(min=1e-9).log()  # (n_tables, V, V): [table, previous token, next token]

    def encode(self, src: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"table": src[:, 0].clone()}  # (B,)

    def decode_step(self, prev_token: torch.Tensor, state: dict[str, torch.Tensor]):
        return self.log_probs[state["table"], prev_token], state  # (B, V) logits

    def score(self, table: int, ids: list[int]) -> float:
        """Log-probability of bos, ids... (ending with eos) under ``table``."""
        path = [BOS_ID, *ids]
        return sum(float(self.log_probs[table, a, b]) for a, b in zip(path, path[1:]))


def test_beam_search_finds_the_better_sequence_that_greedy_misses():
    a, b, c, vocab = 4, 5, 6, 7
    tables = torch.zeros(2, vocab, vocab)
    # Table 0: greedy takes "a" (0.6) and then has only a flat 0.34 to follow; "b" (0.4) is followed by eos
    # at 0.9. Best: b eos (0.4 * 0.9 = 0.36) over greedy's a c eos (0.6 * 0.34 = 0.204).
    tables[0, BOS_ID, [a, b]] = torch.tensor([0.6, 0.4])
    tables[0, a, [c, b, EOS_ID]] = torch.tensor([0.34, 0.33, 0.33])
    tables[0, b, [EOS_ID, c]] = torch.tensor([0.9, 0.1])
    tables[0, c, EOS_ID] = 1.0
    # Table 1: the same start, but here greedy's choice is the best: a c eos (0.54) over b eos (0.2).
    tables[1, BOS_ID, [a, b]] = torch.tensor([0.6, 0.4])
    tables[1, a, [c, EOS_ID]] = torch.tensor([0.9, 0.1])
    tables[1, b, [EOS_ID, c]] = torch.tensor([0.5, 0.5])
    tables[1, c, EOS_ID] = 1.0
    tables[:, EOS_ID, EOS_ID] = 1.0
    model = TableDecoder(tables)
    src = torch.tensor([[0, EOS_ID], [1, EOS_ID]])

    def rows(ids: torch.Tensor) -> list[list[int]]:  # up to and including eos
        return [r[: r.index(EOS_ID) + 1] if EOS_ID in r else r for r in ids.tolist()]

    assert rows(greedy_decode(model, src, max_len=5)) == [[a, c, EOS_ID], [a, c, EOS_ID]]
    for length_penalty in (0.0, 0.6):
        beam = rows(beam_search(model, src, max_len=5, beam_size=2, length_penalty=length_penalty))
        assert beam == [[b, EOS_ID], [a, c, EOS_ID]]
    assert model.score(0, [b, EOS_ID]) == pytest.approx(math.log(0.36), abs=1e-6)
    assert model.score(0, [b, EOS_ID]) > model.score(0, [a, c, EOS_ID])


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong"])
def test_seq2seq_attention_and_teacher_forcing_schedule(attention, numbers):
    model = build("seq2seq", numbers, attention=attention, teacher_forcing=1.0, teacher_forcing_schedule="linear", teacher_forcing_min=0.2)
    trainer = quiet_trainer(max_epochs=3, limit_train_batches=1, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(model, datamodule=numbers)
    assert float(model.teacher_forcing_ratio) == pytest.approx(0.2)  # reached the minimum in the last epoch
    assert "teacher_forcing_ratio" in model.state_dict()  # a resumed run continues the schedule


def test_transformer_noam_warmup_schedule(numbers):
    model = build("transformer", numbers, lr=1e-3, warmup_steps=4)
    trainer = quiet_trainer(max_steps=8, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(model, datamodule=numbers)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * (4 / 8) ** 0.5)
    with pytest.raises(ValueError, match="Noam"):
        build("transformer", numbers, scheduler="cosine").configure_optimizers()


def test_transformer_classifier_ignores_padding():
    model = zoo.create_model("transformer_classifier", vocab_size=50).eval()
    x = torch.randint(1, 50, (3, 6))
    padded = torch.cat([x, torch.zeros(3, 9, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded), model(x), rtol=0, atol=1e-5)


# -- learning and a fresh process ---------------------------------------------------------------------
@pytest.mark.learning
def test_seq2seq_learns_held_out_numbers_and_translates_in_a_fresh_process(tmp_path):
    L.seed_everything(0)
    dm = TranslationDataModule(num_train=4000, num_test=200, test_range=[5000, 6000], batch_size=64, val_fraction=0.05)
    dm.setup()
    beam_size = recipe_beam_size("seq2seq")  # decoded as the recipe decodes: beam search
    assert beam_size > 1
    model = build("seq2seq", dm, embedding_dim=64, hidden_size=128, lr=3e-3, scheduler="onecycle", beam_size=beam_size)
    trainer = quiet_trainer(max_epochs=3, enable_checkpointing=False, gradient_clip_val=1.0)
    trainer.fit(model, datamodule=dm)
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    print(f"seq2seq held-out exact match {result['test/exact_match']:.3f}, BLEU {result['test/bleu']:.3f}")
    assert result["test/exact_match"] > 0.5  # chance is ~0: the whole French sentence must be right

    path = tmp_path / "numbers.ckpt"
    trainer.save_checkpoint(path)
    expected = zoo.translate(model, ["two thousand and two", "seven thousand, nine hundred and ninety-nine"])
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.tools.translate", "--checkpoint", str(path), "--beam_size", str(beam_size),
         "two thousand and two", "seven thousand, nine hundred and ninety-nine"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


@pytest.mark.slow
@pytest.mark.learning
def test_small_transformer_learns_held_out_numbers():
    L.seed_everything(0)
    dm = TranslationDataModule(num_train=4000, num_test=200, test_range=[5000, 6000], batch_size=32, val_fraction=0.05)
    dm.setup()
    model = build(
        "transformer", dm, d_model=64, nhead=4, dim_feedforward=128, num_encoder_layers=2, num_decoder_layers=2,
        dropout=0.0, lr=3e-3, warmup_steps=300, beam_size=recipe_beam_size("transformer"),
    )  # fmt: skip
    assert model.beam_size > 1  # decoded as the recipe decodes: beam search
    trainer = quiet_trainer(max_epochs=10, enable_checkpointing=False, gradient_clip_val=1.0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    result = trainer.test(model, datamodule=dm, verbose=False)[0]
    print(f"transformer held-out exact match {result['test/exact_match']:.3f}, BLEU {result['test/bleu']:.3f}")
    assert result["test/exact_match"] > 0.5  # chance is ~0
