"""ImageFolderDataModule on real PNG / JPEG files, and prediction with a model's own preprocessing."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from datamodules import DataNotFoundError, FashionMNISTDataModule, ImageFolderDataModule
from zoo.tools.predict import main

CLASSES = ["cat", "dog", "fox"]
COLOURS = {"cat": (220, 30, 30), "dog": (30, 220, 30), "fox": (30, 30, 220)}


def write_image_folder(root: Path, splits=("train", "val", "test"), per_class: int = 4) -> Path:
    """Solid-colour images with noise, one colour per class, as PNG and JPEG of varied sizes."""
    rng = np.random.default_rng(0)
    for split in splits:
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                h, w = (40, 60) if i % 2 else (50, 36)
                pixels = np.clip(np.array(COLOURS[name]) + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
                ext = "png" if i % 2 else "jpg"
                Image.fromarray(pixels).save(folder / f"{i}.{ext}")
            (folder / "notes.txt").write_text("not an image")
    return root


def test_image_folder_reads_classes_splits_and_sizes(tmp_path):
    dm = ImageFolderDataModule(data_dir=str(write_image_folder(tmp_path)), image_size=32, batch_size=5)
    assert dm.class_names == CLASSES and dm.num_classes == 3 and dm.input_shape == (3, 32, 32)
    dm.setup()
    x, y = dm.train_set.tensors
    assert x.shape == (12, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [4, 4, 4]
    assert len(dm.val_set) == 12 and len(dm.test_set) == 12
    # the colour of each class survived decoding: red, green, blue channel is the brightest
    assert (x.float().mean((2, 3)).argmax(1) == y).all()
    batch = dm.preprocess(x[:4])
    assert batch.dtype == torch.float32 and batch.shape == (4, 3, 32, 32)
    assert torch.allclose(dm.denormalize(batch) * 255, x[:4].float(), atol=1e-3)


def test_image_folder_without_val_holds_out_a_fraction_and_reads_grey(tmp_path):
    root = write_image_folder(tmp_path, splits=("train",), per_class=5)
    dm = ImageFolderDataModule(data_dir=str(root), image_size=28, grayscale=True, mean=[0.5], std=[0.25], val_fraction=0.2)
    assert dm.input_shape == (1, 28, 28) and dm.normalization == {"mean": [0.5], "std": [0.25]}
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 3, 3)
    assert dm.train_set.tensors[0].shape[1:] == (1, 28, 28)


def test_image_folder_grayscale_defaults_to_one_channel_normalization(tmp_path):
    root = write_image_folder(tmp_path, splits=("train",), per_class=2)
    grey = ImageFolderDataModule(data_dir=str(root), image_size=16, grayscale=True)  # raised: 3 means for 1 channel
    assert grey.normalization == {"mean": [0.449], "std": [0.226]} and grey.input_shape == (1, 16, 16)
    grey.setup()
    assert grey.preprocess(grey.train_set.tensors[0][:2]).shape == (2, 1, 16, 16)
    rgb = ImageFolderDataModule(data_dir=str(root), image_size=16)
    assert rgb.normalization == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    with pytest.raises(ValueError, match="mean and std need 1 or 1 values"):
        ImageFolderDataModule(data_dir=str(root), grayscale=True, mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])


def test_image_folder_missing_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="train/<class>"):
        ImageFolderDataModule(data_dir=str(tmp_path / "nowhere"))


def test_fit_on_an_image_folder_records_preprocessing_in_the_checkpoint(tmp_path):
    """A model fit on a datamodule keeps its normalization and class names; the loaded checkpoint predicts alone."""
    dm = ImageFolderDataModule(data_dir=str(write_image_folder(tmp_path / "images")), image_size=32, batch_size=6)
    model = zoo.create_model("vit_tiny", num_classes=dm.num_classes, depth=2, optimizer="adamw", lr=0.003)
    trainer = L.Trainer(max_epochs=10, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = zoo.load_checkpoint(ckpt)
    t = loaded.transforms()
    assert (t.mean, t.std, t.class_names) == (list(dm.mean), list(dm.std), CLASSES)
    assert (t.resize_size, t.crop_size) == (32, 32)

    files = sorted((tmp_path / "images" / "test").rglob("*.png"))
    results = zoo.predict(loaded, files, topk=2)
    assert [top[0][0] for top in results] == [f.parent.name for f in files]  # colours are easy
    assert all(len(top) == 2 and top[0][1] >= top[1][1] for top in results)
    # the same images as PIL images and as uint8 tensors give the same answers
    pil = [Image.open(f) for f in files]
    tensors = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1) for im in pil])
    assert zoo.predict(loaded, pil, topk=2) == results
    assert [top[0][0] for top in zoo.predict(loaded, tensors, topk=2)] == [top[0][0] for top in results]


def test_predict_command_prints_a_table(tmp_path, capsys):
    model = zoo.create_model("resnet20", num_classes=3, in_channels=1, image_size=28)
    ckpt = tmp_path / "m.ckpt"
    # a checkpoint without "_class_path" (saved from Python, not by train.py): --model names the class
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": L.__version__}, ckpt)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    main(["--checkpoint", str(ckpt), "--model", "resnet20", "--topk", "3", str(image)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(image) and len(out) == 4
    assert out[1].lstrip().startswith("1.") and out[1].rstrip().endswith(("0", "1", "2"))  # labels are indices
    with pytest.raises(SystemExit, match="does not record its model class"):
        main(["--checkpoint", str(ckpt), str(image)])
    with pytest.raises(SystemExit, match="no such file"):
        main(["--checkpoint", str(ckpt), str(tmp_path / "missing.png")])


def test_fashion_mnist_preprocessing_matches_the_datamodule(vision_root):
    """PNG -> model input is exactly the datamodule's uint8 -> normalized batch."""
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root))
    dm.setup()
    x = dm.test_set.tensors[0][:3]  # (3, 1, 28, 28) uint8
    t = zoo.ImagePreprocessing(crop_size=28, mean=dm.mean, std=dm.std, channels=1)
    ours = torch.stack([t(Image.fromarray(img[0].numpy())) for img in x])
    assert torch.allclose(ours, dm.preprocess(x), atol=1e-6)


def test_train_py_predict_on_a_config_and_checkpoint(tmp_path, vision_root):
    """``train.py fit`` then ``train.py predict --config ... --ckpt_path ...``: class probabilities for the test split."""
    from zoo.training.cli import main as cli_main

    config = str(Path(__file__).resolve().parents[2] / "configs" / "resnet20_fashionmnist.yaml")
    common = ["--config", config, f"--data.init_args.data_dir={vision_root.root}", f"--trainer.default_root_dir={tmp_path}"]
    cli_main(["fit", *common, "--trainer.max_steps=2", "--trainer.limit_val_batches=0", "--test_after_fit=false"])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    cli = cli_main(["predict", *common, "--ckpt_path", str(ckpt), "--trainer.limit_predict_batches=1"])
    probs = cli.trainer.predict_loop.predictions[0]
    n = min(128, len(vision_root.fashion["t10k-labels-idx1-ubyte"]))  # the first batch of the fixture's test split
    assert probs.shape == (n, 10) and torch.allclose(probs.sum(-1), torch.ones(n))
    # the checkpoint knows its data: Fashion-MNIST's normalization and class names
    assert cli.model.class_names[0] == "T-shirt/top" and cli.model.transforms().mean == [0.2860]
