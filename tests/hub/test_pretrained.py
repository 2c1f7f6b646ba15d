"""Shipped weights (zoo.pretrained): save/load round trips, SHA-256 checks before reading, no pickle,
create_model(pretrained=) with head and input-channel adaptation, and the inference helpers and tools
taking an entry name. Every entry here is written into tmp_path ($ZOO_WEIGHTS_DIR); no shipped file is used."""

import json
import logging
import pickle
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from PIL import Image

import zoo
import zoo.hub.pretrained
from zoo.hub.manifest import manifest_dir
from zoo.hub.pretrained import (
    PretrainedWeightsCorrupt,
    PretrainedWeightsUnavailable,
    is_pretrained_name,
    list_pretrained,
    load_pretrained,
    load_trained,
    pretrained_entry,
    read_manifest,
    save_pretrained,
    sha256_file,
    weights_dir,
)
from zoo.core.tokenizer import Tokenizer

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def write_manifest(directory: Path, names: list[str]) -> None:
    """A format-1 manifest of entries already saved in ``directory`` (the fields loading reads, plus arch)."""
    rows = []
    for name in sorted(names):
        config = json.loads((directory / f"{name}.json").read_text())
        rows.append({
            "name": name, "arch": config["arch"], "zoo_class": config["zoo_class"],
            "file": f"{name}.safetensors", "sha256": sha256_file(directory / f"{name}.safetensors"),
            "size_bytes": (directory / f"{name}.safetensors").stat().st_size,
            "config_file": f"{name}.json", "config_sha256": sha256_file(directory / f"{name}.json"),
        })  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps({"format": 1, "description": "test", "weights": rows}))


def tiny_models() -> dict[str, zoo.ZooModule]:
    torch.manual_seed(0)
    src = Tokenizer.build(["one two three", "four five six", "seven"]).to_config()
    tgt = Tokenizer.build(["un deux trois", "quatre cinq six", "sept"]).to_config()
    return {
        "lenet5.tiny": zoo.create_model("lenet5", image_size=28, in_channels=1, mean=[0.286], std=[0.353], class_names=CLASSES),
        "cgan.tiny": zoo.create_model("cgan", latent_dim=8, generator_sizes=[16], discriminator_sizes=[16]),
        "seq2seq.tiny": zoo.create_model(
            "seq2seq", embedding_dim=8, hidden_size=16, src_vocab_size=len(src["tokens"]), tgt_vocab_size=len(tgt["tokens"]),
            src_tokenizer=src, tgt_tokenizer=tgt,
        ),  # fmt: skip
        "dqn.cartpole": zoo.create_model("dqn", hidden_sizes=[16], buffer_size=64),
    }


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> dict[str, zoo.ZooModule]:
    """The tiny models saved as entries of a manifest in tmp_path, which is $ZOO_WEIGHTS_DIR; in eval mode."""
    models = tiny_models()
    for name, model in models.items():
        save_pretrained(model.eval(), tmp_path, name)
    write_manifest(tmp_path, list(models))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    return models


def images(n: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


# -- the files and the manifest ---------------------------------------------------------------------------
def test_weights_dir_is_the_repository_checkpoints_unless_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    assert weights_dir() == Path(zoo.__file__).resolve().parent.parent / "checkpoints"
    assert manifest_dir() == Path(zoo.__file__).resolve().parent / "hub" / "shipped"  # package data
    shipped = list_pretrained()
    assert "resnet20.fashionmnist" in shipped
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    assert weights_dir() == tmp_path
    assert list_pretrained() == shipped  # no manifest there: a folder searched for the package's entries' files
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "description": "mine", "weights": []}))
    assert manifest_dir() == tmp_path and read_manifest()["description"] == "mine" and list_pretrained() == []  # its own


def test_a_manifest_of_another_format_is_refused(tmp_path, monkeypatch):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 2, "weights": []}))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="is not a format-1 zoo manifest"):
        list_pretrained()


def test_save_pretrained_writes_safetensors_and_its_config(tmp_path):
    model = tiny_models()["lenet5.tiny"]
    model.hparams["_class_path"] = "zoo.LeNet5"  # the CLI's bookkeeping is not a constructor argument
    weights, config_path = save_pretrained(model, tmp_path / "new", "lenet5.tiny")
    assert (weights.name, config_path.name) == ("lenet5.tiny.safetensors", "lenet5.tiny.json")
    config = json.loads(config_path.read_text())
    assert (config["format"], config["name"], config["arch"], config["zoo_class"]) == (1, "lenet5.tiny", "lenet5", "LeNet5")
    assert config["hparams"]["class_names"] == CLASSES and config["hparams"]["mean"] == [0.286]
    assert not any(k.startswith("_") or k == "pretrained" for k in config["hparams"])
    with safetensors.safe_open(weights, "pt") as f:
        assert f.metadata() == {"zoo_name": "lenet5.tiny"}
        assert set(f.keys()) == set(model.state_dict())
    assert sorted(p.name for p in weights.parent.iterdir()) == ["lenet5.tiny.json", "lenet5.tiny.safetensors"]  # no temp files left


def test_save_pretrained_refuses_bad_names(tmp_path):
    model = tiny_models()["lenet5.tiny"]
    with pytest.raises(ValueError, match="<arch>.<dataset>"):
        save_pretrained(model, tmp_path, "LeNet5")
    with pytest.raises(ValueError, match="'nosuchnet' is not a registered model"):
        save_pretrained(model, tmp_path, "nosuchnet.tiny")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_previous_entry_intact(tmp_path, monkeypatch):
    model = tiny_models()["lenet5.tiny"]
    weights, config_path = save_pretrained(model, tmp_path, "lenet5.tiny")
    before = weights.read_bytes(), config_path.read_bytes()

    def write_half_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", write_half_then_fail)
    torch.nn.init.zeros_(model.head.weight)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(model, tmp_path, "lenet5.tiny")
    assert (weights.read_bytes(), config_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.tiny.json", "lenet5.tiny.safetensors"]


@pytest.mark.parametrize("name", ["lenet5.tiny", "cgan.tiny", "seq2seq.tiny", "dqn.cartpole"])
def test_round_trip_gives_identical_outputs_in_eval_mode(shipped, name):
    model, loaded = shipped[name], load_pretrained(name)
    assert type(loaded) is type(model) and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    if name == "lenet5.tiny":
        x = torch.randn(3, 1, 28, 28)
        assert torch.equal(loaded(x), model(x)) and loaded.class_names == CLASSES
    by_path = load_pretrained(weights_dir() / f"{name}.safetensors")  # a file with its .json beside it
    assert all(torch.equal(by_path.state_dict()[k], v) for k, v in model.state_dict().items())


def test_list_pretrained_and_unknown_names(shipped):
    assert list_pretrained() == ["cgan.tiny", "dqn.cartpole", "lenet5.tiny", "seq2seq.tiny"]
    assert list_pretrained("*.tiny") == ["cgan.tiny", "lenet5.tiny", "seq2seq.tiny"] and list_pretrained("vgg*") == []
    assert pretrained_entry("lenet5.tiny")["zoo_class"] == "LeNet5"
    assert is_pretrained_name("lenet5.tiny") and not is_pretrained_name("lenet5") and not is_pretrained_name(None)
    with pytest.raises(KeyError, match=r"Did you mean 'lenet5.tiny'.*Available: cgan.tiny, dqn.cartpole, lenet5.tiny, seq2seq.tiny"):
        load_pretrained("lenet5.tinny")
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        load_pretrained(weights_dir() / "nothere.safetensors")


# -- integrity: hashes first, never pickle --------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_one_changed_byte_is_refused_before_anything_is_read(shipped, monkeypatch, suffix):
    path = weights_dir() / f"lenet5.tiny{suffix}"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    def never(*args, **kwargs):
        raise AssertionError("a file was read before its hash was checked")

    monkeypatch.setattr(safetensors.torch, "load_model", never)
    monkeypatch.setattr(safetensors.torch, "load_file", never)
    monkeypatch.setattr(zoo.hub.pretrained, "_read_config", never)  # the config is not parsed either
    monkeypatch.setattr(zoo.hub.pretrained, "resolve_model_class", never)  # and no model is built
    with pytest.raises(PretrainedWeightsCorrupt, match=rf"{path}.*does not match the manifest"):
        load_pretrained("lenet5.tiny")
    with pytest.raises(PretrainedWeightsCorrupt, match=f"lenet5.tiny{suffix}"):
        zoo.create_model("lenet5", pretrained="tiny")


def test_a_missing_file_says_where_it_should_be(shipped):
    path = weights_dir() / "lenet5.tiny.safetensors"
    path.unlink()
    with pytest.raises(PretrainedWeightsUnavailable, match=rf"it should be at {path}") as info:
        load_pretrained("lenet5.tiny")
    assert not isinstance(info.value, PretrainedWeightsCorrupt)


def test_weights_load_without_pickle(shipped, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = load_pretrained("lenet5.tiny")
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(loaded(x), shipped["lenet5.tiny"](x))


# -- create_model(pretrained=) --------------------------------------------------------------------------
def test_create_model_takes_a_dataset_or_an_entry_name(shipped):
    x = torch.randn(2, 1, 28, 28)
    for pretrained in ("tiny", "lenet5.tiny"):
        model = zoo.create_model("lenet5", pretrained=pretrained)
        assert torch.equal(model(x), shipped["lenet5.tiny"](x))


def test_num_classes_replaces_the_head_and_says_so(shipped, caplog):
    source = shipped["lenet5.tiny"]
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create_model("lenet5", pretrained="tiny", num_classes=5)
    assert "the 10-class head of lenet5.tiny is replaced by a new 5-class head" in caplog.text
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 5)
    assert model.hparams.num_classes == 5 and model.class_names is None
    assert torch.equal(model.features[0].weight, source.features[0].weight)  # the backbone is the trained one


def test_in_channels_three_reads_a_grey_image_repeated_as_the_grey_model_does(shipped):
    grey_model = shipped["lenet5.tiny"]
    rgb_model = zoo.create_model("lenet5", pretrained="tiny", in_channels=3)
    assert rgb_model.features[0].weight.shape[1] == 3 and rgb_model.hparams.in_channels == 3
    grey = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(rgb_model(grey.repeat(1, 3, 1, 1)), grey_model(grey), atol=1e-5)
    assert len(rgb_model.transforms().mean) == 3
    raw = images(2)  # uint8 pixels through each model's own preprocessing: the same answer
    rgb_top, grey_top = zoo.predict(rgb_model, list(raw.repeat(1, 3, 1, 1)), topk=3), zoo.predict(grey_model, list(raw), topk=3)
    assert [[label for label, _ in row] for row in rgb_top] == [[label for label, _ in row] for row in grey_top]
    assert [p for row in rgb_top for _, p in row] == pytest.approx([p for row in grey_top for _, p in row], abs=1e-5)


def test_other_overrides_replace_the_recorded_arguments(shipped):
    model = zoo.create_model("lenet5", pretrained="tiny", freeze_backbone=True, lr=0.05, num_classes=4)
    assert model.hparams.lr == 0.05 and model.freeze_backbone
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    with pytest.raises(ValueError, match="exclude each other"):
        zoo.create_model("lenet5", pretrained="tiny", weights="DEFAULT")


def test_create_model_without_that_entry_lists_what_there_is(shipped):
    with pytest.raises(ValueError, match=r"no pretrained weights 'lenet5.cifar10' for lenet5; lenet5 has: lenet5.tiny"):
        zoo.create_model("lenet5", pretrained="cifar10")
    with pytest.raises(ValueError, match="simple_cnn has: none"):
        zoo.create_model("simple_cnn", pretrained="tiny")
    with pytest.raises(ValueError, match="'cgan.tiny' holds weights of cgan, not lenet5"):
        zoo.create_model("lenet5", pretrained="cgan.tiny")
    with pytest.raises(KeyError, match="unknown model 'lenet6'"):
        zoo.create_model("lenet6", pretrained="tiny")


def test_a_simclr_entry_is_a_fine_tuning_start_for_a_model_of_its_backbone(tmp_path, monkeypatch):
    """A shipped SimCLR encoder serves pretrained= of its backbone's registry name: the backbone's weights and
    normalization, a fresh head; another model is refused as for any entry of another architecture."""
    torch.manual_seed(0)
    simclr = zoo.create_model("simclr", backbone="resnet9_fast", backbone_args={"widths": [4, 4, 8, 8], "stem_pool": False}, mean=[0.286], std=[0.353])
    save_pretrained(simclr.eval(), tmp_path, "simclr.tiny")
    write_manifest(tmp_path, ["simclr.tiny"])
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    model = zoo.create_model("resnet9_fast", pretrained="simclr.tiny", widths=[4, 4, 8, 8], stem_pool=False, num_classes=5)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model.eval().forward_features(x), simclr(x))
    assert model.head.out_features == 5 and model.hparams.pretrained == "simclr.tiny" and model.hparams.mean == [0.286]
    with pytest.raises(ValueError, match="'simclr.tiny' holds weights of simclr, not lenet5"):
        zoo.create_model("lenet5", pretrained="simclr.tiny")


def test_models_without_a_head_or_stem_refuse_the_adapters(shipped):
    with pytest.raises(ValueError, match="DQN has no classifier head to replace"):
        load_pretrained("dqn.cartpole", num_classes=5)
    with pytest.raises(ValueError, match="Seq2Seq cannot adapt its input channels"):
        load_pretrained("seq2seq.tiny", in_channels=3)
    assert load_pretrained("lenet5.tiny", num_classes=10).class_names == CLASSES  # the same size: nothing replaced


# -- the inference helpers and tools take entry names -----------------------------------------------------
def test_predict_takes_an_entry_name(shipped):
    assert zoo.predict("lenet5.tiny", list(images()), topk=2) == zoo.predict(shipped["lenet5.tiny"], list(images()), topk=2)


def test_generate_takes_an_entry_name(shipped):
    expected = zoo.generate(shipped["cgan.tiny"], labels=[1, 7], n=2, seed=0)
    assert torch.equal(zoo.generate("cgan.tiny", labels=[1, 7], n=2, seed=0), expected)


def test_translate_takes_an_entry_name(shipped):
    texts = ["one two", "seven six"]
    assert zoo.translate("seq2seq.tiny", texts) == zoo.translate(shipped["seq2seq.tiny"], texts)


def test_play_takes_an_entry_name(shipped):
    assert zoo.play("dqn.cartpole", episodes=2, seed=7) == zoo.play(shipped["dqn.cartpole"], episodes=2, seed=7)


def test_an_unknown_name_is_neither_file_nor_entry(shipped):
    with pytest.raises(FileNotFoundError, match="neither a checkpoint file nor a pretrained entry; entries: cgan.tiny"):
        zoo.predict("lenet5.cifar10", list(images()))
    with pytest.raises(ValueError, match="holds a LeNet5, not a DQN"):
        load_trained("lenet5.tiny", model="dqn")


def test_tools_take_an_entry_name_as_checkpoint(shipped, tmp_path, capsys):
    from zoo.tools import generate, predict, translate

    files = []
    for i, image in enumerate(images(2)):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image[0].numpy()).save(files[-1])
    predict.main(["--checkpoint", "lenet5.tiny", "--topk", "2", *files])
    assert capsys.readouterr().out.strip() == predict.format_table(files, zoo.predict(shipped["lenet5.tiny"], files, topk=2))

    out = tmp_path / "grid.png"
    generate.main(["--checkpoint", "cgan.tiny", "--out", str(out), "--labels", "0", "1", "--n", "3"])
    with Image.open(out) as grid:
        assert grid.size == (3 * 30 + 2, 2 * 30 + 2)

    capsys.readouterr()
    translate.main(["--checkpoint", "seq2seq.tiny", "one two", "seven"])
    assert capsys.readouterr().out.splitlines() == zoo.translate(shipped["seq2seq.tiny"], ["one two", "seven"])

    (tmp_path / "lenet5.tiny.safetensors").write_bytes(b"not the weights")
    with pytest.raises(SystemExit, match="does not match the manifest"):
        predict.main(["--checkpoint", "lenet5.tiny", *files])


def test_create_model_hands_a_file_path_to_the_models_own_pretrained_argument(shipped):
    """A path is fine-tuning's ``pretrained=`` (zoo.finetune): built from the overrides, the weights copied in."""
    source = shipped["lenet5.tiny"]
    model = zoo.create_model("lenet5", pretrained=weights_dir() / "lenet5.tiny.safetensors", image_size=28, in_channels=1, num_classes=4)
    assert model.head.out_features == 4 and torch.equal(model.features[0].weight, source.features[0].weight)


def test_shipped_weights_leave_training_progress_out(tmp_path):
    """A DQN's replay buffer and counters resume runs from .ckpt files; the shipped file holds the networks only."""
    from safetensors import safe_open

    model = zoo.create_model("dqn", hidden_sizes=[16], buffer_size=5000)
    model.replay.obs.normal_()  # a filled buffer: 5000 transitions
    model.env_steps.fill_(1234)
    weights, _ = save_pretrained(model, tmp_path, "dqn.cartpole")
    with safe_open(str(weights), "pt") as f:
        keys = set(f.keys())
    assert keys and not any(k.startswith("replay.") or k == "env_steps" for k in keys)
    assert keys == {k for k in model.state_dict() if k.startswith(("q_net.", "target_net."))}
    loaded = load_pretrained(str(weights))
    obs = torch.randn(3, 4)
    assert torch.equal(loaded(obs), model.eval()(obs))
    assert int(loaded.env_steps) == 0 and int(loaded.replay.size) == 0  # training progress starts afresh
