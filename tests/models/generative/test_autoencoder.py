"""Autoencoders: the standard tests (shapes, fast_dev_run fit, exact weights-only checkpoint round trip,
documented hyperparameters, input checks), denoising, pixel-space metrics and the logged figures."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import zoo
from tests.conftest import fit_and_reload_image_model
from zoo.models.generative.autoencoder import AutoencoderModule, latent_scatter
from tests.support.trainers import quiet_trainer

NAMES = ["autoencoder", "conv_autoencoder"]


def batch(n=16, g=None):
    g = g or torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("latent_dim", [3, 32])
def test_shapes_and_pixel_range(name, latent_dim):
    model = zoo.create_model(name, latent_dim=latent_dim)
    assert isinstance(model, AutoencoderModule)
    x, _ = batch()
    assert model.example_input_array.shape == (2, 1, 28, 28)
    assert model.encode(x).shape == (16, latent_dim)
    out = model(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_fast_dev_run_fit_and_test(name, tmp_path):
    model = zoo.create_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(*batch()), batch_size=8)
    trainer = quiet_trainer(tmp_path, fast_dev_run=True)
    trainer.fit(model, loader, loader)
    trainer.test(model, loader, verbose=False)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert {"test/loss", "test/mse", "test/psnr"} <= set(trainer.callback_metrics)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_is_exact_and_weights_only(name, tmp_path):
    model = zoo.create_model(name, noise_std=0.1)
    loader = DataLoader(TensorDataset(*batch()), batch_size=8)
    trainer = quiet_trainer(tmp_path, max_steps=2, enable_checkpointing=False)
    trainer.fit(model, loader)
    path = tmp_path / "ae.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hyper_parameters"] == dict(model.hparams)
    loaded = type(model).load_from_checkpoint(path, weights_only=True)
    x, _ = batch(4)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))


@pytest.mark.parametrize("name", NAMES)
def test_input_checks(name):
    model = zoo.create_model(name)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, C=1, H=28, W=28\)"):
        model(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="expects a floating-point tensor"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_denoising_corrupts_input_only_and_metrics_are_in_pixel_space(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("autoencoder", noise_std=0.5)
    mean, std = 0.286, 0.353
    model.record_preprocessing([mean], [std])
    pixels = torch.rand(8, 1, 28, 28)
    noisy = model.corrupt(pixels)
    assert 0.45 < (noisy - pixels).std() < 0.55
    assert torch.equal(zoo.create_model("autoencoder").corrupt(pixels), pixels)  # noise_std=0: no corruption
    # the test loss is the MSE between reconstruction and the clean pixels; PSNR = 10 log10(1 / MSE)
    x = (pixels - mean) / std
    model.noise_std = 0.0
    loader = DataLoader(TensorDataset(x, torch.zeros(8, dtype=torch.long)), batch_size=8)
    trainer = quiet_trainer(tmp_path)
    metrics = trainer.test(model, loader, verbose=False)[0]
    with torch.no_grad():
        mse = torch.mean((model(x) - pixels) ** 2).item()
    assert metrics["test/mse"] == pytest.approx(mse, rel=1e-4)
    assert metrics["test/psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)


def test_checkpoint_records_the_datamodules_normalization_and_class_names(vision_root, tmp_path):
    """Fails on the old code, which kept mean/std in buffers only (not in the hyperparameters) and no class names."""
    from datamodules import FashionMNISTDataModule

    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=16)
    model = zoo.create_model("conv_autoencoder")
    loaded, raw, x = fit_and_reload_image_model(model, dm, quiet_trainer(tmp_path, fast_dev_run=True), tmp_path / "ae.ckpt")
    assert torch.allclose(loaded.to_pixels(x), raw.float() / 255, atol=1e-6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_checkpoint_with_the_old_normalization_buffers_still_loads(tmp_path):
    model = zoo.create_model("autoencoder", hidden_sizes=[16], latent_dim=2)
    trainer = quiet_trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    trainer.fit(model, DataLoader(TensorDataset(*batch()), batch_size=8))
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    for key in ("mean", "std", "class_names"):  # as the old code wrote it: normalization in buffers only
        del checkpoint["hyper_parameters"][key]
    checkpoint["state_dict"].update(pixel_mean=torch.tensor([0.25]), pixel_std=torch.tensor([0.5]))
    torch.save(checkpoint, path)
    loaded = type(model).load_from_checkpoint(path, weights_only=True)
    assert (loaded.hparams.mean, loaded.hparams.std) == ([0.25], [0.5])
    assert torch.allclose(loaded.to_pixels(torch.zeros(1, 1, 28, 28)), torch.full((1, 1, 28, 28), 0.25))


def test_validation_end_writes_reconstruction_grid_and_latent_scatter(tmp_path):
    model = zoo.create_model("autoencoder", latent_dim=3, noise_std=0.2, num_logged_images=4)
    loader = DataLoader(TensorDataset(*batch(32)), batch_size=16)
    # A CSV logger takes no images, so they are saved as PNG files in its run folder.
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, enable_progress_bar=False, enable_model_summary=False,
                        logger=CSVLogger(tmp_path), enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, loader, loader)
    images = tmp_path / "lightning_logs" / "version_0" / "images"
    with Image.open(images / "val_reconstructions_epoch000.png") as grid:
        assert grid.size == (4 * 30 + 2, 3 * 30 + 2)  # 4 columns x (input, noisy, output) rows, 2 px padding
    with Image.open(images / "val_latent_space_epoch000.png") as scatter:
        assert scatter.size[0] > 200


@pytest.mark.parametrize("dims", [1, 2, 3, 8])
def test_latent_scatter_any_dimension(dims):
    fig = latent_scatter(torch.randn(50, dims), torch.randint(0, 10, (50,)), [f"c{i}" for i in range(10)])
    assert (fig.axes[0].name == "3d") == (dims == 3)


def test_conv_autoencoder_refuses_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        zoo.create_model("conv_autoencoder", image_size=30)


@pytest.mark.learning
@pytest.mark.real_data
def test_autoencoder_recipe_learns_real_fashion_mnist(real_fashion_mnist, tmp_path):
    """configs/autoencoder_fashionmnist.yaml for one epoch: test PSNR well above the 10.6 dB of the per-pixel mean image."""
    from pathlib import Path

    from zoo.training.cli import main

    config = Path(__file__).resolve().parents[3] / "configs" / "autoencoder_fashionmnist.yaml"
    cli = main(["fit", "--config", str(config), "--trainer.max_epochs=1", f"--data.data_dir={real_fashion_mnist}",
                f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    metrics = cli.trainer.callback_metrics
    assert metrics["test/psnr"] >= 16.0  # measured 17.5 dB after one epoch (8 s)
    assert metrics["test/mse"] == pytest.approx(10 ** (-float(metrics["test/psnr"]) / 10), rel=1e-3)
    images = list((tmp_path / "lightning_logs").rglob("val_latent_space_epoch000.png"))
    assert len(images) == 1
