"""Hostile files: a checkpoint, a weights config or a streaming index that names code never gets it imported.

Every loader the zoo has is fed files whose text fields (environment ids, class paths, tokenizer fields,
``pretrained``, data specs) hold strings that would import a module if anything handed them to an importer:
``"mod:Env-v0"`` (gymnasium's "import mod, then look up"), ``"mod.LeNet5"`` (a class path), a
``{"class_path": ...}`` dict (jsonargparse). The module, ``MARKER_MODULE``, sits on ``sys.path`` and writes a
marker file when imported. After each load attempt, whatever it raised, the module is absent from
``sys.modules`` and the marker was never written.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from zoo.hub.checkpoint import load_checkpoint
from zoo.hub.pretrained import load_pretrained, save_pretrained

REPO = Path(__file__).resolve().parents[2]
MARKER_MODULE = "zoo_hostile_marker"

#: What a hostile file plants: each would make an importer load ``MARKER_MODULE``.
HOSTILE = [
    f"{MARKER_MODULE}:Evil-v0",  # a gymnasium id: gym.make imports the module before the colon
    f"{MARKER_MODULE}.LeNet5",  # a class path, as Lightning's CLI records it
    f"{MARKER_MODULE}.Evil",
    f"{MARKER_MODULE}:LeNet5",
    MARKER_MODULE,
]
HOSTILE_DICT = {"class_path": f"{MARKER_MODULE}.Evil", "init_args": {}}


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    """``MARKER_MODULE`` on ``sys.path`` (and on ``PYTHONPATH`` for subprocesses); returns its marker file."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "IMPORTED"
    (folder / f"{MARKER_MODULE}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "import zoo\nLeNet5 = zoo.LeNet5\nclass Evil(zoo.LeNet5):\n    pass\n"
    )
    sys.path.insert(0, str(folder))
    yield marker
    sys.path.remove(str(folder))


def assert_not_imported(marker: Path) -> None:
    assert MARKER_MODULE not in sys.modules, f"{MARKER_MODULE} was imported"
    assert not marker.exists(), f"{MARKER_MODULE} ran: {marker} was written"


def _env_with_marker(marker: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(marker.parent), os.environ.get("PYTHONPATH")]))}


# --------------------------------------------------------------------------------------------------
# Checkpoints to plant strings in: one model of each kind of text hyperparameter
# --------------------------------------------------------------------------------------------------
def _tokenizer() -> dict[str, Any]:
    from zoo.core.tokenizer import Tokenizer

    return Tokenizer.build(["a hostile file names code", "a model never imports it"], min_freq=1, reserved=["<mask>"]).to_config()


def _models() -> dict[str, zoo.ZooModule]:
    torch.manual_seed(0)
    tok = _tokenizer()
    return {
        "lenet5": zoo.create_model("lenet5", num_classes=3, class_names=["a", "b", "c"]),
        "dqn": zoo.create_model("dqn", hidden_sizes=[8]),
        "resnet": zoo.create_model("resnet20", widths=[4, 8, 8], num_classes=3),
        "bert": zoo.create_model("bert_small", vocab_size=len(tok["tokens"]), tokenizer=tok, d_model=16, nhead=2, num_layers=1, dim_feedforward=16),
        "seq2seq": zoo.create_model(
            "seq2seq", src_vocab_size=len(tok["tokens"]), tgt_vocab_size=len(tok["tokens"]), src_tokenizer=tok, tgt_tokenizer=tok,
            embedding_dim=8, hidden_size=8,
        ),
    }


#: The registry name of each of ``_models()``.
ARCH = {"lenet5": "lenet5", "dqn": "dqn", "resnet": "resnet20", "bert": "bert_small", "seq2seq": "seq2seq"}


@pytest.fixture(scope="module")
def models() -> dict[str, zoo.ZooModule]:
    return _models()


def _text_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths (keys and indices) to every string inside ``value``: the fields a file could plant text in."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _text_paths(v, (*path, k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _text_paths(v, (*path, i))]
    return []


def _planted(hparams: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    hparams = json.loads(json.dumps(hparams))  # a deep copy of primitives
    node = hparams
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return hparams


@st.composite
def plantings(draw, models: dict[str, zoo.ZooModule]) -> tuple[str, dict[str, Any]]:
    """(model name, hyperparameters with one text field, or a named key, replaced by a hostile value)."""
    name = draw(st.sampled_from(sorted(models)))
    hparams = dict(models[name].hparams)
    hparams.setdefault("pretrained", None)
    targets = _text_paths(hparams) + [("pretrained",), ("_class_path",), ("env_id",)]
    path = draw(st.sampled_from(sorted(set(targets), key=repr)))
    value = draw(st.sampled_from([*HOSTILE, HOSTILE_DICT]))
    return name, _planted(hparams, path, value)


def write_checkpoint(path: Path, model: zoo.ZooModule, hparams: dict[str, Any], zoo_class: str | None = None) -> Path:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "zoo_class": zoo_class or type(model).__name__}, path)
    return path


HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------------
# The Python loaders
# --------------------------------------------------------------------------------------------------
@HYPOTHESIS
@given(data=st.data())
def test_load_checkpoint_never_imports_what_a_checkpoint_names(marker, models, tmp_path, data):
    name, hparams = data.draw(plantings(models))
    path = write_checkpoint(tmp_path / "hostile.ckpt", models[name], hparams)
    try:
        load_checkpoint(path)
    except (ValueError, TypeError, KeyError, RuntimeError):
        pass
    assert_not_imported(marker)


@HYPOTHESIS
@given(form=st.sampled_from(HOSTILE), key=st.sampled_from(["_class_path", "zoo_class"]))
def test_a_recorded_class_is_looked_up_never_imported(marker, models, tmp_path, form, key):
    model = models["lenet5"]
    hparams = dict(model.hparams)
    zoo_class = form if key == "zoo_class" else None
    if key == "_class_path":
        hparams["_class_path"] = form
    path = write_checkpoint(tmp_path / "hostile.ckpt", model, hparams, zoo_class=zoo_class)
    if key == "zoo_class":
        torch.save({**torch.load(path, weights_only=True), "zoo_class": form}, path)
    with pytest.raises(ValueError, match=f"{path}: .*{form}.* is not one of the zoo's model classes"):
        load_checkpoint(path)
    assert_not_imported(marker)


@HYPOTHESIS
@given(data=st.data())
def test_load_pretrained_by_path_never_imports_what_its_config_names(marker, models, tmp_path, data):
    name, hparams = data.draw(plantings(models))
    weights, config = save_pretrained(models[name], tmp_path, f"{ARCH[name]}.hostile")
    saved = json.loads(config.read_text())
    if "_class_path" in hparams:  # the config's own class field
        saved["zoo_class"] = hparams.pop("_class_path")
    saved["hparams"] = {k: v for k, v in hparams.items() if not k.startswith("_")}
    config.write_text(json.dumps(saved))
    for load in (lambda: load_pretrained(weights), lambda: zoo.create_model("lenet5", pretrained=str(weights), num_classes=3)):
        try:
            load()
        except (ValueError, TypeError, KeyError, RuntimeError):
            pass
        assert_not_imported(marker)


@HYPOTHESIS
@given(data=st.data())
def test_from_pretrained_never_imports_what_a_folders_config_names(marker, models, tmp_path, data):
    name, hparams = data.draw(plantings(models))
    folder = models[name].save_pretrained(tmp_path / "folder")
    saved = json.loads((folder / "config.json").read_text())
    if "_class_path" in hparams:  # the config's own class field
        saved["zoo"]["class"] = hparams.pop("_class_path")
    config = {**{k: v for k, v in hparams.items() if not k.startswith("_")}, "zoo": saved["zoo"]}
    (folder / "config.json").write_text(json.dumps(config))
    for load in (lambda: zoo.ZooModule.from_pretrained(folder), lambda: type(models[name]).from_pretrained(folder)):
        try:
            load()
        except (ValueError, TypeError, KeyError, RuntimeError):
            pass
        assert_not_imported(marker)


@HYPOTHESIS
@given(data=st.data())
def test_create_model_pretrained_from_a_hostile_checkpoint(marker, models, tmp_path, data):
    name, hparams = data.draw(plantings(models))
    path = write_checkpoint(tmp_path / "hostile.ckpt", models[name], hparams)
    target = ARCH[name]
    try:
        zoo.create_model(target, pretrained=str(path), **({"num_classes": 3} if name in ("lenet5", "resnet") else {}))
    except (ValueError, TypeError, KeyError, RuntimeError):
        pass
    assert_not_imported(marker)


@pytest.mark.parametrize("value", HOSTILE)
def test_pretrained_given_a_hostile_string_is_an_unknown_entry(marker, value):
    with pytest.raises((ValueError, KeyError, FileNotFoundError)):
        zoo.create_model("lenet5", pretrained=value)
    assert_not_imported(marker)


def test_a_dqn_checkpoint_whose_env_id_names_a_module_is_refused_naming_file_and_value(marker, models, tmp_path):
    """The first reproduction: gymnasium would import the module before the ':' of the recorded env_id."""
    model = models["dqn"]
    path = write_checkpoint(tmp_path / "dqn.ckpt", model, {**dict(model.hparams), "env_id": f"{MARKER_MODULE}:Evil-v0"})
    with pytest.raises(ValueError, match=rf"{path}: .*env_id '{MARKER_MODULE}:Evil-v0' is refused"):
        load_checkpoint(path)
    assert_not_imported(marker)
    # The same refusal through the paths that build an agent from a file.
    with pytest.raises(ValueError, match="is refused"):
        zoo.play(str(path), episodes=1)
    with pytest.raises(ValueError, match="is refused"):
        zoo.play(model, f"{MARKER_MODULE}:Evil-v0", episodes=1)
    assert_not_imported(marker)


def test_an_unregistered_env_id_is_refused_and_a_registered_one_plays(marker, models):
    from zoo.models.rl.envs import check_env_id

    with pytest.raises(ValueError, match="not a registered gymnasium environment"):
        check_env_id("NoSuchEnvironment-v0")
    assert check_env_id("CartPole-v1") == "CartPole-v1"
    assert len(zoo.play(models["dqn"], "CartPole-v1", episodes=1)) == 1


# --------------------------------------------------------------------------------------------------
# The command-line loaders
# --------------------------------------------------------------------------------------------------
def _lenet_digits_checkpoint(tmp_path: Path, models, **planted) -> Path:
    model = zoo.create_model("lenet5", num_classes=10, in_channels=1, image_size=32)
    hparams = {**dict(model.hparams), "_instantiator": "lightning.pytorch.cli.instantiate_module", "_class_path": "zoo.LeNet5", **planted}
    return write_checkpoint(tmp_path / "hostile.ckpt", model, hparams)


@pytest.mark.parametrize("subcommand", ["fit", "test"])
def test_train_py_refuses_a_checkpoint_naming_a_foreign_class(marker, models, tmp_path, subcommand):
    """The second reproduction: LightningCLI hands a checkpoint's _class_path to jsonargparse, which imports it."""
    path = _lenet_digits_checkpoint(tmp_path, models, _class_path=f"{MARKER_MODULE}.LeNet5")
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), subcommand, "--config", str(REPO / "configs" / "lenet5_digits.yaml"),
         "--ckpt_path", str(path), "--trainer.default_root_dir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, env=_env_with_marker(marker), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(path) in last and f"'{MARKER_MODULE}.LeNet5'" in last, last
    assert_not_imported(marker)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=st.sampled_from(["_class_path", "_instantiator", "class_names", "optimizer", "pretrained", "activation"]),
       value=st.sampled_from([*HOSTILE, HOSTILE_DICT]))  # fmt: skip
def test_cli_ckpt_path_never_imports_what_a_checkpoint_names(marker, models, tmp_path, key, value):
    from zoo.training.cli import main

    path = _lenet_digits_checkpoint(tmp_path, models, **{key: value})
    args = ["test", "--config", str(REPO / "configs" / "lenet5_digits.yaml"), "--ckpt_path", str(path),
            "--trainer.limit_test_batches", "1", "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]  # fmt: skip
    try:
        main(args)
    except (SystemExit, ValueError, TypeError, KeyError, RuntimeError):
        pass
    assert_not_imported(marker)


@pytest.mark.parametrize("key", ["_class_path", "_instantiator", "class_names"])
def test_checkpoint_hparams_refuses_with_the_file_and_the_value(models, tmp_path, key):
    from zoo.training.cli import checkpoint_hparams
    from zoo.training.cli_errors import ConfigError

    value = {"_class_path": f"{MARKER_MODULE}.LeNet5", "_instantiator": f"{MARKER_MODULE}.make", "class_names": HOSTILE_DICT}[key]
    path = _lenet_digits_checkpoint(tmp_path, models, **{key: value})
    with pytest.raises(ConfigError, match=str(path)):
        checkpoint_hparams(torch.load(path, weights_only=True), path)
    # A zoo checkpoint's own record passes, its class path written the way today's code names the class.
    clean = checkpoint_hparams(torch.load(_lenet_digits_checkpoint(tmp_path, models), weights_only=True), path)
    assert clean["_class_path"] == f"{zoo.LeNet5.__module__}.LeNet5" and "_instantiator" not in clean


def test_a_parse_error_quoting_a_class_path_imports_nothing(marker):
    from zoo.training.cli_errors import explain

    message = f'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Given value: {MARKER_MODULE}.LeNet5'
    assert f"unknown model '{MARKER_MODULE}.LeNet5'" in explain(message)
    assert_not_imported(marker)


@pytest.mark.parametrize("tool", ["zoo.tools.predict", "zoo.tools.generate", "zoo.tools.translate"])
@pytest.mark.parametrize("form", [f"{MARKER_MODULE}.LeNet5", f"{MARKER_MODULE}:Evil-v0"])
def test_command_line_tools_refuse_hostile_checkpoints(marker, models, tmp_path, tool, form):
    import importlib

    from PIL import Image

    path = write_checkpoint(tmp_path / "hostile.ckpt", models["lenet5"], {**dict(models["lenet5"].hparams), "_class_path": form})
    image = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(image)
    argv = {
        "zoo.tools.predict": [str(image), "--checkpoint", str(path), "--no-progress"],
        "zoo.tools.generate": ["--checkpoint", str(path), "--out", str(tmp_path / "s.png")],
        "zoo.tools.translate": ["--checkpoint", str(path), "un deux"],
    }[tool]
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(tool).main(argv)
    assert str(exit_.value.code).startswith("error: ") and str(path) in str(exit_.value.code)
    assert_not_imported(marker)


def test_hubconf_entry_points_refuse_hostile_files(marker, models, tmp_path):
    hub = torch.hub.load(str(REPO), "lenet5", source="local", trust_repo=True, num_classes=3)
    assert isinstance(hub, zoo.LeNet5)
    path = write_checkpoint(tmp_path / "hostile.ckpt", models["lenet5"], {**dict(models["lenet5"].hparams), "_class_path": HOSTILE[1]})
    with pytest.raises(ValueError, match="not one of the zoo's model classes"):
        torch.hub.load(str(REPO), "lenet5", source="local", trust_repo=True, pretrained=str(path), num_classes=3)
    for value in HOSTILE:
        with pytest.raises((ValueError, KeyError)):
            torch.hub.load(str(REPO), "lenet5", source="local", trust_repo=True, pretrained=value)
    assert_not_imported(marker)


# --------------------------------------------------------------------------------------------------
# Streaming copies: litdata unpickles every field an index declares "pickle"
# --------------------------------------------------------------------------------------------------
class _Unpickled:
    """Unpickling this object writes the marker: what a chunk of a hostile streaming copy holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def _streaming_copy(root: Path, item: dict[str, Any]) -> Path:
    """A streaming copy (dataset.json and a train split) whose one split holds ``item`` in litdata's format."""
    os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
    from litdata.streaming.writer import BinaryWriter

    (root / "train").mkdir(parents=True)
    writer = BinaryWriter(str(root / "train"), chunk_bytes="1MB")
    for i in range(4):
        writer.add_item(i, item)
    writer.done()
    writer.merge()
    meta = {"source": "FashionMNISTDataModule", "val_fraction": 0.1, "seed": 0, "num_classes": 10, "input_shape": [1, 8, 8],
            "class_names": [str(i) for i in range(10)], "mean": [0.5], "std": [0.5], "sizes": {"train": 4}}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_a_streaming_copy_declaring_pickled_fields_is_refused_before_a_chunk_is_read(tmp_path):
    pytest.importorskip("litdata")
    from datamodules import StreamingImageDataModule
    from datamodules.base import CorruptDataError

    unpickled = tmp_path / "UNPICKLED"
    root = _streaming_copy(tmp_path / "stream", {"image": _Unpickled(unpickled), "label": 0})
    index = json.loads((root / "train" / "index.json").read_text())
    assert "pickle" in index["config"]["data_format"]  # the fixture really declares a pickled field
    dm = StreamingImageDataModule(data_dir=str(root), batch_size=2)
    with pytest.raises(CorruptDataError, match=r"declares the data format 'pickle'"):
        dm.setup("fit")
    assert not unpickled.exists()
    assert dm.streams == {}
    # Proof that the refusal matters: litdata itself would run the pickle on reading a sample.
    import litdata

    litdata.StreamingDataset(str(root / "train"))[0]
    assert unpickled.exists()


@pytest.mark.parametrize(
    "field, value",
    [("item_loader", "TokensLoader"), ("compression", "zstd"), ("encryption", "fernet"),
     ("data_spec", json.dumps([1, {"type": f"{MARKER_MODULE}.Evil", "context": "null", "children_spec": []}]))],
)  # fmt: skip
def test_check_index_refuses_what_the_zoo_does_not_write(field, value):
    from datamodules.streaming import check_index

    index = {"config": {"data_format": ["tensor", "int"], "types": {"image": "tensor", "label": "int"}, "item_loader": "PyTreeLoader"}}
    check_index(index, "ok/index.json")
    index["config"][field] = value
    with pytest.raises(ValueError, match="bad/index.json"):
        check_index(index, "bad/index.json")


def test_a_streaming_copy_the_zoo_wrote_still_streams(tmp_path):
    pytest.importorskip("litdata")
    from datamodules import StreamingImageDataModule

    root = _streaming_copy(tmp_path / "stream", {"image": torch.zeros(1, 8, 8, dtype=torch.uint8), "label": 3})
    dm = StreamingImageDataModule(data_dir=str(root), batch_size=2)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 1, 8, 8) and y.tolist() == [3, 3]


# --------------------------------------------------------------------------------------------------
# CIFAR-10: only torchvision's MD5s are trusted
# --------------------------------------------------------------------------------------------------
def test_no_environment_variable_widens_the_cifar10_allowlist(vision_root, tmp_path, monkeypatch):
    import hashlib

    import datamodules.vision as vision

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in (vision_root.root / "cifar-10-batches-py").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    unpickled = tmp_path / "UNPICKLED"
    payload = pickle.dumps(_Unpickled(unpickled), protocol=2)
    (folder / "data_batch_1").write_bytes(payload)
    # The variable that once added trusted hashes: it is no longer read.
    monkeypatch.setenv("ZOO_CIFAR10_MD5", json.dumps({"data_batch_1": hashlib.md5(payload).hexdigest()}))
    with pytest.raises(ValueError, match="is not CIFAR-10's"):
        vision.CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup()
    assert not unpickled.exists()


def test_the_library_reads_no_hash_variable():
    for folder in ("zoo", "datamodules"):
        for path in (REPO / folder).rglob("*.py"):
            assert "ZOO_CIFAR10_MD5" not in path.read_text(), path
