"""SimCLR: the NT-Xent loss against its definition, the batch augmentations, the standard model tests for
"simclr", the test-time linear probe and k-NN, the encoder as a fine-tuning backbone, and learning on real data."""

from __future__ import annotations

import logging
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.evaluation.feature_eval import extract_features, knn_accuracy, linear_probe_accuracy
from zoo.models.selfsupervised.simclr import augment_views, nt_xent_loss

SMALL = {"backbone_args": {"layers": [1, 1, 1], "widths": [8, 16, 16]}, "projection_hidden": 32, "projection_dim": 16}


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    return L.Trainer(**{**defaults, **kwargs})


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 10


# -- the loss ---------------------------------------------------------------------------------------
def nt_xent_by_definition(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """SimCLR's eq. 1 with loops: l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t), averaged over 2B anchors."""
    z = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denominator)
    return total / (2 * n)


def nt_xent_subtracting_the_self_pair(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """The bug: the self-similarity subtracted from the logits (0 on the diagonal) instead of masked out."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / t
    logits = logits - torch.diag(torch.diag(logits))  # exp(0) = 1 still in every denominator
    n = len(z1)
    return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_its_definition(t):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert float(nt_xent_loss(z1, z2, t)) == pytest.approx(nt_xent_by_definition(z1, z2, t), rel=1e-5)


def test_nt_xent_masks_the_self_pair_rather_than_subtracting_it():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    ours, buggy = float(nt_xent_loss(z1, z2, 0.5)), float(nt_xent_subtracting_the_self_pair(z1, z2, 0.5))
    assert ours == pytest.approx(nt_xent_by_definition(z1, z2, 0.5), rel=1e-5)
    assert abs(ours - buggy) > 0.05  # the extra exp(0) in each of the 7-term denominators is caught
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    kept_in = F.cross_entropy(z @ z.T / 0.5, torch.cat([torch.arange(4, 8), torch.arange(4)]))  # no mask: exp(1/T) in
    assert abs(ours - float(kept_in)) > 0.05


def test_nt_xent_is_lowest_when_views_agree():
    g = torch.Generator().manual_seed(3)
    z1 = torch.randn(16, 8, generator=g)
    assert nt_xent_loss(z1, z1 + 0.01 * torch.randn(16, 8, generator=g), 0.1) < nt_xent_loss(z1, torch.randn(16, 8, generator=g), 0.1) - 1.0


def test_nt_xent_checks_its_inputs():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(torch.randn(4, 3), torch.randn(4, 3), 0.0)


# -- augmentations ----------------------------------------------------------------------------------
def test_views_are_random_in_range_and_off_means_identity():
    torch.manual_seed(0)
    pixels = torch.rand(6, 1, 28, 28)
    a, b = augment_views(pixels), augment_views(pixels)
    assert a.shape == pixels.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, b)  # every call draws new crops, flips and jitters
    identity = augment_views(pixels, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False, brightness=0.0, contrast=0.0)
    torch.testing.assert_close(identity, pixels, atol=1e-5, rtol=0)  # a full-size crop resamples the image exactly


def test_flip_mirrors_and_brightness_scales():
    pixels = torch.rand(64, 1, 8, 8) * 0.5 + 0.1
    full = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0)}
    torch.manual_seed(0)
    flipped = augment_views(pixels, **full, flip=True, brightness=0.0, contrast=0.0)
    mirrored = torch.tensor([torch.allclose(f, p.flip(-1), atol=1e-5) for f, p in zip(flipped, pixels)])
    same = torch.tensor([torch.allclose(f, p, atol=1e-5) for f, p in zip(flipped, pixels)])
    assert (mirrored | same).all() and 16 < int(mirrored.sum()) < 48
    bright = augment_views(pixels, **full, flip=False, brightness=0.5, contrast=0.0)
    ratio = (bright / pixels).flatten(1)  # one factor per image, drawn from [0.5, 1.5]
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4, rtol=0)
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4 and ratio[:, 0].std() > 0.1


# -- the standard model tests, for "simclr" ---------------------------------------------------------
def test_forward_projection_backward_and_frozen_backbone_head():
    model = zoo.create_model("simclr", **SMALL)
    x, _ = batch(8)
    assert model(x).shape == (8, 16) and model.project(x).shape == (8, 16)
    loss = nt_xent_loss(*model.project(torch.cat(model.views(x))).chunk(2))
    loss.backward()
    for name, p in model.named_parameters():
        if name.startswith("backbone.head."):
            assert not p.requires_grad and p.grad is None
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_fast_dev_run_fit_and_checkpoint_round_trip(tmp_path):
    model = zoo.create_model("simclr", **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(*batch(16)), batch_size=8)
    trainer = quiet_trainer(max_steps=2, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if not k.startswith("backbone.head."))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k.startswith("backbone.head."))
    path = tmp_path / "simclr.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    assert raw["hyper_parameters"] == dict(model.hparams)
    loaded = zoo.load_checkpoint(path)
    x, _ = batch(4, seed=5)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))


def test_input_checks_and_bad_arguments():
    model = zoo.create_model("simclr", **SMALL)
    with pytest.raises(ValueError, match=r"\(B, C=1, H=28, W=28\)"):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="backbone must be a registered image classifier"):
        zoo.create_model("simclr", backbone="lstm")
    with pytest.raises(ValueError, match="temperature"):
        zoo.create_model("simclr", temperature=0)


def test_a_channels_last_backbone_reads_channels_last_batches_as_its_own_forward_does():
    """ResNet-9 with NHWC kernels (the ResNet-9 recipe's backbone): SimCLR hands it NHWC batches, same features."""
    torch.manual_seed(0)
    model = zoo.create_model("simclr", backbone="resnet9_fast", backbone_args={"widths": [4, 4, 8, 8], "stem_pool": False, "channels_last": True},
                             in_channels=3)  # (grey batches of one channel are NCHW and NHWC at once)
    seen = []
    model.backbone.prep[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(4, 3, 28, 28)
    with torch.no_grad():
        features = model.eval()(x)  # (4, 8)
        torch.testing.assert_close(features, model.backbone.forward_features(x))
    assert features.shape == (4, 8) == (4, model.num_features) and seen == [True, False]


def test_the_resnet9_recipe_keeps_last_ckpt_and_an_interrupted_run_goes_on_from_it(vision_root, tmp_path, monkeypatch):
    """configs/simclr_resnet9_fashionmnist.yaml trains for hours: its last.ckpt is current at every validation, and
    ``--ckpt_path last`` continues from it (epoch, step and optimizer restored)."""
    import sys
    from pathlib import Path

    from zoo.training.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))
    recipe = str(Path(__file__).resolve().parents[3] / "configs" / "simclr_resnet9_fashionmnist.yaml")
    quick = ["--trainer.limit_val_batches=1", "--test_after_fit=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    first = main(["fit", "--config", recipe, "--trainer.max_epochs=1", *quick])  # "interrupted" after its first epoch
    backbone = first.model.backbone  # its own arguments recorded, not the CLI's (SimCLR's)
    assert backbone.channels_last and backbone.hparams.stem_pool is False and backbone.hparams.widths == [16, 32, 64, 128]
    assert first.trainer.checkpoint_callback.monitor == "val/loss" and first.trainer.global_step == 1  # 144 fixture images, batch 256
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 1
    resumed = main(["fit", "--config", recipe, "--trainer.max_epochs=2", "--ckpt_path", "last", *quick])
    assert resumed.trainer.current_epoch == 2 and resumed.trainer.global_step == 2  # went on from step 1, not from scratch


# -- evaluation -------------------------------------------------------------------------------------
def test_knn_and_linear_probe_on_separable_and_random_features():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 3
    train_y, test_y = torch.arange(400) % 4, torch.arange(100) % 4
    train_f = centres[train_y] + torch.randn(400, 8, generator=g)
    test_f = centres[test_y] + torch.randn(100, 8, generator=g)
    assert knn_accuracy(train_f, train_y, test_f, test_y, k=20) > 0.9
    assert linear_probe_accuracy(train_f, train_y, test_f, test_y) > 0.9
    noise = torch.randn(100, 8, generator=g)
    assert knn_accuracy(train_f, train_y, noise, test_y, k=20) < 0.5


def test_simclr_and_the_probes_read_the_backbones_stages_through_forward_intermediates():
    torch.manual_seed(0)
    model = zoo.create_model("simclr", **SMALL).eval()
    x, _ = batch(8)
    maps = model.forward_intermediates(x, intermediates_only=True)
    backbone_maps = model.backbone.forward_intermediates(x, intermediates_only=True)
    assert model.feature_info == model.backbone.feature_info and [m.shape[1] for m in maps] == [8, 8, 16, 16]
    assert all(torch.equal(a, b) for a, b in zip(maps, backbone_maps))
    images = (torch.rand(20, 1, 28, 28) * 255).to(torch.uint8)
    preprocess = lambda u: u.float() / 255  # noqa: E731
    pooled = extract_features(model, images, preprocess=preprocess, batch_size=8, stage=1)  # (20, 8)
    (layer1,) = model.forward_intermediates(preprocess(images), [1], intermediates_only=True)
    torch.testing.assert_close(pooled, layer1.mean(dim=(2, 3)))
    torch.testing.assert_close(extract_features(model, images, preprocess=preprocess), model(preprocess(images)))
    with pytest.raises(ValueError, match="stage index 4 is out of range"):
        extract_features(model, images, preprocess=preprocess, stage=4)
    with pytest.raises(ValueError, match="stage=0: a Linear has no feature stages"):
        extract_features(torch.nn.Linear(784, 4), images.flatten(1), preprocess=preprocess, stage=0)


def test_knn_is_the_weighted_vote_of_the_nearest_by_cosine():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[0.2, 1.0], [10.0, 1.0]])  # cosine, so scale does not matter
    assert knn_accuracy(bank, labels, query, torch.tensor([1, 0]), k=1) == 1.0
    # k = 3 and a high temperature (near-equal weights): the two class-0 neighbours outvote the closest one
    assert knn_accuracy(bank, labels, query[:1], torch.tensor([1]), k=3, temperature=10.0) == 0.0


def test_test_logs_linear_probe_and_knn_on_the_datamodules_features(vision_root, tmp_path):
    from datamodules import FashionMNISTDataModule

    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32)
    model = zoo.create_model("simclr", **SMALL)
    trainer = quiet_trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert model.backbone.hparams.mean == pytest.approx(dm.normalization["mean"])  # the backbone carries it
    metrics = trainer.test(model, datamodule=dm)[0]
    train_f = extract_features(model, dm.train_set.tensors[0], preprocess=dm.preprocess)
    test_f = extract_features(model, dm.test_set.tensors[0], preprocess=dm.preprocess)
    expected = knn_accuracy(train_f, dm.train_set.tensors[1], test_f, dm.test_set.tensors[1], k=200, num_classes=10)
    assert metrics["test/knn_acc"] == pytest.approx(expected)
    assert 0.0 <= metrics["test/linear_probe_acc"] <= 1.0 and "test/loss" in metrics


# -- the encoder as a backbone ----------------------------------------------------------------------
def test_a_simclr_checkpoint_is_a_backbone_for_create_model_and_fine_tuning(tmp_path, caplog):
    torch.manual_seed(0)
    model = zoo.create_model("simclr", mean=[0.286], std=[0.353])
    trainer = quiet_trainer(max_steps=1, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(*batch(16)), batch_size=8))
    path = tmp_path / "simclr.ckpt"
    trainer.save_checkpoint(path)

    with caplog.at_level(logging.INFO, logger="zoo"):
        resnet = zoo.create_model("resnet20", pretrained=str(path), in_channels=1, image_size=28, num_classes=5)
    assert "taking the ResNet backbone" in caplog.text and "trained no classifier head: a new 5-class head" in caplog.text
    assert isinstance(resnet, zoo.ResNet) and resnet.hparams.mean == [0.286]
    x, _ = batch(4)
    model.eval(), resnet.eval()
    with torch.no_grad():
        assert torch.equal(resnet.forward_features(x), model(x))  # the encoder's features, exactly
    assert resnet.head.weight.shape == (5, 64)
    # 10 classes, like the encoder's unused head: still a fresh head, never the untrained one copied
    same_width = zoo.create_model("resnet20", pretrained=str(path), in_channels=1, image_size=28, num_classes=10)
    assert not torch.equal(same_width.head.weight, model.backbone.head.weight)
    # 3 channels: the first convolution is adapted, as for any source
    rgb = zoo.create_model("resnet20", pretrained=str(path), in_channels=3, image_size=28, num_classes=10)
    torch.testing.assert_close(rgb.conv1.weight.sum(1, keepdim=True), model.backbone.conv1.weight)
    with pytest.raises(ValueError, match="do not fit"):
        zoo.create_model("resnet32", pretrained=str(path), in_channels=1, image_size=28)


# -- learning on real data --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.real_data
def test_simclr_features_beat_random_features_on_real_fashion_mnist(real_fashion_mnist, tmp_path):
    """A small ResNet trained by SimCLR on 8,000 images for 2 epochs: k-NN (k=20) on 2,000 test images well
    above the same network with its random initial weights."""
    from datamodules import FashionMNISTDataModule

    L.seed_everything(0)
    dm = FashionMNISTDataModule(data_dir=str(real_fashion_mnist), batch_size=256)
    dm.setup("fit")
    train_x, train_y = dm.train_set.tensors[0][:8000], dm.train_set.tensors[1][:8000]
    test_x, test_y = dm.test_set.tensors[0][:2000], dm.test_set.tensors[1][:2000]
    model = zoo.create_model("simclr", **SMALL, mean=list(dm.mean), std=list(dm.std), lr=2e-3)

    def score() -> float:
        train_f = extract_features(model, train_x, preprocess=dm.preprocess)
        test_f = extract_features(model, test_x, preprocess=dm.preprocess)
        return knn_accuracy(train_f, train_y, test_f, test_y, k=20, num_classes=10)

    random_acc = score()
    loader = DataLoader(TensorDataset(dm.preprocess(train_x)), batch_size=256, shuffle=True, drop_last=True)
    quiet_trainer(max_epochs=2, default_root_dir=tmp_path).fit(model, train_dataloaders=loader)
    simclr_acc = score()
    assert simclr_acc >= random_acc + 0.03, f"SimCLR k-NN {simclr_acc:.3f}, random weights {random_acc:.3f}"
