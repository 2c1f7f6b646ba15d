"""Hugging Face folders: ``save_pretrained`` / ``from_pretrained`` on every registered model, repo ids, refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.bench.reduced_builds import REDUCED
from zoo.hub.folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
from zoo.hub.pretrained import PretrainedWeightsUnavailable

SMALL = {"gan": dict(generator_sizes=[32], discriminator_sizes=[32]), "cgan": dict(generator_sizes=[32], discriminator_sizes=[32]),
         "dcgan": dict(feature_maps=8), "dqn": dict(hidden_sizes=[16], buffer_size=64)}  # fmt: skip


def build(name: str, **kwargs) -> zoo.ZooModule:
    model = zoo.create_model(name, **{**REDUCED.get(name, {}), **SMALL.get(name, {}), **kwargs})
    with torch.no_grad():  # not the initial values: BatchNorm statistics and counters too
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value) * 0.01)
    return model.eval()


def outputs(model: zoo.ZooModule) -> torch.Tensor:
    x = model.example_input_array
    with torch.no_grad():
        return model(*x) if isinstance(x, tuple) else model(x)


@pytest.mark.parametrize("name", zoo.list_models())
def test_round_trip_of_every_registered_model(name, tmp_path):
    model = build(name)
    folder = model.save_pretrained(tmp_path / name, metrics={"test/acc": 0.5})
    assert sorted(p.name for p in folder.iterdir()) == sorted([CARD_NAME, CONFIG_NAME, WEIGHTS_NAME])

    loaded = type(model).from_pretrained(folder)
    assert type(loaded) is type(model) and not loaded.training
    kept = {k: v for k, v in model.state_dict().items() if not any(k == n or (n.endswith(".") and k.startswith(n)) for n in model.training_state)}
    assert kept.keys() == load_file(folder / WEIGHTS_NAME).keys()
    for key, value in kept.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    torch.testing.assert_close(outputs(loaded), outputs(model), rtol=0, atol=0)
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["zoo"]["class"] == type(model).__name__
    assert config["zoo"]["arch"] in (None, name) and (config["zoo"]["arch"] is None) == (sum(zoo.get_model_class(n) is type(model) for n in zoo.list_models()) > 1)
    assert {k: v for k, v in config.items() if k != "zoo"} == {k: v for k, v in json.loads(json.dumps(dict(loaded.hparams))).items() if k in config}
    assert type(zoo.ZooModule.from_pretrained(folder)) is type(model)  # the base finds the recorded class


def test_config_card_and_weights_follow_the_hub_mixin_layout(tmp_path):
    from huggingface_hub import PyTorchModelHubMixin

    model = build("lenet5", mean=[0.5], std=[0.25], class_names=[str(i) for i in range(10)])
    folder = model.save_pretrained(tmp_path / "m", metrics={"test/acc": 0.9712, "test/loss": 0.1})
    config = json.loads((folder / CONFIG_NAME).read_text())
    pre = config["zoo"]["preprocessing"]
    assert pre["input_shape"] == [1, 28, 28] and pre["mean"] == [0.5] and pre["std"] == [0.25] and pre["class_names"][3] == "3"
    card = (folder / CARD_NAME).read_text()
    assert card.startswith("---\nlibrary_name: lightning-zoo\n") and "| test/acc | 0.9712 |" in card and "not averaged" in card
    # What the mixin's from_pretrained does: cls(**config) and its safetensors loader, strict.
    fresh = zoo.LeNet5(**{k: v for k, v in config.items() if k != "zoo"})
    PyTorchModelHubMixin._load_as_safetensor(fresh, str(folder / WEIGHTS_NAME), "cpu", True)
    torch.testing.assert_close(outputs(fresh.eval()), outputs(model), rtol=0, atol=0)


def test_a_mixin_folder_without_the_zoo_section_loads_as_the_callers_class(tmp_path):
    model = build("mlp")
    folder = model.save_pretrained(tmp_path / "m")
    config = json.loads((folder / CONFIG_NAME).read_text())
    del config["zoo"]
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    assert torch.equal(outputs(zoo.MLP.from_pretrained(folder)), outputs(model))
    with pytest.raises(ValueError, match="no format-1 'zoo' section"):
        zoo.ZooModule.from_pretrained(folder)  # no class given, none recorded


def test_overrides_and_weight_averaging_record(tmp_path):
    model = build("resnet20")
    folder = model.save_pretrained(tmp_path / "m", weight_averaging="ema")
    assert json.loads((folder / CONFIG_NAME).read_text())["zoo"]["arch"] is None  # several names build a ResNet
    assert json.loads((folder / CONFIG_NAME).read_text())["zoo"]["weight_averaging"] == "ema"
    assert "exponential moving average" in (folder / CARD_NAME).read_text()
    five = zoo.ResNet.from_pretrained(folder, num_classes=5)
    assert five(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="weight_averaging is one of"):
        model.save_pretrained(tmp_path / "n", weight_averaging="polyak")


def test_saving_again_replaces_only_its_own_files(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    build("lenet5").save_pretrained(folder)
    second = build("lenet5")
    second.save_pretrained(folder)  # its own files: replaced
    assert torch.equal(outputs(zoo.LeNet5.from_pretrained(folder)), outputs(second))
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("foreign", [CONFIG_NAME, CARD_NAME, WEIGHTS_NAME])
def test_a_folder_with_files_it_did_not_write_is_refused_and_kept(foreign, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / foreign).write_text("someone else's")
    with pytest.raises(FileExistsError, match=f"{foreign}.*nothing was written"):
        build("lenet5").save_pretrained(folder)
    assert [p.name for p in folder.iterdir()] == [foreign] and (folder / foreign).read_text() == "someone else's"


def test_an_edited_card_is_not_overwritten(tmp_path):
    folder = build("lenet5").save_pretrained(tmp_path / "m")
    (folder / CARD_NAME).write_text("# my own notes\n")
    before = (folder / WEIGHTS_NAME).read_bytes()
    with pytest.raises(FileExistsError, match="edited since it was written"):
        build("lenet5").save_pretrained(folder)
    assert (folder / CARD_NAME).read_text() == "# my own notes\n" and (folder / WEIGHTS_NAME).read_bytes() == before


def test_user_mistakes_get_clear_errors(tmp_path):
    model = build("lenet5")
    folder = model.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="holds a LeNet5, not a ResNet"):
        zoo.ResNet.from_pretrained(folder)
    with pytest.raises(ValueError, match="is a file; from_pretrained takes a folder"):
        zoo.LeNet5.from_pretrained(folder / WEIGHTS_NAME)
    with pytest.raises(FileNotFoundError, match="neither a folder nor a Hugging Face Hub repo id"):
        zoo.LeNet5.from_pretrained(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors missing"):
        zoo.LeNet5.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="metrics map names to numbers"):
        model.save_pretrained(tmp_path / "n", metrics={"test/acc": "high"})
    with pytest.raises(NotADirectoryError):
        model.save_pretrained(folder / CARD_NAME)


def test_a_class_named_in_config_is_looked_up_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evil_folder_mod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Net: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = build("lenet5").save_pretrained(tmp_path / "m")
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["zoo"]["class"] = "evil_folder_mod.Net"
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not one of the zoo's model classes"):
        zoo.ZooModule.from_pretrained(folder)
    assert "evil_folder_mod" not in sys.modules and not marker.exists()


def write_cached_snapshot(cache, repo_id: str, model: zoo.ZooModule) -> None:
    """The Hugging Face cache's layout for repo_id at one commit: refs/main and snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    model.save_pretrained(root / "snapshots" / commit)


def test_a_cached_repo_id_loads_offline(tmp_path):
    model = build("simple_cnn")
    write_cached_snapshot(tmp_path / "hf", "someone/simple-cnn", model)
    loaded = zoo.SimpleCNN.from_pretrained("someone/simple-cnn", cache_dir=tmp_path / "hf", local_files_only=True)
    assert torch.equal(outputs(loaded), outputs(model))


def test_an_uncached_repo_id_offline_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedWeightsUnavailable, match="'someone/absent' is not in the Hugging Face cache .* cannot be reached"):
        zoo.LeNet5.from_pretrained("someone/absent", cache_dir=tmp_path / "hf")


def test_a_repo_id_without_huggingface_hub_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if it were not installed
    with pytest.raises(ImportError, match="needs huggingface_hub"):
        zoo.LeNet5.from_pretrained("someone/lenet5")


def test_push_to_hub_uploads_the_saved_folder(tmp_path, monkeypatch):
    """No network: huggingface_hub's HfApi is replaced by a recorder of what would be uploaded."""
    import huggingface_hub

    uploads = []

    class RecordingApi:
        def __init__(self, token=None):
            self.token = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            uploads.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            uploads.append(("upload", repo_id, sorted(files), commit_message))
            (tmp_path / "uploaded").mkdir()
            for name, data in files.items():
                (tmp_path / "uploaded" / name).write_bytes(data)
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    model = build("lenet5")
    url = model.push_to_hub("someone/lenet5", metrics={"test/acc": 0.9}, private=True, token="t")
    assert url == "https://huggingface.co/someone/lenet5/commit/0"
    assert uploads == [("create", "someone/lenet5", True, True), ("upload", "someone/lenet5", [CARD_NAME, CONFIG_NAME, WEIGHTS_NAME], "Upload lightning-zoo model")]
    assert torch.equal(outputs(zoo.LeNet5.from_pretrained(tmp_path / "uploaded")), outputs(model))
