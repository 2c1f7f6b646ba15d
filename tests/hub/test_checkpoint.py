"""``zoo.load_checkpoint``, the one loader: weights only, the class found among the zoo's own, eval mode.

Before it, ``python -m zoo.predict``, ``python -m zoo.generate`` and the GAN quality metrics imported
whatever module a checkpoint's ``_class_path`` named, so a checkpoint could run code on load; the tests
that plant such a checkpoint fail on that code (the module's import writes a marker file).
"""

import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image

import zoo
from datamodules import DigitsDataModule
from zoo.hub.checkpoint import known_model_classes
from zoo.bench.reduced_builds import REDUCED

# ImageNet-size networks are left out: the same classes are round-tripped here through their small variants.
LARGE = set(REDUCED)  # ImageNet-size and Wide ResNets: tests/test_models.py round-trips their cheap builds
NAMES = [n for n in zoo.list_models() if n not in LARGE]


def save_like_lightning(model: zoo.ZooModule, path: Path) -> Path:
    """What ``Trainer.save_checkpoint`` writes for the model: weights, hyperparameters, the model's own entries."""
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": L.__version__}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, class_path: str, key: str = "_class_path") -> tuple[Path, Path]:
    """A valid LeNet-5 checkpoint whose recorded class is ``class_path``, and the marker file that an
    importable module ``evil_module`` (on sys.path) writes when it is imported."""
    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('code ran')\nfrom zoo import LeNet5\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evil_module", raising=False)
    checkpoint = {"state_dict": zoo.LeNet5().state_dict(), "hyper_parameters": dict(zoo.LeNet5().hparams)}
    if key == "_class_path":
        checkpoint["hyper_parameters"]["_class_path"] = class_path
    else:
        checkpoint[key] = class_path
    path = tmp_path / "planted.ckpt"
    torch.save(checkpoint, path)
    return path, marker


# --------------------------------------------------------------------------------------------------
# What a checkpoint holds
# --------------------------------------------------------------------------------------------------
def test_preprocessing_recorded_when_fit_starts_is_in_the_saved_checkpoints(tmp_path):
    """on_fit_start writes mean, std and class names into hparams; every checkpoint of the run holds them."""
    L.seed_everything(0)
    dm = DigitsDataModule(image_size=28, batch_size=64)
    model = zoo.create_model("lenet5")
    assert model.hparams.mean is None  # nothing recorded before fit
    callback = ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True)
    trainer = L.Trainer(
        max_steps=3, limit_val_batches=1, logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback]
    )
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    for path in (tmp_path / "ckpts" / "last.ckpt", tmp_path / "end.ckpt"):
        raw = torch.load(path, weights_only=True)
        hparams = raw["hyper_parameters"]
        assert (hparams["mean"], hparams["std"]) == ([0.3053], [0.3759])
        assert hparams["class_names"] == [str(i) for i in range(10)]
        assert raw["zoo_class"] == "LeNet5"
    loaded = zoo.load_checkpoint(tmp_path / "ckpts" / "last.ckpt")
    assert loaded.transforms().mean == [0.3053] and loaded.class_names == dm.class_names


@pytest.mark.parametrize("name", NAMES)
def test_every_model_round_trips_through_load_checkpoint(name, tmp_path):
    model = zoo.create_model(name)
    path = save_like_lightning(model, tmp_path / "m.ckpt")
    loaded = zoo.load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())


def test_the_class_can_be_named_by_registry_name_class_name_or_class(tmp_path):
    model = zoo.create_model("dnn")
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}  # records no class
    path = tmp_path / "m.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="does not record its model class"):
        zoo.load_checkpoint(path)
    for name in ("dnn", "MLP", "zoo.MLP", "zoo.mlp.MLP", zoo.MLP):
        loaded = zoo.load_checkpoint(path, model=name)
        assert isinstance(loaded, zoo.MLP) and loaded.hparams.hidden_sizes == [256, 128, 64]
    with pytest.raises(ValueError, match="not a zoo model"):
        zoo.load_checkpoint(path, model=torch.nn.Linear)


def test_load_checkpoint_refuses_what_is_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        zoo.load_checkpoint(tmp_path / "x.pt")


# --------------------------------------------------------------------------------------------------
# Security: nothing named inside the file is imported, nothing pickled is run
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("class_path", ["os.system", "evil_module.LeNet5", "zoo.evil_module.LeNet5", "subprocess.Popen"])
def test_a_class_path_outside_the_zoo_is_refused_and_never_imported(class_path, tmp_path, monkeypatch):
    path, marker = plant(tmp_path, monkeypatch, class_path)
    with pytest.raises(ValueError, match="not one of the zoo's model classes"):
        zoo.load_checkpoint(path)
    assert not marker.exists() and "evil_module" not in sys.modules


def test_a_recorded_zoo_class_outside_the_zoo_is_refused(tmp_path, monkeypatch):
    path, marker = plant(tmp_path, monkeypatch, "evil_module.LeNet5", key="zoo_class")
    with pytest.raises(ValueError, match="Known classes: .*LeNet5"):
        zoo.load_checkpoint(path)
    assert not marker.exists()


def test_the_known_classes_are_the_zoos_own():
    known = known_model_classes()
    assert known["LeNet5"] is zoo.LeNet5 and known["zoo.lenet.LeNet5"] is zoo.LeNet5 and known["zoo.GAN"] is zoo.GAN
    assert all(cls.__module__.startswith("zoo.") for cls in known.values())


def test_the_tools_refuse_a_planted_class_path(tmp_path, monkeypatch):
    """zoo-predict, zoo-generate and the GAN quality metrics all load through zoo.load_checkpoint."""
    from zoo.evaluation.gan_metrics import GANQualityMetrics
    from zoo.tools import generate, predict

    path, marker = plant(tmp_path, monkeypatch, "evil_module.LeNet5")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    with pytest.raises(SystemExit, match="not one of the zoo's model classes"):
        predict.main(["--checkpoint", str(path), str(image)])
    with pytest.raises(SystemExit, match="not one of the zoo's model classes"):
        generate.main(["--checkpoint", str(path), "--out", str(tmp_path / "grid.png")])
    with pytest.raises(ValueError, match="not one of the zoo's model classes"):
        GANQualityMetrics(str(path)).setup(None, None, "fit")
    assert not marker.exists() and "evil_module" not in sys.modules


class _RunsCodeWhenUnpickled:
    marker: Path

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_pickled_objects_in_a_checkpoint_are_never_unpickled(tmp_path):
    payload = _RunsCodeWhenUnpickled()
    payload.marker = tmp_path / "unpickled.txt"
    model = zoo.create_model("lenet5")
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": {**model.hparams, "extra": payload}, "zoo_class": "LeNet5"}
    torch.save(checkpoint, tmp_path / "m.ckpt")
    with pytest.raises(Exception, match="Weights only load failed"):
        zoo.load_checkpoint(tmp_path / "m.ckpt")
    assert not payload.marker.exists()


def test_an_image_classifier_checkpoint_of_the_old_format_keeps_its_preprocessing(tmp_path):
    """Before the contract, ImageClassifier wrote its preprocessing under the checkpoint's "preprocessing" key."""
    model = zoo.create_model("vit_tiny", num_classes=3, image_size=32, depth=1)
    hparams = {k: v for k, v in model.hparams.items() if k not in ("mean", "std", "class_names", "resize_size")}
    old = {"crop_size": 32, "resize_size": 32, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2], "channels": 3, "class_names": ["a", "b", "c"]}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "preprocessing": old}, tmp_path / "old.ckpt")
    loaded = zoo.load_checkpoint(tmp_path / "old.ckpt", model="vit_tiny")
    t = loaded.transforms()
    assert (t.mean, t.std, t.class_names, t.resize_size) == (old["mean"], old["std"], ["a", "b", "c"], 32)
