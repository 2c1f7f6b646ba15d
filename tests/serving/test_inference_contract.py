"""The inference contract: a model carries what it needs, so ``zoo.predict`` on raw pixels answers what
the training pipeline answers.

Each image-reading family is fit through a datamodule, saved, loaded with ``zoo.load_checkpoint`` (no
datamodule), and ``zoo.predict`` on raw uint8 test images must pick exactly the class that the trained
model picks on the datamodule's preprocessed batches. Before the contract, LeNet5, SimpleCNN, the MLP
and the recurrent classifiers carried no normalization and ``zoo.predict`` fed them raw [0, 1] pixels.
"""

from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

import zoo
from datamodules import FashionMNISTDataModule

# Models that read images, as the recipes build them (small where the recipe's model is slow).
FAMILIES = {
    "lenet5": {},
    "simple_cnn": {},
    "dnn": {},
    "lstm": {"hidden_size": 64, "num_layers": 1},
    "gru": {"hidden_size": 32, "num_layers": 1},
    "rnn": {"hidden_size": 32, "num_layers": 1},
    "resnet20": {"in_channels": 1, "image_size": 28},
    "vit_tiny": {"in_channels": 1, "image_size": 28, "patch_size": 7, "depth": 1},
}


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, **kwargs,
    )  # fmt: skip


def fit_save_load(name: str, dm: FashionMNISTDataModule, path: Path, steps: int, **overrides) -> tuple[zoo.ZooModule, zoo.ZooModule]:
    """Fit ``name`` on ``dm`` (Python API), save a checkpoint, load it back: (trained model, loaded model)."""
    model = zoo.create_model(name, num_classes=10, **overrides)
    trainer = quiet_trainer(max_steps=steps, max_epochs=1)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(path)
    return model.eval(), zoo.load_checkpoint(path)


@torch.no_grad()
def pipeline_labels(model: zoo.ZooModule, dm: FashionMNISTDataModule, images: torch.Tensor) -> list[str]:
    """The training pipeline's answer: the datamodule's preprocess, in its own batches, then argmax."""
    batches = [model(dm.preprocess(images[i : i + dm.batch_size])).argmax(-1) for i in range(0, len(images), dm.batch_size)]
    return [dm.class_names[int(i)] for i in torch.cat(batches)]


def predict_labels(model: zoo.ZooModule, images: torch.Tensor) -> list[str]:
    return [top[0][0] for top in zoo.predict(model, images, topk=1)]


# --------------------------------------------------------------------------------------------------
# Every family, on the fixture files (random pixels): the contract holds, and the checkpoint carries it
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAMILIES))
def test_predict_on_raw_pixels_matches_the_pipeline(name, vision_root, tmp_path):
    L.seed_everything(0)
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32, val_fraction=0.0)
    model, loaded = fit_save_load(name, dm, tmp_path / "m.ckpt", steps=2, **FAMILIES[name])

    hparams = torch.load(tmp_path / "m.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["mean"] == list(dm.mean) and hparams["std"] == list(dm.std)
    assert hparams["class_names"] == dm.class_names
    assert loaded.class_names == dm.class_names and not loaded.training

    images = dm.test_set.tensors[0]  # (80, 1, 28, 28) uint8, raw
    sample = loaded.transforms()(images[0])
    assert sample.shape == loaded.input_shape  # (1, 28, 28), (28, 28) for rows, (784,) for the MLP
    assert torch.equal(sample.reshape(1, 1, 28, 28), dm.preprocess(images[:1]))  # bit for bit the datamodule's
    assert predict_labels(loaded, images) == pipeline_labels(model, dm, images)


def test_the_mlp_records_the_image_shape_and_refuses_transforms_on_tabular_data(vision_root, tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32, val_fraction=0.0)
    _, loaded = fit_save_load("mlp", dm, tmp_path / "m.ckpt", steps=1)
    assert loaded.hparams.image_shape == [1, 28, 28] and loaded.transforms().output_shape == [784]
    tabular = zoo.create_model("mlp", in_features=2, num_classes=2)
    with pytest.raises(ValueError, match="reads 2 features, not images"):
        tabular.transforms()
    with pytest.raises(ValueError, match="image_shape must be"):
        zoo.create_model("mlp", in_features=10, image_shape=[1, 28, 28])


def test_a_token_model_has_no_image_transforms():
    model = zoo.create_model("gru", vocab_size=50, num_classes=2)
    with pytest.raises(ValueError, match="reads token ids, not images"):
        model.transforms()


def test_image_classifier_keeps_its_normalization_through_channel_adaptation():
    model = zoo.create_model("resnet20", in_channels=3, mean=[0.2, 0.4, 0.6], std=[0.1, 0.2, 0.3], class_names=list("abcdefghij"))
    model.adapt_input_channels(1)
    assert model.hparams.mean == pytest.approx([0.4]) and model.hparams.std == pytest.approx([0.2])
    assert model.transforms().channels == 1
    model.reset_classifier(5)
    assert model.class_names is None  # the old labels no longer apply
    with pytest.raises(ValueError, match="class_names has 3 names for num_classes=10"):
        zoo.create_model("lenet5", class_names=["a", "b", "c"])


# --------------------------------------------------------------------------------------------------
# Done when: brief training on the real Fashion-MNIST, then exact agreement on 500 test images
# --------------------------------------------------------------------------------------------------
REAL = {  # name -> (training steps of 128 images, overrides); measured accuracy on the 500 images ~0.73-0.78
    "lenet5": (40, {"lr": 5e-3}),
    "simple_cnn": (40, {"lr": 5e-3, "dropout": 0.1}),
    "dnn": (40, {"lr": 3e-3}),
    "lstm": (60, {"hidden_size": 64, "num_layers": 1, "lr": 1e-2}),
}


@pytest.fixture(scope="module")
def real_dm(real_fashion_mnist: Path) -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(data_dir=str(real_fashion_mnist), batch_size=128, val_fraction=0.0)
    dm.setup()
    return dm


@pytest.mark.real_data
@pytest.mark.parametrize("name", list(REAL))
def test_briefly_trained_model_predicts_raw_test_images_like_the_pipeline(name, real_dm, tmp_path):
    L.seed_everything(0)
    steps, overrides = REAL[name]
    model, loaded = fit_save_load(name, real_dm, tmp_path / f"{name}.ckpt", steps=steps, **overrides)
    images, labels = (t[:500] for t in real_dm.test_set.tensors)  # (500, 1, 28, 28) uint8, (500,)

    predicted = predict_labels(loaded, images)  # raw pixels, the checkpoint alone
    assert predicted == pipeline_labels(model, real_dm, images)  # all 500 agree
    accuracy = sum(p == real_dm.class_names[int(y)] for p, y in zip(predicted, labels)) / len(labels)
    print(f"{name}: {steps} steps, accuracy {accuracy:.3f} on 500 test images")
    assert accuracy > 0.6, accuracy  # chance is 0.1


# --------------------------------------------------------------------------------------------------
# The same through train.py's CLI, and the command-line tools
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", ["dnn_fashionmnist", "lstm_fashionmnist_rows", "simple_cnn_fashionmnist"])
def test_cli_checkpoints_carry_the_contract(recipe, vision_root, tmp_path, monkeypatch):
    from zoo.training.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    config = Path(__file__).resolve().parents[2] / "configs" / f"{recipe}.yaml"
    cli = main(["fit", "--config", str(config), "--trainer.max_steps=2", "--trainer.limit_val_batches=1", "--test_after_fit=false"])
    dm = cli.datamodule
    loaded = zoo.load_checkpoint(next(tmp_path.rglob("last.ckpt")))
    assert (loaded.hparams.mean, loaded.hparams.std, loaded.class_names) == (list(dm.mean), list(dm.std), dm.class_names)
    images = dm.test_set.tensors[0]
    assert predict_labels(loaded, images) == pipeline_labels(cli.model.eval(), dm, images)


def test_the_tools_are_console_scripts_and_modules_that_leave_the_functions_alone(vision_root, tmp_path):
    import subprocess
    import sys
    from importlib.metadata import entry_points

    import zoo.tools.generate
    import zoo.tools.predict
    import zoo.tools.translate  # noqa: F401

    assert all(callable(f) and not isinstance(f, type(zoo)) for f in (zoo.predict, zoo.generate, zoo.translate))
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("zoo-")}
    assert scripts == {
        "zoo-train": "zoo.training.cli:main",
        "zoo-predict": "zoo.tools.predict:main",
        "zoo-generate": "zoo.tools.generate:main",
        "zoo-translate": "zoo.tools.translate:main",
        "zoo-export": "zoo.tools.export:main",
    }

    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32, val_fraction=0.0)
    _, loaded = fit_save_load("lenet5", dm, tmp_path / "m.ckpt", steps=1)
    files = []
    for i, image in enumerate(dm.test_set.tensors[0][:3]):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image[0].numpy(), mode="L").save(files[-1])
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.tools.predict", "--checkpoint", str(tmp_path / "m.ckpt"), "--topk", "2", *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == zoo.tools.predict.format_table(files, zoo.predict(loaded, files, topk=2))
