"""GANs: the standard tests (shapes, fast_dev_run fit, exact weights-only checkpoint round trip,
documented hyperparameters, input checks), two-optimizer manual optimization with d_steps, resume,
generating (Python and command line) and the classifier-based quality metrics."""


import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import zoo
from tests.conftest import fit_and_reload_image_model
from zoo.core.base import ClassifierModule
from zoo.models.generative.gan import GAN
from zoo.models.generative.gan_base import GANModule
from zoo.serving.generate import generate
from zoo.evaluation.gan_metrics import ClassifierFeatures, GANQualityMetrics, frechet_distance
from zoo.core.preprocessing import ImageInputMixin
from tests.support.trainers import quiet_trainer

NAMES = ["gan", "cgan", "dcgan", "cdcgan"]
SMALL = {"gan": dict(generator_sizes=[32], discriminator_sizes=[32]), "cgan": dict(generator_sizes=[32], discriminator_sizes=[32]),
         "dcgan": dict(feature_maps=8), "cdcgan": dict(feature_maps=8)}  # fmt: skip


def small(name, **kwargs) -> GANModule:
    return zoo.create_model(name, **{**SMALL[name], "latent_dim": 16, "num_sample_images": 20, **kwargs})


def loader(n=32, batch_size=8):
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)), batch_size=batch_size)


@pytest.mark.parametrize("name", NAMES)
def test_generator_and_discriminator_shapes(name):
    model = zoo.create_model(name)  # full size
    assert model.example_input_array.shape == (2, model.latent_dim)
    z = torch.randn(4, model.latent_dim)
    labels = torch.tensor([0, 1, 2, 9]) if model.conditional else None
    images = model(z, labels)
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert model.discriminator(images * 2 - 1, labels).shape == (4, 1)
    assert model.conditional == (name in ("cgan", "cdcgan"))


@pytest.mark.parametrize("name", NAMES)
def test_fast_dev_run_fit_updates_both_networks(name, tmp_path):
    model = small(name)
    g_before = [p.clone() for p in model.generator.parameters()]
    d_before = [p.clone() for p in model.discriminator.parameters()]
    trainer = quiet_trainer(tmp_path, fast_dev_run=True)
    trainer.fit(model, loader(), loader())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    assert (int(model.d_updates), int(model.g_updates)) == (1, 1)
    assert {"train/d_loss", "train/g_loss", "val/d_loss"} <= set(trainer.callback_metrics)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_is_exact_and_weights_only(name, tmp_path):
    model = small(name)
    trainer = quiet_trainer(tmp_path, max_steps=4, enable_checkpointing=False)
    trainer.fit(model, loader())
    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hyper_parameters"] == dict(model.hparams)
    loaded = type(model).load_from_checkpoint(path, weights_only=True)
    assert loaded.conditional == model.conditional
    z = torch.randn(6, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(z), loaded.eval()(z))
    assert torch.equal(loaded.fixed_noise, model.fixed_noise)


@pytest.mark.parametrize("name", ["cgan", "dcgan"])
def test_checkpoint_records_the_datamodules_normalization_and_class_names(name, vision_root, tmp_path):
    """Fails on the old code, which kept mean/std in buffers only (not in the hyperparameters) and no class names."""
    from datamodules import FashionMNISTDataModule

    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=16)
    model = small(name)
    loaded, raw, x = fit_and_reload_image_model(model, dm, quiet_trainer(tmp_path, fast_dev_run=True), tmp_path / f"{name}.ckpt")
    assert torch.allclose(loaded.to_pixels(x), raw.float() / 255, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_input_checks(name):
    model = small(name)
    with pytest.raises(ValueError, match=r"expects float noise of shape \(B, latent_dim=16\)"):
        model(torch.randn(2, 17))
    with pytest.raises(ValueError, match="expects float noise"):
        model(torch.zeros(2, 16, dtype=torch.long))
    if model.conditional:
        with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
            model(torch.randn(2, 16), torch.tensor([0, 10]))
    else:
        with pytest.raises(ValueError, match="unconditional"):
            model(torch.randn(2, 16), torch.tensor([0, 1]))


@pytest.mark.parametrize("d_steps", [1, 3])
def test_d_steps_discriminator_updates_per_generator_update(d_steps, tmp_path):
    model = small("gan", d_steps=d_steps)
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    trainer.fit(model, loader(48))  # 6 batches
    assert int(model.d_updates) == 6 and int(model.g_updates) == 6 // d_steps
    assert trainer.global_step == 6 + 6 // d_steps  # one step per optimizer.step() in manual optimization


def test_resume_restores_counters_buffers_and_optimizers(tmp_path):
    L.seed_everything(0)
    first = small("cgan", d_steps=2)
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(first, loader())  # 4 batches: 4 D and 2 G updates
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)

    seen = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, module):
            opt_g, opt_d = trainer.optimizers
            seen.update(d=int(module.d_updates), g=int(module.g_updates), step=trainer.global_step, epoch=trainer.current_epoch,
                        noise=torch.equal(module.fixed_noise, first.fixed_noise), adam_steps=int(opt_d.state[next(iter(opt_d.state))]["step"]))  # fmt: skip

    resumed = small("cgan", d_steps=2)
    resumed.fixed_noise.normal_()  # a fresh model's buffers differ until the checkpoint is restored
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[Probe()])
    trainer.fit(resumed, loader(), ckpt_path=ckpt)
    assert seen == dict(d=4, g=2, step=6, epoch=1, noise=True, adam_steps=4)
    assert (int(resumed.d_updates), int(resumed.g_updates), trainer.global_step) == (8, 4, 12)


def test_sample_grid_is_saved_each_epoch(tmp_path):
    model = small("cgan")
    # A CSV logger takes no images, so they are saved as PNG files in its run folder.
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, enable_progress_bar=False, enable_model_summary=False,
                        logger=CSVLogger(tmp_path), enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, loader())
    images = tmp_path / "lightning_logs" / "version_0" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["samples_epoch000.png", "samples_epoch001.png"]
    with Image.open(images / "samples_epoch000.png") as grid:
        assert grid.size == (2 * 30 + 2, 10 * 30 + 2)  # 20 fixed samples: one row per class, 2 per row


def test_generate_and_predict():
    model = small("cgan")
    images = generate(model, labels=[3, 7], n=4, seed=0)
    assert images.shape == (8, 1, 28, 28)
    assert torch.equal(images, generate(model, labels=[3, 7], n=4, seed=0))
    with torch.no_grad():
        z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
        assert torch.equal(images, model.eval()(z, torch.tensor([3, 3, 3, 3, 7, 7, 7, 7])))
    assert zoo.generate(small("gan"), n=5).shape == (5, 1, 28, 28)
    with pytest.raises(ValueError, match="unconditional"):
        zoo.generate(small("dcgan"), labels=[1])
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3])
    assert model.predict_step((x, y), 0).shape == (3, 1, 28, 28)


def test_generate_command_writes_a_png_grid(tmp_path):
    from zoo.tools.generate import main

    for name in ("cgan", "dcgan"):
        model = small(name)
        trainer = quiet_trainer(tmp_path, max_steps=2, enable_checkpointing=False)
        trainer.fit(model, loader())
        ckpt = tmp_path / f"{name}.ckpt"
        trainer.save_checkpoint(ckpt)
        out = tmp_path / f"{name}.png"
        args = ["--checkpoint", str(ckpt), "--out", str(out), "--n", "4"] + (["--labels", "0", "5", "9"] if name == "cgan" else [])
        assert main(args) is None  # a console script's exit status: a returned value would exit 1
        with Image.open(out) as grid:
            assert grid.size == ((4 * 30 + 2, 3 * 30 + 2) if name == "cgan" else (2 * 30 + 2, 2 * 30 + 2))


def test_quality_metrics_with_a_classifier_checkpoint(tmp_path):
    """The command-line path: the callback loads a zoo classifier checkpoint and logs both metrics."""
    classifier = zoo.create_model("lenet5")
    cls_trainer = quiet_trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    cls_trainer.fit(classifier, loader())
    cls_ckpt = tmp_path / "lenet5.ckpt"
    cls_trainer.save_checkpoint(cls_ckpt)
    assert isinstance(zoo.load_checkpoint(cls_ckpt), zoo.LeNet5)  # the checkpoint records its class

    metrics = GANQualityMetrics(str(cls_ckpt), classifier_class="zoo.LeNet5", num_samples=24, batch_size=10)
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[metrics], enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(small("cgan"), loader(), loader(32))
    assert torch.isfinite(trainer.callback_metrics["val/fid"]) and "val/class_acc" in trainer.callback_metrics
    features = ClassifierFeatures(metrics.classifier)
    assert features.num_features == 84 and features(torch.randn(2, 1, 28, 28)).shape == (2, 84)


class PixelStatsClassifier(ImageInputMixin, ClassifierModule):
    """A classifier of known outputs. Features: the mean and the mean square of the pixels it reads
    (it undoes the normalization it recorded); it predicts class round(10 * mean pixel), except that it
    takes every 7 for a 1."""

    def __init__(self, **kwargs) -> None:
        super().__init__(num_classes=10, **kwargs)

    @property
    def input_shape(self):
        return (1, 28, 28)

    @property
    def num_features(self) -> int:
        return 2

    def forward_features(self, x):
        pixels = self.denormalize(x)
        return torch.stack([pixels.mean((1, 2, 3)), pixels.pow(2).mean((1, 2, 3))], dim=1)  # (B, 2)

    def forward_head(self, features):
        predicted = (features[:, 0] * 10).round().long()
        predicted[predicted == 7] = 1
        return nn.functional.one_hot(predicted, 10).float()  # (B, 10) logits


class ClassShades(nn.Module):
    """A stand-in generator: whatever the noise, the image of class k is uniformly grey k / 10 (in [-1, 1] here)."""

    def forward(self, z, labels):
        return (labels.float() / 10 * 2 - 1).view(-1, 1, 1, 1).expand(-1, 1, 28, 28)  # (B, 1, 28, 28)


def test_class_accuracy_and_fid_are_what_a_known_classifier_says(tmp_path):
    """Fails unless class_acc is the hand count: 24 samples, classes 0..9, 0..9, 0..3 in turn (generated 7
    at a time), each the grey k / 10 that the stub reads back as k, except the two 7s it calls 1: 22 / 24.
    FID is the distance between the first 24 real validation images and those 24 samples. The GAN and
    the classifier record different normalizations: each image reaches the classifier as it reads them."""
    judge = PixelStatsClassifier(mean=[0.2], std=[0.4])
    model = small("cgan", mean=[0.5], std=[0.25])
    model.generator = ClassShades()
    g = torch.Generator().manual_seed(0)
    real_pixels = torch.rand(40, 1, 1, 1, generator=g) * 0.8 + 0.1 * torch.rand(40, 1, 28, 28, generator=g)  # (40, 1, 28, 28)
    val = DataLoader(TensorDataset(model.to_input(real_pixels), torch.randint(0, 10, (40,), generator=g)), batch_size=16)
    metrics = GANQualityMetrics("unused.ckpt", num_samples=24, batch_size=7)
    metrics.use_classifier(judge)
    logged = quiet_trainer(tmp_path, callbacks=[metrics]).validate(model, val, verbose=False)[0]
    assert logged["val/class_acc"] == pytest.approx(22 / 24)

    labels = torch.arange(24) % 10
    with torch.no_grad():
        fakes = model.eval()(torch.zeros(24, 16), labels)  # what the callback generated, the noise aside
    assert torch.allclose(fakes, (labels.float() / 10).view(-1, 1, 1, 1).expand(-1, 1, 28, 28), atol=1e-6)
    expected = frechet_distance(judge)
    expected.update(judge.normalize(real_pixels[:24]), real=True)
    expected.update(judge.normalize(fakes), real=False)
    assert logged["val/fid"] == pytest.approx(float(expected.compute()), rel=1e-4)


def frechet_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance of two feature sets (N, D), written independently of torchmetrics: float64,
    Tr sqrt(S1 S2) as the trace of the symmetric sqrt(sqrt(S1) S2 sqrt(S1))."""
    a, b = a.double(), b.double()
    s1, s2 = torch.cov(a.T), torch.cov(b.T)
    w, v = torch.linalg.eigh(s1)
    root1 = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp(min=0).sqrt().sum()
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross)


def test_fid_is_zero_for_identical_sets_and_grows_with_the_shift():
    """FID through ClassifierFeatures: ~0 for a set against itself, then the reference value for the set
    against its copy shifted by delta in pixel space, strictly growing with delta and at least delta^2
    (the shift of the mean-pixel feature alone)."""
    judge = PixelStatsClassifier()
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(500, 1, 1, 1, generator=g) * 0.5 + 0.1 * torch.rand(500, 1, 28, 28, generator=g)  # in [0, 0.6]
    distances = []
    for delta in (0.0, 0.05, 0.1, 0.2, 0.4):
        fid = frechet_distance(judge)
        fid.update(pixels, real=True)
        fid.update(pixels + delta, real=False)
        distance = float(fid.compute())
        reference = frechet_reference(judge.forward_features(pixels), judge.forward_features(pixels + delta))
        assert distance == pytest.approx(reference, rel=1e-3, abs=1e-6)
        assert distance >= delta**2 * (1 - 1e-3)
        distances.append(distance)
    assert abs(distances[0]) < 1e-6
    assert all(a < b for a, b in zip(distances, distances[1:]))


def test_fid_on_a_stage_reads_the_classifiers_map_through_forward_intermediates():
    """ClassifierFeatures(stage=i): the i-th map of forward_intermediates, averaged over its pixels, and FID over it."""
    torch.manual_seed(0)
    judge = zoo.create_model("resnet20", in_channels=1, image_size=28, layers=[1, 1, 1]).eval()
    x = torch.rand(64, 1, 28, 28)
    features = ClassifierFeatures(judge, stage=2)
    (fmap,) = judge.forward_intermediates(x, [2], intermediates_only=True)  # (64, 32, 14, 14)
    assert features.num_features == 32 == judge.feature_info[2]["num_chs"]
    assert torch.equal(features(x), fmap.mean(dim=(2, 3)))
    assert ClassifierFeatures(judge).num_features == 64 and torch.equal(ClassifierFeatures(judge)(x), judge.forward_features(x))
    fid = frechet_distance(judge, stage=2)
    fid.update(x, real=True)
    fid.update(x + 0.5, real=False)
    reference = frechet_reference(fmap.mean(dim=(2, 3)), judge.forward_intermediates(x + 0.5, [2], intermediates_only=True)[0].mean(dim=(2, 3)))
    assert float(fid.compute()) == pytest.approx(reference, rel=1e-2) and reference > 0
    with pytest.raises(ValueError, match="stage=4 is out of range: ResNet has 4 stages"):
        ClassifierFeatures(judge, stage=4)
    with pytest.raises(ValueError, match="a MLP has no feature stages"):
        ClassifierFeatures(zoo.create_model("mlp"), stage=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizers_decay_weights_but_not_biases_or_norm_scales(optimizer):
    """Fails on the old code, which gave every parameter the weight decay, biases and batch-norm scales too."""
    model = small("dcgan", conditional=True, weight_decay=0.01, optimizer=optimizer, beta1=0.3)
    optimizers = model.configure_optimizers()
    assert len(optimizers) == 2
    for opt, net in zip(optimizers, (model.generator, model.discriminator)):
        decay = {id(p): group["weight_decay"] for group in opt.param_groups for p in group["params"]}
        assert set(decay) == {id(p) for p in net.parameters()}  # each network's own parameters, all of them
        expected = {}
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                expected.update({id(module.weight): 0.0, id(module.bias): 0.0})
            elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                expected[id(module.weight)] = 0.01
                if module.bias is not None:
                    expected[id(module.bias)] = 0.0
        assert 0.0 in expected.values() and {k: decay[k] for k in expected} == expected
        if optimizer == "adam":
            assert all(group["betas"] == (0.3, 0.999) for group in opt.param_groups)
        else:
            assert all(group["momentum"] == 0.9 for group in opt.param_groups)


def test_gan_refuses_bad_arguments():
    with pytest.raises(ValueError, match="scheduler must be 'none'"):
        GAN(scheduler="cosine")
    with pytest.raises(ValueError, match="divisible by 4"):
        zoo.create_model("dcgan", image_size=30)


@pytest.mark.parametrize("name", ["cgan", "dcgan"])
def test_projection_discriminator_scores_the_match_of_image_and_label(name):
    """With projection, D(x, y) = head(phi(x)) + embed(y) . phi(x): the label changes the logit by an amount that
    depends on the image; with concat at DCGAN's linear head it only shifts the logit per class."""
    torch.manual_seed(0)
    model = small(name, conditional=True, conditioning="projection").eval()
    d = model.discriminator
    x = torch.randn(2, 1, 28, 28)
    a, b = torch.tensor([0, 0]), torch.tensor([3, 3])
    phi = d.net[:-1](x.flatten(1)) if name == "cgan" else d.net(x)  # (2, F): the last features
    expected = (d.projection(b) - d.projection(a)) * phi  # (2, F)
    torch.testing.assert_close(d(x, b) - d(x, a), expected.sum(1, keepdim=True))
    shift = d(x, b) - d(x, a)
    assert not torch.allclose(shift[0], shift[1])  # the label's effect depends on the image
    assert d.projection.weight.shape == (10, phi.shape[1]) and getattr(d, "embedding", None) is None
    concat = small("dcgan", conditional=True).eval().discriminator  # the default: "concat"
    shift = concat(x, b) - concat(x, a)
    torch.testing.assert_close(shift[0], shift[1])  # the same for every image: no match is scored
    with pytest.raises(ValueError, match="conditioning must be 'concat', 'projection' or 'auxiliary'"):
        small(name, conditional=True, conditioning="attention")


def test_concat_checkpoints_keep_their_keys_and_projection_adds_one_table():
    concat, projection = small("cgan"), small("cgan", conditioning="projection")
    keys = set(concat.state_dict()) ^ set(projection.state_dict())
    assert keys == {"discriminator.embedding.weight", "discriminator.projection.weight"}


@pytest.mark.parametrize("name", ["cgan", "dcgan"])
def test_auxiliary_classifier_never_sees_the_label_and_trains_both_networks_to_name_the_class(name, tmp_path):
    """AC-GAN: the discriminator's score and features do not depend on the label; its class head learns the
    real images' classes, and the generator's loss includes that head's cross-entropy on the asked class."""
    torch.manual_seed(0)
    model = small(name, conditional=True, conditioning="auxiliary", aux_weight=2.0)
    d = model.discriminator
    x = torch.randn(4, 1, 28, 28)
    a, b = torch.tensor([0, 1, 2, 3]), torch.tensor([9, 8, 7, 6])
    model.eval()
    logit_a, classes_a = model.discriminate(x, a)
    logit_b, classes_b = model.discriminate(x, b)
    torch.testing.assert_close(logit_a, logit_b)  # the label plays no part in the score
    torch.testing.assert_close(classes_a, classes_b)
    assert logit_a.shape == (4, 1) and classes_a.shape == (4, 10) and d.classifier.out_features == 10
    torch.testing.assert_close(model._aux_loss(classes_a, a), 2.0 * torch.nn.functional.cross_entropy(classes_a, a))
    assert model._aux_loss(None, a) == 0.0
    model.train()
    before = d.classifier.weight.clone()
    trainer = quiet_trainer(tmp_path, fast_dev_run=True)
    trainer.fit(model, loader(), loader())
    assert not torch.equal(before, d.classifier.weight)  # the class head trained
    assert "val/aux_acc" in trainer.callback_metrics
    with pytest.raises(ValueError, match="aux_weight must be >= 0"):
        small(name, conditional=True, conditioning="auxiliary", aux_weight=-1.0)


def test_dcgan_keeps_its_old_import_path():
    from zoo.models.generative import dcgan, gan

    assert gan.DCGAN is dcgan.DCGAN is zoo.DCGAN
