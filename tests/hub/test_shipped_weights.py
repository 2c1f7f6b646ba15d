"""Every entry of the package's manifest (zoo/hub/shipped/manifest.json, beside the entries' configs; the weights
files in checkpoints/): its files match their SHA-256 and size, it loads with no
pickle, its output on a fixed input is the stored one, a copy with one byte changed is refused before
anything is parsed, and (``-m slow``, as CI runs it) its test metric is measured again within the
manifest's tolerance.

Each per-entry test also runs on a fresh export (``fresh-export``: an untrained LeNet-5 exported with
``zoo.tools.export`` into a temporary weights directory), so the checks are exercised even before any
entry ships. Tolerances of the re-measurement (``zoo.evaluation``): 0.003 for accuracies, exact match
and the cGAN's class accuracy; 0.05 dB for PSNR; 5.0 for the DQN's mean return; 0.001 for MAE (scaled
units); 1% for FID. Every measurement is seeded, so these cover only other CPUs' float rounding.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import zoo
from tests.conftest import require_real_data
from datamodules import DataNotFoundError
from zoo.evaluation import baselines
from zoo.evaluation.shipped_metrics import evaluate, reference_matches, reference_output
from zoo.hub.manifest import SHIPPED_DIR
from zoo.hub.pretrained import PretrainedWeightsCorrupt, load_pretrained, read_manifest, sha256_file
from zoo.tools.export import MAX_TOTAL_BYTES, MAX_WEIGHTS_BYTES, export_checkpoint

REPO = Path(__file__).resolve().parents[2]
FILES_DIR = REPO / "checkpoints"  # the weights files (release assets, not in the wheel); configs: SHIPPED_DIR
SHIPPED = {e["name"]: e for e in read_manifest(SHIPPED_DIR / "manifest.json")["weights"]}
FRESH = "fresh-export"

# The manifest row's keys (checkpoints/README.md); "target" and "notes" are optional.
ROW_KEYS = {"name", "arch", "zoo_class", "file", "sha256", "size_bytes", "config_file", "config_sha256", "params",
            "dataset", "data", "metric", "reference_output", "reproduce"}  # fmt: skip
NESTED_KEYS = {
    "dataset": {"name", "license", "split"},
    "data": {"class_path", "init_args"},
    "metric": {"name", "value", "higher_is_better", "tolerance"},
    "reference_output": {"sum", "first", "atol"},
    "reproduce": {"config", "command", "epochs", "wall_time_s", "hardware", "torch", "lightning", "date"},
}


@pytest.fixture(scope="module")
def fresh_export(tmp_path_factory) -> Path:
    """A weights directory holding one entry, ``lenet5.digits``, exported from an untrained LeNet-5 checkpoint."""
    root = tmp_path_factory.mktemp("fresh-export")
    torch.manual_seed(0)
    model = zoo.create_model("lenet5", image_size=32, mean=[0.3053], std=[0.3759], class_names=[str(i) for i in range(10)])
    ckpt = root / "untrained.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "zoo_class": "LeNet5", "epoch": 0}, ckpt)
    config = root / "lenet5_digits.yaml"
    config.write_text("data:\n  class_path: datamodules.DigitsDataModule\n  init_args:\n    image_size: 32\n")
    with pytest.MonkeyPatch.context() as mp:  # untrained: below the shipping bar, which has its own tests
        mp.setattr(baselines, "LINEAR_BASELINES", {})
        export_checkpoint(ckpt, name="lenet5.digits", config=config, out=root / "weights", wall_time_s=0.0)
    return root / "weights"


@pytest.fixture(params=[*SHIPPED, FRESH])
def shipped(request, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, dict]:
    """(folder of the weights file, folder of the manifest and config, manifest row) of each shipped entry, and
    of the fresh export (one folder for both)."""
    if request.param == FRESH:
        directory = request.getfixturevalue("fresh_export")
        monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(directory))
        return directory, directory, read_manifest(directory / "manifest.json")["weights"][0]
    return FILES_DIR, SHIPPED_DIR, SHIPPED[request.param]


@pytest.mark.parametrize("which", ["shipped", FRESH])
def test_the_manifest_is_complete_and_lists_every_file(which, request):
    files_dir, meta_dir = (FILES_DIR, SHIPPED_DIR) if which == "shipped" else (request.getfixturevalue("fresh_export"),) * 2
    manifest = read_manifest(meta_dir / "manifest.json")
    names = [e["name"] for e in manifest["weights"]]
    assert names == sorted(set(names)), "entries are unique and sorted by name"
    listed = {"manifest.json"}
    for e in manifest["weights"]:
        assert ROW_KEYS <= set(e), f"{e['name']} lacks {ROW_KEYS - set(e)}"
        for key, keys in NESTED_KEYS.items():
            assert keys <= set(e[key]), f"{e['name']}: {key} lacks {keys - set(e[key])}"
        arch, dataset = e["name"].split(".")
        assert e["arch"] == arch and arch in zoo.list_models() and dataset.replace("_", "").isalnum()
        assert (e["file"], e["config_file"]) == (f"{e['name']}.safetensors", f"{e['name']}.json")
        assert e["metric"]["tolerance"] > 0 and isinstance(e["metric"]["higher_is_better"], bool)
        assert e["reproduce"]["epochs"] >= 1 and e["reproduce"]["hardware"]
        if which == "shipped":
            assert (REPO / e["reproduce"]["config"]).is_file(), f"{e['name']}: its config {e['reproduce']['config']} is not in the repository"
        listed |= {e["file"], e["config_file"]}
    on_disk = {p.name for d in (files_dir, meta_dir) for p in d.iterdir() if p.suffix in (".safetensors", ".json")}
    assert on_disk <= listed, f"files no entry lists: {sorted(on_disk - listed)}"
    if which == "shipped":  # the package holds the manifest and configs; the weights files are the release assets
        assert {p.name for p in meta_dir.iterdir()} == listed - {e["file"] for e in manifest["weights"]}
        assert {p.name for p in files_dir.iterdir()} == {e["file"] for e in manifest["weights"]} | {"README.md"}
    total = sum(p.stat().st_size for d in {files_dir, meta_dir} for p in d.rglob("*") if p.is_file())
    assert total <= MAX_TOTAL_BYTES


def test_files_match_their_sha256_and_size(shipped):
    files_dir, meta_dir, entry = shipped
    weights, config = files_dir / entry["file"], meta_dir / entry["config_file"]
    assert sha256_file(weights) == entry["sha256"] and sha256_file(config) == entry["config_sha256"]
    assert weights.stat().st_size == entry["size_bytes"] <= MAX_WEIGHTS_BYTES
    recorded = json.loads(config.read_text())
    assert (recorded["name"], recorded["arch"], recorded["zoo_class"]) == (entry["name"], entry["arch"], entry["zoo_class"])


def _no_pickle(*args, **kwargs):
    raise AssertionError("a shipped entry must load without unpickling anything")


def test_loads_without_pickle_and_gives_the_stored_reference_output(shipped, monkeypatch):
    _, _, entry = shipped
    for target, attr in [(torch, "load"), (torch.serialization, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(target, attr, _no_pickle)
    model = load_pretrained(entry["name"])
    assert type(model).__name__ == entry["zoo_class"] and not model.training
    assert sum(p.numel() for p in model.parameters()) == entry["params"]
    out = reference_output(model)
    assert reference_matches(out, entry["reference_output"]), (out[:8].tolist(), entry["reference_output"])


@pytest.mark.parametrize("which", ["file", "config_file"])
def test_a_copy_with_one_byte_changed_is_refused_before_loading(shipped, which, tmp_path, monkeypatch):
    files_dir, meta_dir, entry = shipped
    shutil.copyfile(files_dir / entry["file"], tmp_path / entry["file"])
    shutil.copyfile(meta_dir / entry["config_file"], tmp_path / entry["config_file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "description": "", "weights": [entry]}))
    damaged = tmp_path / entry[which]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    import safetensors.torch

    for attr in ("load_model", "load_file", "load"):
        monkeypatch.setattr(safetensors.torch, attr, _no_pickle)  # reaching the tensors would be too late
    monkeypatch.setattr(zoo.hub.pretrained, "resolve_model_class", _no_pickle)  # as would building the model
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(PretrainedWeightsCorrupt, match=entry[which].replace(".", r"\.")):
        load_pretrained(entry["name"])


@pytest.mark.parametrize("name", list(SHIPPED))
def test_every_shipped_classifier_clears_the_shipping_bar(name):
    """No shipped classifier is below its dataset's linear baseline plus 2 points (zoo.evaluation.baselines)."""
    entry = SHIPPED[name]
    assert baselines.check_shipping_bar(entry["metric"], entry["data"]) is None, f"{name}: withdraw it or train it further"


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("name", list(SHIPPED))
def test_the_test_metric_is_measured_again_within_tolerance(name):
    entry = SHIPPED[name]
    metric = entry["metric"]
    judge = metric.get("judge")
    if judge is not None:  # a GAN: judged by the classifier it was exported with, or the number means something else
        assert judge["name"] in SHIPPED and SHIPPED[judge["name"]]["sha256"] == judge["sha256"], (
            f"{name} was judged by another version of {judge['name']}: export {name} again with the shipped one"
        )
    model = load_pretrained(name)
    try:
        measured = evaluate(model, entry["data"], classifier=judge["name"] if judge else None)
    except DataNotFoundError as e:
        require_real_data(False, str(e).splitlines()[0])
    assert measured["name"] == metric["name"]
    assert abs(measured["value"] - metric["value"]) <= metric["tolerance"], (
        f"{name}: {metric['name']} measured {measured['value']:.6g}, the manifest says {metric['value']} +- {metric['tolerance']}"
    )
    if "baseline" in metric:
        assert abs(measured["baseline"]["value"] - metric["baseline"]["value"]) <= metric["tolerance"]
