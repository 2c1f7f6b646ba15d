"""zoo-export: a trained checkpoint becomes a shipped entry (files, manifest row, measured metric),
replaces an entry only when better, writes nothing partial, respects the size limits; the docs'
model card stays equal to the manifest; the per-family metrics of zoo.evaluation."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

import zoo
from datamodules import DigitsDataModule, TimeSeriesDataModule
from zoo.evaluation import baselines
from zoo.evaluation.shipped_metrics import evaluate, reference_matches, reference_output, resolve_datamodule_class, summarize_reference
from zoo.hub.pretrained import PretrainedWeightsCorrupt, load_pretrained
from zoo.tools import export as export_tool
from zoo.tools import model_card
from zoo.tools.export import ExportRefused, export_checkpoint

REPO = Path(__file__).resolve().parents[2]
DATA = {"class_path": "datamodules.DigitsDataModule", "init_args": {"image_size": 32, "batch_size": 64}}
CONFIG = """\
seed_everything: 0
model:
  class_path: zoo.LeNet5
data:
  class_path: datamodules.DigitsDataModule
  init_args:
    image_size: 32
    batch_size: 64
"""


def _quiet(**kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A LeNet-5 trained 20 steps on the digits (32 px): (checkpoint, recipe)."""
    root = tmp_path_factory.mktemp("tiny-export")
    L.seed_everything(0)
    model = zoo.create_model("lenet5", image_size=32, lr=3e-3)
    trainer = _quiet(max_steps=20, limit_val_batches=0)
    trainer.fit(model, datamodule=DigitsDataModule(image_size=32, batch_size=64))
    ckpt = root / "tiny.ckpt"
    trainer.save_checkpoint(ckpt)
    config = root / "lenet5_digits_tiny.yaml"
    config.write_text(CONFIG)
    return ckpt, config


@pytest.fixture
def stub_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the tests about files rather than the metric: evaluate() answers at once, accuracy 0.5."""
    import zoo.evaluation.shipped_metrics

    def measured(model, data, **kwargs):
        return {"name": "test/acc", "value": 0.5, "higher_is_better": True, "tolerance": 0.003, "metrics": {}, "num_test_samples": 359}

    monkeypatch.setattr(zoo.evaluation, "evaluate", measured)


BASELINES = baselines.LINEAR_BASELINES


@pytest.fixture(autouse=True)
def no_shipping_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny LeNet-5 (20 steps) is far below the digits' linear baseline: the tests about files and the
    manifest lift the shipping bar; the shipping bar's own tests put ``BASELINES`` back."""
    monkeypatch.setattr(baselines, "LINEAR_BASELINES", {})


def _export(tiny, out: Path, *extra: str) -> dict:
    ckpt, config = tiny
    argv = [str(ckpt), "--name", "lenet5.digits", "--config", str(config), "--out", str(out), "--wall-time", "12.5", *extra]
    assert export_tool.main(argv) == 0
    return next(e for e in json.loads((out / "manifest.json").read_text())["weights"] if e["name"] == "lenet5.digits")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_writes_weights_config_and_manifest_row(tiny, tmp_path, monkeypatch):
    out = tmp_path / "weights"
    entry = _export(tiny, out, "--target", "0.99", "--target-reference", "LeNet-5 99%", "--notes", "a test entry")
    assert sorted(p.name for p in out.iterdir()) == ["lenet5.digits.json", "lenet5.digits.safetensors", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["weights"] == [entry]
    weights, config = out / entry["file"], out / entry["config_file"]
    assert entry["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert entry["size_bytes"] == weights.stat().st_size
    assert (entry["name"], entry["arch"], entry["zoo_class"]) == ("lenet5.digits", "lenet5", "LeNet5")
    assert entry["params"] == sum(p.numel() for p in zoo.create_model("lenet5", image_size=32).parameters())
    assert entry["data"] == DATA
    assert entry["dataset"] == {"name": "scikit-learn digits (UCI optical recognition of handwritten digits)", "license": "CC BY 4.0",
                                "split": "test, 359 samples held out with seed 42"}
    assert entry["metric"]["name"] == "test/acc" and entry["metric"]["higher_is_better"] and entry["metric"]["tolerance"] == 0.003
    assert entry["target"] == {"value": 0.99, "reached": entry["metric"]["value"] >= 0.99, "reference": "LeNet-5 99%"}
    checkpoint = torch.load(tiny[0], weights_only=True)
    r = entry["reproduce"]
    assert r["epochs"] == checkpoint["epoch"] + 1 and r["wall_time_s"] == 12.5 and r["config"] == str(tiny[1])
    assert r["command"] == f"python train.py fit --config {tiny[1]}"
    assert r["hardware"].startswith("CPU: ") and r["torch"] == torch.__version__.split("+")[0] and r["lightning"] == L.__version__
    assert entry["notes"] == "a test entry"

    # the metric is what a direct Trainer.test of the checkpoint measures
    direct = _quiet().test(zoo.load_checkpoint(tiny[0]), datamodule=DigitsDataModule(image_size=32, batch_size=64), verbose=False)
    assert entry["metric"]["value"] == pytest.approx(direct[0]["test/acc"], abs=1e-6)

    # the entry loads as the checkpoint's model, and its reference output is the stored one
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(out))
    loaded, original = load_pretrained("lenet5.digits"), zoo.load_checkpoint(tiny[0])
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(loaded(x), original(x), rtol=0, atol=0)
    assert reference_matches(reference_output(loaded), entry["reference_output"])


def test_export_replaces_an_entry_only_when_the_metric_improves(tiny, tmp_path, capsys):
    out = tmp_path / "weights"
    first = _export(tiny, out)
    before = _snapshot(out)
    with pytest.raises(SystemExit) as exited:  # the same checkpoint again: a tie is not an improvement
        _export(tiny, out)
    assert isinstance(exited.value.code, str) and "not better than the shipped" in exited.value.code  # exit status 1
    assert _snapshot(out) == before

    entry = _export(tiny, out, "--force", "--notes", "forced")  # --force replaces it anyway
    assert json.loads((out / "manifest.json").read_text())["weights"] == [entry] and entry["notes"] == "forced"

    manifest = json.loads((out / "manifest.json").read_text())  # a shipped entry that measured worse is replaced
    manifest["weights"][0]["metric"]["value"] = first["metric"]["value"] - 0.05
    (out / "manifest.json").write_text(json.dumps(manifest))
    replaced = _export(tiny, out, "--notes", "better")
    assert json.loads((out / "manifest.json").read_text())["weights"] == [replaced]


def test_export_refuses_a_classifier_below_the_linear_baseline_even_with_force(tiny, tmp_path, stub_metric, monkeypatch):
    monkeypatch.setattr(baselines, "LINEAR_BASELINES", BASELINES)
    out = tmp_path / "weights"
    bar = baselines.LINEAR_BASELINES["datamodules.DigitsDataModule"].value + baselines.SHIPPING_MARGIN
    assert 0.5 < bar  # stub_metric measures 50%
    for extra in ((), ("--force",)):
        with pytest.raises(SystemExit) as exited:
            _export(tiny, out, *extra)
        assert "below the shipping bar" in exited.value.code and f"{bar:.2%}" in exited.value.code
        assert "LogisticRegression" in exited.value.code  # the command that measured the baseline
        assert not out.exists() or not any(out.iterdir())


def test_the_shipping_bar_applies_to_classifiers_of_measured_datasets_only(monkeypatch):
    monkeypatch.setattr(baselines, "LINEAR_BASELINES", BASELINES)
    digits = {"class_path": "datamodules.DigitsDataModule", "init_args": {}}
    bar = baselines.LINEAR_BASELINES["datamodules.DigitsDataModule"].value + baselines.SHIPPING_MARGIN
    assert baselines.check_shipping_bar({"name": "test/acc", "value": bar}, digits) is None
    assert "below the shipping bar" in baselines.check_shipping_bar({"name": "test/acc", "value": bar - 1e-4}, digits)
    assert baselines.check_shipping_bar({"name": "test/psnr", "value": 1.0}, digits) is None  # not a classifier
    assert baselines.check_shipping_bar({"name": "test/acc", "value": 0.1}, {"class_path": "datamodules.ImageFolderDataModule"}) is None


def test_export_records_what_chose_the_checkpoint(tmp_path):
    """A checkpoint written by a monitored ModelCheckpoint: the row names the monitor and its best score."""
    L.seed_everything(0)
    model = zoo.create_model("lenet5", image_size=32, lr=3e-3)
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="val/acc", mode="max")
    trainer = L.Trainer(accelerator="cpu", logger=False, callbacks=[ckpt_cb], enable_progress_bar=False,
                        enable_model_summary=False, max_epochs=1, limit_train_batches=4, limit_val_batches=2)  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(image_size=32, batch_size=64))
    config = tmp_path / "recipe.yaml"
    config.write_text(CONFIG)
    entry = export_tool.export_checkpoint(ckpt_cb.best_model_path, name="lenet5.digits", config=config, out=tmp_path / "w")
    assert entry["reproduce"]["selected_by"] == {"monitor": "val/acc", "value": round(float(ckpt_cb.best_model_score), 6)}


def test_export_keeps_other_entries_sorted(tiny, tmp_path, stub_metric):
    out = tmp_path / "weights"
    out.mkdir()
    other = {"name": "zzz.other", "metric": {"name": "test/acc", "value": 0.5}}
    earlier = {"name": "aaa.other", "metric": {"name": "test/acc", "value": 0.5}}
    (out / "manifest.json").write_text(json.dumps({"format": 1, "description": "kept", "weights": [other, earlier]}))
    _export(tiny, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["weights"]] == ["aaa.other", "lenet5.digits", "zzz.other"]
    assert manifest["description"] == "kept"


@pytest.mark.parametrize("failing_move", [1, 2, 3])
def test_a_failure_while_installing_leaves_the_previous_files(tiny, tmp_path, monkeypatch, failing_move, stub_metric):
    out = tmp_path / "weights"
    _export(tiny, out)
    before = _snapshot(out)
    real_replace, calls = export_tool.os.replace, []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == failing_move:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(export_tool.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1], out=out, force=True, notes="never written")
    assert _snapshot(out) == before  # old files restored, nothing staged left behind


def test_a_failure_while_saving_leaves_no_file(tiny, tmp_path, monkeypatch, stub_metric):
    import safetensors.torch

    def half_write(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(safetensors.torch, "save_file", half_write)
    out = tmp_path / "weights"
    with pytest.raises(RuntimeError, match="mid-write"):
        export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1], out=out)
    assert _snapshot(out) == {}


def test_export_refuses_files_over_the_size_limits(tiny, tmp_path, monkeypatch, stub_metric):
    out = tmp_path / "weights"
    monkeypatch.setattr(export_tool, "MAX_WEIGHTS_BYTES", 100_000)  # LeNet-5's file is ~250 kB
    with pytest.raises(ExportRefused, match="at most 100,000"):
        export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1], out=out)
    assert _snapshot(out) == {}

    monkeypatch.setattr(export_tool, "MAX_WEIGHTS_BYTES", 20_000_000)
    monkeypatch.setattr(export_tool, "MAX_TOTAL_BYTES", 1_000_000)
    (out / "other.safetensors").write_bytes(b"\0" * 900_000)  # the directory is nearly full already
    with pytest.raises(ExportRefused, match="limit is 1,000,000"):
        export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1], out=out)
    assert sorted(_snapshot(out)) == ["other.safetensors"]


def test_export_refuses_a_name_that_does_not_fit_the_checkpoint(tiny, tmp_path):
    with pytest.raises(ExportRefused, match="holds a LeNet5"):
        export_checkpoint(tiny[0], name="resnet20.digits", config=tiny[1], out=tmp_path)
    with pytest.raises(ExportRefused, match="not a registered model"):
        export_checkpoint(tiny[0], name="lenet6.digits", config=tiny[1], out=tmp_path)
    with pytest.raises(ExportRefused, match="arch>.<dataset"):
        export_checkpoint(tiny[0], name="LeNet5-digits", config=tiny[1], out=tmp_path)


def test_a_corrupted_export_is_refused_before_loading(tiny, tmp_path, monkeypatch, stub_metric):
    out = tmp_path / "weights"
    entry = _export(tiny, out)
    data = bytearray((out / entry["file"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(out))
    with pytest.raises(PretrainedWeightsCorrupt, match="lenet5.digits.safetensors"):
        load_pretrained("lenet5.digits")


# -- zoo.evaluation ---------------------------------------------------------------------------------------
def test_datamodule_classes_resolve_only_inside_the_package():
    assert resolve_datamodule_class("datamodules.DigitsDataModule") is DigitsDataModule
    assert resolve_datamodule_class("DigitsDataModule") is DigitsDataModule
    assert resolve_datamodule_class("datamodules.tabular.DigitsDataModule") is DigitsDataModule
    for bad in ("os.system", "torch.nn.Linear", "datamodules.base.torch", "datamodules.vision.DigitsDataModule", "tests.Evil"):
        with pytest.raises(ValueError, match="not one of the datamodules"):
            resolve_datamodule_class(bad)


def test_reference_output_is_fixed_and_tells_a_changed_weight():
    model = zoo.create_model("lenet5", image_size=32).train()
    out = reference_output(model)
    assert model.training  # the mode is restored
    assert torch.equal(out, reference_output(model)) and out.shape == (4 * 10,)
    summary = summarize_reference(out)
    assert reference_matches(out, summary)
    with torch.no_grad():
        model.head.bias[0] += 1e-2
    assert not reference_matches(reference_output(model), summary)


@pytest.mark.parametrize("name", ["cgan", "dcgan", "seq2seq", "transformer", "dqn", "lstm_forecaster", "conv_autoencoder", "gru"])
def test_reference_output_feeds_every_family(name):
    model = zoo.create_model(name, **({"vocab_size": 30} if name == "gru" else {}))
    out = reference_output(model)
    assert out.ndim == 1 and out.numel() > 0 and torch.isfinite(out).all()
    assert torch.equal(out, reference_output(model))


def test_forecaster_metric_and_the_last_value_baseline():
    data = {"class_path": "datamodules.TimeSeriesDataModule", "init_args": {"window": 30, "horizon": 1}}
    model = zoo.create_model("lstm_forecaster", window=30)
    with torch.no_grad():  # predicts no change: exactly the last-value forecast
        model.out.weight.zero_()
        model.out.bias.zero_()
    result = evaluate(model, data)
    assert result["name"] == "test/mae" and not result["higher_is_better"]
    dm = TimeSeriesDataModule(window=30, horizon=1)
    dm.setup("test")
    x, y = dm.test_set.tensors
    naive = (x[:, -1, 0, None] - y).abs().mean().item()
    assert result["baseline"]["value"] == pytest.approx(naive, rel=1e-6)
    assert result["value"] == pytest.approx(naive, rel=1e-5)
    assert result["baseline"]["value_units"] == pytest.approx(naive * dm.target_std, rel=1e-6)


def test_dqn_metric_is_the_mean_return_of_the_held_out_test_seeds():
    model = zoo.create_model("dqn", eval_episodes=4, test_seed=123)
    result = evaluate(model, {"class_path": "datamodules.EnvironmentDataModule", "init_args": {}})
    expected = model.evaluate([123, 124, 125, 126]).mean().item()
    assert result["name"] == "test/return" and result["value"] == pytest.approx(expected) and result["num_test_samples"] == 4


def test_a_simclr_encoder_is_measured_by_the_linear_probe_of_its_frozen_features(vision_root):
    """What zoo-export records for a SimCLR entry (a backbone for pretrained=), and CI measures again the same."""
    torch.manual_seed(0)
    model = zoo.create_model("simclr", backbone="resnet9_fast", backbone_args={"widths": [4, 4, 8, 8], "stem_pool": False}, mean=[0.286], std=[0.353])
    data = {"class_path": "datamodules.FashionMNISTDataModule", "init_args": {"data_dir": str(vision_root.root)}}
    result = evaluate(model, data)
    assert result["name"] == "test/linear_probe_acc" and result["higher_is_better"] and result["tolerance"] == 0.003
    assert result["value"] == result["metrics"]["test/linear_probe_acc"] and "test/knn_acc" in result["metrics"] and result["num_test_samples"] == 80
    assert evaluate(model, data)["value"] == result["value"]


def test_gan_metrics_are_seeded_and_judged_by_the_classifier(vision_root):
    data = {"class_path": "datamodules.FashionMNISTDataModule", "init_args": {"data_dir": str(vision_root.root), "val_fraction": 0.0}}
    torch.manual_seed(0)
    gan, judge = zoo.create_model("cgan"), zoo.create_model("lenet5", image_size=28)
    state = torch.get_rng_state()
    first = evaluate(gan, data, classifier=judge, num_samples=200)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is untouched
    again = evaluate(gan, data, classifier=judge, num_samples=200)
    assert first["name"] == "test/class_acc" and first["value"] == again["value"]
    assert first["metrics"]["test/fid"] == again["metrics"]["test/fid"]
    # the judge's verdict, recomputed by hand from the same seeded noise
    from zoo.evaluation.gan_metrics import classifier_input

    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, gan.latent_dim, generator=g)
    labels = torch.arange(200) % 10
    with torch.no_grad():
        predicted = judge(classifier_input(judge, gan, gan(z, labels))).argmax(1)
    assert first["value"] == pytest.approx((predicted == labels).float().mean().item())
    per_class = [(predicted[labels == k] == k).float().mean().item() for k in range(10)]  # 20 samples asked of each
    assert first["per_class"] == pytest.approx(per_class) and first["fid"] == first["metrics"]["test/fid"]
    unconditional = evaluate(zoo.create_model("dcgan"), data, classifier=judge, num_samples=200)
    assert unconditional["name"] == "test/fid" and not unconditional["higher_is_better"] and "per_class" not in unconditional
    assert unconditional["tolerance"] == pytest.approx(max(0.01 * unconditional["value"], 1e-3), rel=1e-3)  # 1%, at least 0.001


def test_vae_metric_is_the_importance_sampled_log_likelihood_with_the_elbo(vision_root):
    data = {"class_path": "datamodules.FashionMNISTDataModule", "init_args": {"data_dir": str(vision_root.root), "val_fraction": 0.0}}
    torch.manual_seed(0)
    vae = zoo.create_model("vae", hidden_sizes=[32], latent_dim=4, iw_samples=8)
    first, again = evaluate(vae, data), evaluate(vae, data)
    assert first["name"] == "test/log_likelihood_iw" and first["higher_is_better"] and first["tolerance"] == 0.1
    assert first["value"] == again["value"] and first["elbo"] == first["metrics"]["test/elbo"]
    assert first["elbo"] <= first["value"] < 0  # log-likelihoods in nats: the ELBO bounds the k-sample estimate from below
    ae = evaluate(zoo.create_model("autoencoder"), data)  # the plain autoencoders keep PSNR
    assert ae["name"] == "test/psnr" and "elbo" not in ae


# -- the shipped-weights table of docs/guides/pretrained.md -----------------------------------------------
def test_pretrained_page_table_equals_the_manifest():
    from zoo.hub.pretrained import read_manifest

    page = (REPO / "docs" / "guides" / "pretrained.md").read_text()
    assert model_card.replace_block(page, model_card.render(read_manifest())) == page


def test_model_card_check_fails_on_a_stale_page_and_the_tool_rewrites_it(tiny, tmp_path, stub_metric):
    out = tmp_path / "weights"
    entry = _export(tiny, out, "--target", "0.999", "--target-reference", "LeNet-5 99.9%")
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.rmtree(root / "docs" / "results")  # measured on the shipped weights, which this manifest does not list
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "README.md", root / "README.md")
    page = root / "docs" / "guides" / "pretrained.md"
    page.write_text(f"# x\n\n{model_card.START}\nold\n{model_card.END}\n\n## after\n")
    args = ["--root", str(root), "--manifest", str(out / "manifest.json")]
    assert model_card.main([*args, "--check"]) == 1
    assert page.read_text().count("old") == 1  # --check writes nothing
    assert model_card.main(args) == 0 and model_card.main([*args, "--check"]) == 0
    text = page.read_text()
    assert text.startswith("# x\n\n") and text.endswith("\n\n## after\n")
    row = next(line for line in text.splitlines() if line.startswith("| `lenet5.digits`"))
    acc = f"{100 * entry['metric']['value']:.2f}%"
    assert f"test/acc {acc}; target 99.90% not reached; LeNet-5 99.9%" in row
    assert "`lenet5` (`zoo.LeNet5`)" in row and f"{entry['params']:,}" in row and entry["reproduce"]["hardware"] in row
    assert f"`python train.py fit --config {tiny[1]}`" in row
    cards = (root / "docs" / "model-cards.md").read_text()  # the model cards follow the same manifest
    assert "## `lenet5.digits`" in cards and "## `resnet20.fashionmnist`" not in cards


def test_hardware_names_the_cuda_device_a_checkpoint_was_saved_from(tiny, monkeypatch):
    from zoo.tools.export import detect_hardware

    assert detect_hardware(tiny[0]) == f"CPU: {export_tool._cpu_name()}, {export_tool.os.cpu_count()} cores"
    real_load = torch.load

    def load_as_if_saved_on_cuda(path, map_location, weights_only):  # torch.load names each storage's device
        return real_load(path, map_location=lambda storage, location: map_location(storage, "cuda:0"), weights_only=weights_only)

    monkeypatch.setattr(export_tool.torch, "load", load_as_if_saved_on_cuda)
    monkeypatch.setattr(export_tool.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(export_tool.torch.cuda, "get_device_name", lambda *args: "NVIDIA H200")
    assert detect_hardware(tiny[0]) == "GPU: NVIDIA H200"


# -- where an export goes -----------------------------------------------------------------------------------
def test_by_default_the_export_joins_the_shipped_layout(tiny, tmp_path, monkeypatch, stub_metric):
    """The weights file into the repository's checkpoints/ (a release asset), the config and the manifest row into
    the package's zoo/hub/shipped/ (in the wheel); here both folders are stand-ins in tmp_path."""
    checkpoints, shipped = tmp_path / "clone" / "checkpoints", tmp_path / "clone" / "zoo" / "hub" / "shipped"
    monkeypatch.setattr(export_tool, "repository_checkpoints", lambda: checkpoints)
    monkeypatch.setattr(export_tool, "SHIPPED_DIR", shipped)
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    entry = export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1])
    assert sorted(p.name for p in checkpoints.iterdir()) == ["lenet5.digits.safetensors"]  # no staging folder left
    assert sorted(p.name for p in shipped.iterdir()) == ["lenet5.digits.json", "manifest.json"]
    assert json.loads((shipped / "manifest.json").read_text())["weights"] == [entry]

    monkeypatch.setattr(export_tool, "repository_checkpoints", lambda: None)  # an installed package: no layout to add to
    with pytest.raises(ExportRefused, match=r"an installed package, not a clone.*pass --out DIR"):
        export_checkpoint(tiny[0], name="lenet5.digits", config=tiny[1], force=True)
