"""Datamodules that need no download: sklearn digits, 2-D blobs, linear-regression data, and the shared argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from datamodules import BlobsDataModule, DigitsDataModule, LinearRegressionDataModule, ZooDataModule

N_DIGITS = 1797


def _all(dm: ZooDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    """Every sample of train, val and test, concatenated."""
    sets = [dm.train_set, dm.val_set, dm.test_set]
    return torch.cat([s.tensors[0] for s in sets]), torch.cat([s.tensors[1] for s in sets])


# --------------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------------
def test_digits_sizes_and_shapes():
    dm = DigitsDataModule()
    assert dm.input_shape == (1, 8, 8)
    assert dm.num_classes == 10 and dm.class_names == [str(i) for i in range(10)]
    dm.setup()
    assert len(dm.test_set) == 359  # floor(1797 * 0.2)
    assert len(dm.val_set) == int((N_DIGITS - 359) * 0.1)
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == N_DIGITS
    x, y = _all(dm)
    assert x.dtype == torch.uint8 and x.shape == (N_DIGITS, 1, 8, 8)
    assert y.dtype == torch.int64 and sorted(y.unique().tolist()) == list(range(10))


def test_digits_are_the_sklearn_images():
    dm = DigitsDataModule()
    dm.setup()
    x, y = _all(dm)
    digits = load_digits()
    expected = np.round(digits.images / 16 * 255).astype(np.uint8)
    got = sorted((img.tobytes(), int(label)) for img, label in zip(x[:, 0].numpy(), y.numpy(), strict=True))
    want = sorted((img.tobytes(), int(label)) for img, label in zip(expected, digits.target, strict=True))
    assert got == want


@pytest.mark.parametrize("size", [16, 32])
def test_digits_resized(size):
    dm = DigitsDataModule(image_size=size)
    assert dm.input_shape == (1, size, size)
    dm.setup()
    x, _ = _all(dm)
    assert x.dtype == torch.uint8 and x.shape == (N_DIGITS, 1, size, size)
    assert x.max() > 200  # still spans the pixel range after resizing


@pytest.mark.parametrize("size", [0, 4, 7])
def test_digits_too_small_raises(size):
    with pytest.raises(ValueError, match="image_size"):
        DigitsDataModule(image_size=size)


def test_digits_normalization_matches_the_data():
    images = load_digits().images / 16.0  # 8x8 in [0, 1]
    assert DigitsDataModule.mean[0] == pytest.approx(images.mean(), abs=1e-3)
    assert DigitsDataModule.std[0] == pytest.approx(images.std(), abs=1e-3)
    assert DigitsDataModule().normalization == {"mean": [0.3053], "std": [0.3759]}


# --------------------------------------------------------------------------------------------------
# Blobs
# --------------------------------------------------------------------------------------------------
CENTERS = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def _nearest_center(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, CENTERS).argmin(dim=1)


@pytest.mark.parametrize("label_map", [[0, 1, 1, 1], [0, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]])
def test_blobs_labels_follow_label_map(label_map):
    dm = BlobsDataModule(n_samples=400, cluster_std=0.1, label_map=label_map)
    assert dm.input_shape == (2,) and dm.num_classes == 2
    dm.setup()
    x, y = _all(dm)
    assert x.shape == (400, 2) and x.dtype == torch.float32
    assert y.shape == (400,) and y.dtype == torch.int64
    blob = _nearest_center(x)
    assert torch.bincount(blob, minlength=4).min() > 50  # all four blobs drawn
    assert torch.equal(y, torch.tensor(label_map)[blob])


def test_blobs_xor_labels():
    dm = BlobsDataModule(n_samples=400, cluster_std=0.1, label_map=[0, 1, 1, 0])
    dm.setup()
    x, y = _all(dm)
    # XOR of the signs: 0 where both coordinates share a sign.
    assert torch.equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())


def test_blobs_default_label_map():
    dm = BlobsDataModule(n_samples=400, cluster_std=0.1)
    dm.setup()
    x, y = _all(dm)
    assert torch.equal(y, ((x[:, 0] < 0) | (x[:, 1] < 0)).long())  # only the (1, 1) blob is class 0


@pytest.mark.parametrize("label_map", [[0, 1, 1], [0, 1, 1, 1, 0], [0, 1, 2, 1], [-1, 0, 1, 1], []])
def test_blobs_invalid_label_map_raises(label_map):
    with pytest.raises(ValueError, match="label_map"):
        BlobsDataModule(label_map=label_map)


def test_blobs_seed_sets_the_points():
    a, b, c = (BlobsDataModule(n_samples=200, seed=s) for s in (1, 1, 2))
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert not torch.equal(a.train_set.tensors[0], c.train_set.tensors[0])


# --------------------------------------------------------------------------------------------------
# Linear regression
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("coefficients, bias", [([3.0, 1.0, -2.0], 0.0), ([0.5, -1.5], 2.0), ([4.0], -1.0)])
def test_linear_regression_noiseless_targets(coefficients, bias):
    dm = LinearRegressionDataModule(coefficients=coefficients, bias=bias, noise=0.0, n_samples=300)
    assert dm.input_shape == (len(coefficients),)
    assert dm.num_classes is None
    dm.setup()
    x, y = _all(dm)
    assert x.shape == (300, len(coefficients)) and y.shape == (300, 1)
    assert x.dtype == y.dtype == torch.float32
    expected = x @ torch.tensor(coefficients) + bias  # (N,)
    assert torch.allclose(y, expected.unsqueeze(1), atol=1e-5)


def test_linear_regression_least_squares_recovers_coefficients():
    coefficients, bias = [3.0, 1.0, -2.0], 0.5
    dm = LinearRegressionDataModule(coefficients=coefficients, bias=bias, noise=0.1)
    dm.setup()
    x, y = dm.train_set.tensors
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)  # (N, F+1): last column fits the bias
    solution = torch.linalg.lstsq(design, y).solution.squeeze(1)
    assert torch.allclose(solution[:-1], torch.tensor(coefficients), atol=0.02)
    assert solution[-1].item() == pytest.approx(bias, abs=0.02)
    residual = y.squeeze(1) - design @ solution
    assert residual.std().item() == pytest.approx(0.1, rel=0.15)  # the noise is what is left


def test_linear_regression_default_is_the_notes_example():
    dm = LinearRegressionDataModule()
    assert dm.coefficients == [3.0, 1.0, -2.0] and dm.input_shape == (3,)


def test_linear_regression_empty_coefficients_raise():
    with pytest.raises(ValueError, match="coefficients"):
        LinearRegressionDataModule(coefficients=[])


# --------------------------------------------------------------------------------------------------
# Shared argument checks and loaders
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": -1},
        {"val_fraction": 1.0},
        {"val_fraction": -0.1},
        {"test_fraction": 1.0},
        {"test_fraction": 1.5},
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ZooDataModule(**kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LinearRegressionDataModule(**kwargs)


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader"])
def test_dataloader_before_setup_raises(loader):
    dm = BlobsDataModule()
    with pytest.raises(RuntimeError, match="setup"):
        getattr(dm, loader)()


def test_loaders_serve_tuples_of_whole_batches():
    dm = LinearRegressionDataModule(n_samples=100, batch_size=16, test_fraction=0.2, val_fraction=0.0)
    dm.setup()
    assert len(dm.train_set) == 80 and dm.val_dataloader() == []
    batches = list(dm.train_dataloader())
    assert [len(b[0]) for b in batches] == [16] * 5
    x, y = batches[0]
    assert x.shape == (16, 3) and y.shape == (16, 1)
    test = list(dm.test_dataloader())
    assert torch.equal(torch.cat([b[0] for b in test]), dm.test_set.tensors[0])


def test_setup_loads_once():
    dm = BlobsDataModule(n_samples=200)
    dm.setup("fit")
    train = dm.train_set
    dm.setup("test")
    assert dm.train_set is train
